// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/train/collective.hpp
 * What a training step needs from the processes it runs with (data parallelism, DESIGN.md §7):
 * the `collective` concept and its single-process model. zss/dist/ models it over MPI
 * (`dist::mpi_collective`); the trainer takes any model as an argument of `forward_backward` and
 * `step`, so the library itself never depends on MPI.
 *
 * Legend: R ranks (processes), B_r rows of rank r, D width.
 *
 * A model must give, on every rank, *bitwise the same* result of
 *  - `sum(v)`: the element-wise sum over ranks of `v` (double or T), in place, reduced in an order
 *    that does not depend on which message arrives first (so a run is reproducible);
 *  - `allgather_rows(mine, all, offsets)`: every rank's rows (B_r × D) stacked in rank order into
 *    `all` (Σ_r B_r × D), with `offsets` (R + 1) the first row of each rank;
 *  - `ranks()`, `rank()`.
 */
#include <algorithm>
#include <concepts>
#include <span>
#include <vector>

#include "zss/core/aligned.hpp"
#include "zss/core/config.hpp"
#include "zss/core/tensor.hpp"

namespace zss::train {

/// The collective operations of a data-parallel training step (see the file comment).
template <class C, class T>
concept collective = requires(C& c, std::span<T> values, std::span<double> counts,
                              matrix_ref<const T> mine, aligned_vector<T>& all,
                              std::vector<index_t>& offsets) {
  { c.ranks() } -> std::convertible_to<int>;
  { c.rank() } -> std::convertible_to<int>;
  c.sum(values);
  c.sum(counts);
  c.allgather_rows(mine, all, offsets);
};

/// The model of one process: sums are the values themselves, gathering copies.
struct single_process {
  int ranks() const noexcept { return 1; }
  int rank() const noexcept { return 0; }
  template <class U>
  void sum(std::span<U>) const noexcept {}
  template <real_scalar T>
  void allgather_rows(matrix_ref<const T> mine, aligned_vector<T>& all,
                      std::vector<index_t>& offsets) const {
    all.resize(mine.rows * mine.cols);
    for (index_t i = 0; i < mine.rows; ++i)
      std::copy_n(mine.row(i), mine.cols, all.data() + i * mine.cols);
    offsets = {0, mine.rows};
  }
};

}  // namespace zss::train
