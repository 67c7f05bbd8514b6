// SPDX-License-Identifier: Apache-2.0
#pragma once
// Helpers shared by the bench_*.cpp files: seeded data, rate counters, process CPU time.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ctime>

#include "zss/core/aligned.hpp"
#include "zss/core/random.hpp"
#include "zss/core/tensor.hpp"

namespace zss::bench {

/// n standard-normal floats from `rng(seed)`.
inline aligned_vector<float> normal_data(index_t n, std::uint64_t seed) {
  rng g(seed);
  aligned_vector<float> v(n);
  for (auto& x : v) x = g.normal<float>();
  return v;
}

/// Blobs on the unit sphere plus noise, like L2-normalised dense tokens (as the peers' data): n ×
/// d, `blobs` centres.
inline tensor<float, 2> tokens(index_t n, index_t d, index_t blobs, std::uint64_t seed) {
  rng g(seed);
  tensor<float, 2> centres = tensor<float, 2>::from_shape({blobs, d});
  for (auto& x : centres) x = g.normal<float>();
  tensor<float, 2> X = tensor<float, 2>::from_shape({n, d});
  for (index_t i = 0; i < n; ++i) {
    const auto b = g.below(blobs);
    float s = 0;
    for (index_t j = 0; j < d; ++j) {
      X(i, j) = centres(b, j) + 0.8f * g.normal<float>();
      s += X(i, j) * X(i, j);
    }
    for (index_t j = 0; j < d; ++j) X(i, j) /= std::sqrt(s);
  }
  return X;
}

/// The multi-scale batch of BM_MultiScaleBatch: b images of h × w tokens of dimension d in one
/// contiguous b × h × w × d tensor (a batch as it comes from an encoder, and the layout of a NumPy
/// array handed to zss.multiscale_kmeans), image i = `tokens(h·w, d, 6, 100 + i)`.
/// bench_kmeans.cpp clusters it; python_overhead_tokens.cpp writes it for bench/python_overhead.py.
inline tensor<float, 4> multiscale_batch_tokens(index_t b = 16, index_t h = 32, index_t w = 32,
                                                index_t d = 512) {
  tensor<float, 4> all = tensor<float, 4>::from_shape({b, h, w, d});
  for (index_t i = 0; i < b; ++i) {
    const auto img = tokens(h * w, d, 6, 100 + i);
    std::copy(img.begin(), img.end(), all.data() + i * h * w * d);
  }
  return all;
}

/// "GFLOP/s" counter from the FLOPs of one iteration.
inline void set_flops(benchmark::State& s, double flops_per_iter) {
  s.counters["GFLOP/s"] = benchmark::Counter(
      flops_per_iter, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

/// "GB/s" counter from the bytes read and written by one iteration.
inline void set_bytes(benchmark::State& s, double bytes_per_iter) {
  s.counters["GB/s"] = benchmark::Counter(
      bytes_per_iter, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

inline double process_cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

/// Records the process CPU time of the timed loop as `proc_cpu_ms` per iteration (all threads):
/// on a shared machine, wall ≈ proc_cpu_ms / threads means the threads ran undisturbed.
struct process_cpu_counter {
  benchmark::State& s;
  double start = process_cpu_seconds();
  explicit process_cpu_counter(benchmark::State& st) : s(st) {}
  ~process_cpu_counter() {
    if (s.iterations() > 0)
      s.counters["proc_cpu_ms"] = 1e3 * (process_cpu_seconds() - start) / double(s.iterations());
  }
};

}  // namespace zss::bench
