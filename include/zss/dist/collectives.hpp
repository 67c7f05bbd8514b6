// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/dist/collectives.hpp
 * The MPI collectives zss's data parallelism needs: broadcast (parameters from rank 0), a sum over
 * ranks whose result does not depend on message arrival order, and an all-gather of rows of
 * different counts per rank (CLS tokens, fused maps).
 *
 * Legend: R ranks, n values, B_r rows of rank r, D width.
 *
 * `sum_ordered` — why not `MPI_Allreduce`: MPI does not promise the order in which an allreduce
 * adds the ranks' contributions (Open MPI picks the algorithm from the message size and the number
 * of ranks, and some reduce in arrival order), so float sums may differ between runs and even
 * between ranks. Here the n values are cut into R chunks (`block_range`); `MPI_Alltoallv` sends
 * chunk c of every rank to rank c, which receives them into slots ordered by *source rank* (not by
 * arrival) and adds them strictly in rank order, `((v_0 + v_1) + v_2) + …`; `MPI_Allgatherv` then
 * hands every rank every reduced chunk. The result is therefore a pure function of the ranks'
 * inputs, bitwise identical on every rank and in every run with the same R. Traffic per rank:
 * 2·n·(R−1)/R values (like a ring allreduce); one call per training step, no bucketing needed at
 * the student's ≈ 0.3 M parameters.
 *
 * Every function must be called by every rank of `comm` (they are collectives); sizes must agree
 * where stated, else the job aborts in MPI or a `std::invalid_argument` names the mismatch.
 */
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "zss/core/aligned.hpp"
#include "zss/core/check.hpp"
#include "zss/core/param_buffer.hpp"
#include "zss/core/tensor.hpp"
#include "zss/dist/environment.hpp"
#include "zss/dist/shard.hpp"

namespace zss::dist {

/// The MPI datatype of `T` (float, double, the fixed-width integers, char, bool as a byte).
template <class T>
MPI_Datatype datatype() {
  if constexpr (std::is_same_v<T, float>)
    return MPI_FLOAT;
  else if constexpr (std::is_same_v<T, double>)
    return MPI_DOUBLE;
  else if constexpr (std::is_same_v<T, std::int32_t>)
    return MPI_INT32_T;
  else if constexpr (std::is_same_v<T, std::int64_t>)
    return MPI_INT64_T;
  else if constexpr (std::is_same_v<T, std::uint64_t>)
    return MPI_UINT64_T;
  else if constexpr (std::is_same_v<T, std::uint8_t> || std::is_same_v<T, unsigned char>)
    return MPI_UINT8_T;
  else if constexpr (std::is_same_v<T, char>)
    return MPI_CHAR;
  else
    static_assert(sizeof(T) == 0, "zss::dist::datatype: no MPI datatype for this type");
}

namespace detail {
/// A count as MPI's int, or a clear error.
inline int mpi_count(index_t n, const char* where) {
  require(n <= index_t(INT_MAX),
          std::string(where) + ": " + std::to_string(n) + " elements exceed MPI's int count");
  return static_cast<int>(n);
}
inline int comm_size(MPI_Comm comm) {
  int r = 1;
  check(MPI_Comm_size(comm, &r), "MPI_Comm_size");
  return r;
}
inline int comm_rank(MPI_Comm comm) {
  int r = 0;
  check(MPI_Comm_rank(comm, &r), "MPI_Comm_rank");
  return r;
}
}  // namespace detail

/// Every rank receives `root`'s `values` (the same length on every rank).
template <class T>
void broadcast(std::span<T> values, int root = 0, MPI_Comm comm = MPI_COMM_WORLD) {
  if (values.empty()) return;
  check(MPI_Bcast(values.data(), detail::mpi_count(values.size(), "dist::broadcast"),
                  datatype<std::remove_cv_t<T>>(), root, comm),
        "MPI_Bcast");
}

/// Σ over ranks of one integer count (exact), the same on every rank.
inline std::int64_t sum_count(std::int64_t mine, MPI_Comm comm = MPI_COMM_WORLD) {
  std::int64_t total = 0;
  check(MPI_Allreduce(&mine, &total, 1, MPI_INT64_T, MPI_SUM, comm), "MPI_Allreduce");
  return total;
}

/**
 * Every rank receives `root`'s parameter values. The buffers must have the same size: it is
 * compared first on every rank, so a mismatch throws `std::invalid_argument` on *every* rank
 * (naming the sizes) instead of corrupting data or leaving a rank waiting.
 */
template <real_scalar T>
void broadcast_parameters(param_buffer<T>& params, int root = 0, MPI_Comm comm = MPI_COMM_WORLD) {
  std::uint64_t size = params.size(), root_size = size;
  broadcast(std::span<std::uint64_t>(&root_size, 1), root, comm);
  const std::int64_t mismatches = sum_count(root_size != size ? 1 : 0, comm);
  require(mismatches == 0, "dist::broadcast_parameters: rank " + std::to_string(root) + " has " +
                               std::to_string(root_size) + " parameters, this rank " +
                               std::to_string(size) + "; " + std::to_string(mismatches) +
                               " rank(s) differ");
  broadcast(std::span<T>(params.values(), params.size()), root, comm);
}

/**
 * In place: `values ← Σ_r values_r`, added in rank order (file comment), bitwise identical on
 * every rank and independent of message arrival. `values` must have the same length on every
 * rank. `scratch` is reused across calls (R·⌈n/R⌉ values).
 */
template <class T>
void sum_ordered(std::span<T> values, std::vector<T>& scratch, MPI_Comm comm = MPI_COMM_WORLD) {
  const int R = detail::comm_size(comm), me = detail::comm_rank(comm);
  if (R == 1) return;
  const index_t n = values.size();
  const auto nr = static_cast<std::size_t>(R);
  std::vector<int> counts(nr), displs(nr), rcounts(nr), rdispls(nr);
  for (int c = 0; c < R; ++c) {
    const auto [b, e] = block_range(n, index_t(c), index_t(R));
    counts[std::size_t(c)] = detail::mpi_count(e - b, "dist::sum_ordered");
    displs[std::size_t(c)] = detail::mpi_count(b, "dist::sum_ordered");
  }
  const int mine = counts[std::size_t(me)];
  for (int r = 0; r < R; ++r) rcounts[std::size_t(r)] = mine, rdispls[std::size_t(r)] = r * mine;
  scratch.resize(std::size_t(R) * std::size_t(mine));
  const MPI_Datatype type = datatype<T>();
  // Chunk c of every rank to rank c, stored by source rank.
  check(MPI_Alltoallv(values.data(), counts.data(), displs.data(), type, scratch.data(),
                      rcounts.data(), rdispls.data(), type, comm),
        "MPI_Alltoallv");
  T* out = values.data() + displs[std::size_t(me)];
  for (int j = 0; j < mine; ++j) {
    T s = scratch[std::size_t(j)];
    for (int r = 1; r < R; ++r) s += scratch[std::size_t(r) * std::size_t(mine) + std::size_t(j)];
    out[j] = s;
  }
  // Every reduced chunk to every rank, in place.
  check(MPI_Allgatherv(MPI_IN_PLACE, 0, type, values.data(), counts.data(), displs.data(), type,
                       comm),
        "MPI_Allgatherv");
}

/**
 * Every rank's rows stacked in rank order: `all` = [rows of rank 0 ; rows of rank 1 ; …]
 * (Σ_r B_r × D), `offsets` (R + 1) the first row of each rank. Ranks may hold different numbers
 * of rows (also 0) but the same width D.
 * @throws std::invalid_argument when the ranks' widths differ.
 */
template <class T>
void allgather_rows(matrix_ref<const T> mine, aligned_vector<T>& all, std::vector<index_t>& offsets,
                    MPI_Comm comm = MPI_COMM_WORLD) {
  const int R = detail::comm_size(comm);
  std::int64_t shape[2] = {std::int64_t(mine.rows), std::int64_t(mine.cols)};
  std::vector<std::int64_t> shapes(2 * std::size_t(R));
  check(MPI_Allgather(shape, 2, MPI_INT64_T, shapes.data(), 2, MPI_INT64_T, comm), "MPI_Allgather");
  offsets.assign(std::size_t(R) + 1, 0);
  std::vector<int> counts(static_cast<std::size_t>(R)), displs(static_cast<std::size_t>(R));
  const index_t D = mine.cols;
  for (int r = 0; r < R; ++r) {
    require(index_t(shapes[2 * std::size_t(r) + 1]) == D,
            "dist::allgather_rows: rank " + std::to_string(r) + " has rows of width " +
                std::to_string(shapes[2 * std::size_t(r) + 1]) + ", this rank of width " +
                std::to_string(D));
    offsets[std::size_t(r) + 1] = offsets[std::size_t(r)] + index_t(shapes[2 * std::size_t(r)]);
    counts[std::size_t(r)] =
        detail::mpi_count(index_t(shapes[2 * std::size_t(r)]) * D, "dist::allgather_rows");
    displs[std::size_t(r)] = detail::mpi_count(offsets[std::size_t(r)] * D, "dist::allgather_rows");
  }
  all.resize(offsets.back() * D);
  // The local rows as one contiguous block (a view may have a row stride).
  aligned_vector<T> send(mine.rows * D);
  for (index_t i = 0; i < mine.rows; ++i) std::copy_n(mine.row(i), D, send.data() + i * D);
  check(
      MPI_Allgatherv(send.data(), detail::mpi_count(send.size(), "dist::allgather_rows"),
                     datatype<T>(), all.data(), counts.data(), displs.data(), datatype<T>(), comm),
      "MPI_Allgatherv");
}

}  // namespace zss::dist
