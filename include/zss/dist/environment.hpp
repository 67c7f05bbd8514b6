// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/dist/environment.hpp
 * MPI for zss (optional: only code that includes zss/dist/ needs an MPI library; link
 * `MPI::MPI_CXX`). `environment` initialises MPI for the lifetime of an object (RAII) and
 * finalises it; `check` turns an MPI error code into an exception.
 *
 * Threads: MPI is initialised with `MPI_THREAD_FUNNELED` — the library's OpenMP threads never call
 * MPI; only the thread that created the environment does.
 *
 * Failure policy: MPI's default error handler on `MPI_COMM_WORLD` aborts the whole job, which is
 * what a collective needs (a rank that throws while the others wait in a collective would hang
 * them). A program that catches an exception on one rank must end the job with `abort()`, not
 * return from `main` (MPI_Finalize would wait for the other ranks forever).
 */
#include <mpi.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace zss::dist {

/// Throws `std::runtime_error` naming `what` and MPI's message when `code` is not MPI_SUCCESS.
inline void check(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, text, &len);
  throw std::runtime_error(std::string(what) + " failed: " + std::string(text, std::size_t(len)));
}

/**
 * Initialises MPI (unless it already is) and finalises it on destruction (only if this object
 * initialised it). One per program, created at the top of `main`.
 */
class environment {
 public:
  /// @throws std::runtime_error when MPI cannot be initialised with the threading it needs.
  environment(int* argc = nullptr, char*** argv = nullptr) {
    int initialised = 0;
    check(MPI_Initialized(&initialised), "MPI_Initialized");
    if (!initialised) {
      int provided = 0;
      check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
      owner_ = true;
      if (provided < MPI_THREAD_FUNNELED) {
        MPI_Finalize();
        owner_ = false;
        throw std::runtime_error("MPI does not provide MPI_THREAD_FUNNELED");
      }
    }
    check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
  }
  environment(const environment&) = delete;
  environment& operator=(const environment&) = delete;
  ~environment() {
    int finalised = 0;
    MPI_Finalized(&finalised);
    if (owner_ && !finalised) MPI_Finalize();
  }

  /// This process's rank in MPI_COMM_WORLD.
  int rank() const noexcept { return rank_; }
  /// The number of ranks in MPI_COMM_WORLD.
  int size() const noexcept { return size_; }
  MPI_Comm world() const noexcept { return MPI_COMM_WORLD; }

  /// Ends the whole job with `code` (every rank), e.g. after an exception on one rank.
  [[noreturn]] static void abort(int code) {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::abort();  // not reached
  }

 private:
  int rank_ = 0, size_ = 1;
  bool owner_ = false;
};

}  // namespace zss::dist
