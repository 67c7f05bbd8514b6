// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/dist/collective.hpp
 * `mpi_collective`: the trainer's `train::collective` (train/collective.hpp) over MPI, so that
 * `trainer::step(batch, comm)` on R ranks, each with its share of the batch, is the step of one
 * process with the whole batch (DESIGN.md §7):
 *
 *     sum(values)            → `sum_ordered` (rank order, independent of arrival; collectives.hpp)
 *     allgather_rows(rows)   → `allgather_rows` (rank order)
 *
 * A data-parallel training loop (see examples/train/):
 *
 *     zss::dist::environment env(&argc, &argv);
 *     zss::dist::mpi_collective comm;
 *     zss::train::trainer<float> tr(cfg, seen_text);          // same seed on every rank
 *     zss::dist::broadcast_parameters(tr.parameters());        // guard: rank 0's values
 *     for (s …) {
 *       auto idx = sampler.indices(s);                          // the whole batch, every rank
 *       auto mine = zss::dist::block_range(idx.size(), env.rank(), env.size());
 *       tr.step(batch_of(idx[mine.begin … mine.end)), comm);  // this rank's images
 *     }
 */
#include <mpi.h>

#include <span>
#include <vector>

#include "zss/core/aligned.hpp"
#include "zss/core/tensor.hpp"
#include "zss/dist/collectives.hpp"
#include "zss/dist/environment.hpp"
#include "zss/train/collective.hpp"

namespace zss::dist {

/// `train::collective` over an MPI communicator (MPI_COMM_WORLD by default).
class mpi_collective {
 public:
  explicit mpi_collective(MPI_Comm comm = MPI_COMM_WORLD) : comm_(comm) {
    rank_ = detail::comm_rank(comm);
    ranks_ = detail::comm_size(comm);
  }
  int ranks() const noexcept { return ranks_; }
  int rank() const noexcept { return rank_; }
  MPI_Comm communicator() const noexcept { return comm_; }

  /// In place, rank order (collectives.hpp `sum_ordered`).
  void sum(std::span<double> values) { sum_ordered(values, scratch_d_, comm_); }
  void sum(std::span<float> values) { sum_ordered(values, scratch_f_, comm_); }

  /// Every rank's rows in rank order (collectives.hpp `allgather_rows`).
  template <real_scalar T>
  void allgather_rows(matrix_ref<const T> mine, aligned_vector<T>& all,
                      std::vector<index_t>& offsets) {
    dist::allgather_rows(mine, all, offsets, comm_);
  }

 private:
  MPI_Comm comm_;
  int rank_ = 0, ranks_ = 1;
  std::vector<double> scratch_d_;
  std::vector<float> scratch_f_;
};

static_assert(train::collective<mpi_collective, float>);
static_assert(train::collective<mpi_collective, double>);

}  // namespace zss::dist
