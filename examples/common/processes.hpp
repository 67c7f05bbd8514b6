// SPDX-License-Identifier: Apache-2.0
#pragma once
// The processes a tool runs on: the MPI ranks when the tool was built with MPI (ZSS_WITH_MPI,
// set by examples/CMakeLists.txt when find_package(MPI) succeeds) — one rank when started
// without mpirun — else one process. The tools' code is the same either way: it asks for the
// rank and the size, gathers rows, sums counts and, for training, gets a `train::collective`.
#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "zss/core/aligned.hpp"
#include "zss/core/param_buffer.hpp"
#include "zss/core/tensor.hpp"
#include "zss/train/collective.hpp"

#if defined(ZSS_WITH_MPI)
#include "zss/dist/collective.hpp"
#include "zss/dist/collectives.hpp"
#include "zss/dist/environment.hpp"
#endif

namespace zss::examples {

class processes {
 public:
  processes(int* argc, char*** argv) {
#if defined(ZSS_WITH_MPI)
    env_.emplace(argc, argv);
    rank_ = env_->rank(), size_ = env_->size();
#else
    (void)argc, (void)argv;
#endif
  }
  int rank() const noexcept {
    return rank_;
  }
  int size() const noexcept {
    return size_;
  }
  bool root() const noexcept {
    return rank_ == 0;
  }
  static constexpr bool with_mpi() noexcept {
#if defined(ZSS_WITH_MPI)
    return true;
#else
    return false;
#endif
  }

  /// Every rank's rows in rank order (see dist::allgather_rows); a copy on one process.
  template <class T>
  void allgather_rows(matrix_ref<const T> mine, aligned_vector<T>& all,
                      std::vector<index_t>& offsets) const {
#if defined(ZSS_WITH_MPI)
    dist::allgather_rows(mine, all, offsets);
#else
    all.resize(mine.rows * mine.cols);
    for (index_t i = 0; i < mine.rows; ++i)
      std::copy_n(mine.row(i), mine.cols, all.data() + i * mine.cols);
    offsets = {0, mine.rows};
#endif
  }

  /// Σ over ranks of an integer (exact).
  std::int64_t sum(std::int64_t v) const {
#if defined(ZSS_WITH_MPI)
    return dist::sum_count(v);
#else
    return v;
#endif
  }

  /// Every rank takes rank 0's parameter values (a guard: they start from the same seed).
  template <real_scalar T>
  void broadcast_parameters(param_buffer<T>& params) const {
#if defined(ZSS_WITH_MPI)
    dist::broadcast_parameters(params);
#else
    (void)params;
#endif
  }

  /// Waits for every rank.
  void barrier() const {
#if defined(ZSS_WITH_MPI)
    dist::check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
#endif
  }

  /// Calls `f(comm)` with the training collective of these processes.
  template <class F>
  decltype(auto) with_collective(F&& f) {
#if defined(ZSS_WITH_MPI)
    dist::mpi_collective comm;
    return f(comm);
#else
    train::single_process comm;
    return f(comm);
#endif
  }

  /**
   * Reports an error of this rank ("tool: error: …", prefixed by the rank when there are several)
   * and returns the exit code; with several ranks it ends the whole job instead (the others may
   * wait in a collective forever otherwise).
   */
  int fail(const char* tool, const std::exception& e) const {
    if (size_ > 1) {
      std::fprintf(stderr, "%s: error (rank %d of %d): %s\n", tool, rank_, size_, e.what());
      std::fflush(stderr);
#if defined(ZSS_WITH_MPI)
      dist::environment::abort(1);
#endif
    }
    std::fprintf(stderr, "%s: error: %s\n", tool, e.what());
    return 1;
  }

 private:
  int rank_ = 0, size_ = 1;
#if defined(ZSS_WITH_MPI)
  std::optional<dist::environment> env_;
#endif
};

}  // namespace zss::examples
