// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/core/parallel.hpp
 * OpenMP helpers: the caller chooses the thread count; reductions have a fixed order.
 *
 * zss never reads a global thread setting inside a kernel: every parallel entry point takes
 * `threads` (0 = `omp_get_max_threads()`, resolved once at the API edge). Work is split
 * statically, so the same `threads` gives the same partition. Two reduction patterns:
 *  - `parallel_reduce` sums per-*chunk* partials in chunk order: bitwise identical for every
 *    thread count (use it when the chunk size is fixed by the problem, not by `threads`).
 *  - `per_thread<T>` keeps one buffer per thread and adds them in thread order: identical
 *    for a fixed thread count (use it for large accumulators such as centroid sums).
 * An exception thrown inside a parallel loop is captured and rethrown on the calling thread
 * (the first one, by thread id); it never escapes an OpenMP region.
 */
#include <omp.h>

#include <algorithm>
#include <exception>
#include <string>
#include <vector>

#include "zss/core/aligned.hpp"
#include "zss/core/check.hpp"
#include "zss/core/config.hpp"

namespace zss {

/// `requested` if > 0, else `omp_get_max_threads()`. Throws on negative values.
inline int resolve_threads(int requested) {
  require(requested >= 0,
          "threads must be >= 0 (0 = OpenMP default), got " + std::to_string(requested));
  return requested > 0 ? requested : std::max(1, omp_get_max_threads());
}

/// The half-open range `[begin, end)` of `n` items that thread `t` of `threads` owns (static).
struct chunk_range {
  index_t begin, end;
};
inline chunk_range static_chunk(index_t n, int threads, int t) noexcept {
  const index_t T = static_cast<index_t>(threads), q = n / T, r = n % T,
                i = static_cast<index_t>(t);
  const index_t begin = i * q + std::min(i, r);
  return {begin, begin + q + (i < r ? 1 : 0)};
}

/**
 * Calls `f(begin, end, slot)` once for each of the `threads` contiguous ranges that statically
 * partition `[0, n)` (slot 0 first; `static_chunk`). `slot` < `threads` names the range, so
 * per-slot buffers (`per_thread`) stay private and the partition never depends on how many
 * threads OpenMP actually gives: inside another parallel region (nesting off) the team has one
 * thread, which then runs every range in slot order. Runs inline, as `f(0, n, 0)`, when
 * `threads` is 1 or `n` ≤ 1. What a slot does at the end of its range (a per-thread reduction
 * finished once rather than per item) is why this exists beside `parallel_for`.
 */
template <class F>
void parallel_for_ranges(index_t n, int threads, F&& f) {
  threads = resolve_threads(threads);
  if (threads == 1 || n <= 1) {
    f(index_t(0), n, 0);
    return;
  }
  const int used = static_cast<int>(std::min<index_t>(n, static_cast<index_t>(threads)));
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(used));
#pragma omp parallel num_threads(used)
  {
    const int team = omp_get_num_threads();
    for (int slot = omp_get_thread_num(); slot < used; slot += team) {
      try {
        const auto [b, e] = static_chunk(n, used, slot);
        f(b, e, slot);
      } catch (...) {
        errors[static_cast<std::size_t>(slot)] = std::current_exception();
        break;
      }
    }
  }
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

/**
 * Calls `f(i, slot)` for every `i` in `[0, n)`, statically partitioned into `threads` contiguous
 * ranges: `parallel_for_ranges` item by item (a throwing item ends its slot's range).
 */
template <class F>
void parallel_for(index_t n, int threads, F&& f) {
  parallel_for_ranges(n, threads, [&](index_t b, index_t e, int slot) {
    for (index_t i = b; i < e; ++i) f(i, slot);
  });
}

/**
 * Splits `[0, n)` into chunks of `chunk` items, computes `f(begin, end)` → `R` per chunk in
 * parallel and returns `init + r_0 + r_1 + …` in chunk order: bitwise independent of `threads`.
 */
template <class R, class F>
R parallel_reduce(index_t n, index_t chunk, int threads, R init, F&& f) {
  require(chunk > 0, "parallel_reduce: chunk must be > 0");
  const index_t chunks = (n + chunk - 1) / chunk;
  std::vector<R> partial(chunks, R{});
  parallel_for(chunks, threads,
               [&](index_t c, int) { partial[c] = f(c * chunk, std::min(n, (c + 1) * chunk)); });
  for (const auto& p : partial) init = init + p;
  return init;
}

/**
 * One zero-initialised, 64-byte aligned buffer of `size` elements per thread, reduced in thread
 * order. Allocate once per fit/step and reuse (`zero()` between uses): no allocation in loops.
 */
template <real_scalar T>
class per_thread {
 public:
  per_thread() = default;
  per_thread(int threads, index_t size) { reset(threads, size); }

  void reset(int threads, index_t size) {
    threads = resolve_threads(threads);
    size_ = size;
    buffers_.assign(static_cast<std::size_t>(threads), aligned_vector<T>(size, T(0)));
  }
  void zero() {
    for (auto& b : buffers_) std::fill(b.begin(), b.end(), T(0));
  }
  T* operator[](int t) noexcept { return buffers_[static_cast<std::size_t>(t)].data(); }
  int threads() const noexcept { return static_cast<int>(buffers_.size()); }
  index_t size() const noexcept { return size_; }

  /// `out[i] = Σ_t buffer_t[i]`, added in thread order 0, 1, …
  void reduce_into(T* out) const noexcept {
    std::fill(out, out + size_, T(0));
    for (const auto& b : buffers_)
      for (index_t i = 0; i < size_; ++i) out[i] += b[i];
  }
  /// `out[i] += Σ_t buffer_t[i]` (thread order).
  void add_into(T* out) const noexcept {
    for (const auto& b : buffers_)
      for (index_t i = 0; i < size_; ++i) out[i] += b[i];
  }

 private:
  index_t size_ = 0;
  std::vector<aligned_vector<T>> buffers_;
};

}  // namespace zss
