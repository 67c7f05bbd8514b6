// SPDX-License-Identifier: Apache-2.0
// K-Means: the fused Lloyd step beside the naive one, a whole fit, and the batched multi-scale
// workload of DESIGN.md §6 (peers: shared/peers/peer_kmeans.py, peer_multiscale.py).
// GFLOP/s counts the distance work only: 2·N·D·K per Lloyd step. Wall time (UseRealTime) is the
// measure; `proc_cpu_ms` is the process CPU time per iteration (all threads), which shows how
// much CPU a run actually got on a shared machine.
#include <benchmark/benchmark.h>

#include <ctime>

#include <vector>

#include "zss/cluster/kmeans.hpp"
#include "zss/cluster/multiscale_kmeans.hpp"
#include "zss/core/random.hpp"

#include "bench_common.hpp"

namespace {

using zss::bench::process_cpu_counter;
using zss::bench::tokens;
void set_gflops(benchmark::State& s, double flops) {
  zss::bench::set_flops(s, flops);
}

zss::tensor<float, 2> random_rows(const zss::tensor<float, 2>& X, zss::index_t k,
                                  std::uint64_t seed) {
  zss::rng g(seed);
  const zss::index_t n = X.shape()[0], d = X.shape()[1];
  zss::tensor<float, 2> C = zss::tensor<float, 2>::from_shape({k, d});
  for (zss::index_t c = 0; c < k; ++c) {
    const auto i = g.below(n);
    for (zss::index_t j = 0; j < d; ++j) C(c, j) = X(i, j);
  }
  return C;
}

constexpr int kThreads = 2;

template <bool Fast>
void BM_LloydIteration(benchmark::State& s) {
  const auto n = zss::index_t(s.range(0)), d = zss::index_t(s.range(1)),
             k = zss::index_t(s.range(2));
  const auto X = tokens(n, d, std::max<zss::index_t>(k, 8), 1);
  const auto C0 = random_rows(X, k, 2);
  zss::tensor<float, 2> C = C0, Cn = C0;
  std::vector<std::int32_t> labels(n, -1);
  std::vector<zss::index_t> counts(k);
  zss::lloyd_workspace<float> ws(zss::as_matrix(X), k, kThreads);
  process_cpu_counter cpu(s);
  for (auto _ : s) {
    // Always from the same centroids, so every timed step does the same work.
    zss::lloyd_step_stats st;
    if constexpr (Fast)
      st = zss::lloyd_step<float>(zss::as_matrix(X), zss::as_matrix(C0), labels, zss::as_matrix(Cn),
                                  counts, {}, ws);
    else
      st = zss::lloyd_step_naive<float>(zss::as_matrix(X), zss::as_matrix(C0), labels,
                                        zss::as_matrix(Cn), counts);
    benchmark::DoNotOptimize(st);
    benchmark::ClobberMemory();
  }
  set_gflops(s, 2.0 * double(n) * double(d) * double(k));
}
BENCHMARK(BM_LloydIteration<true>)
    ->Name("BM_LloydIteration")
    ->Args({16384, 512, 64})
    ->Args({1024, 512, 16})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_LloydIteration<false>)
    ->Name("BM_LloydIteration_naive")
    ->Args({16384, 512, 64})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(2);

// A whole fit from fixed seeds (rows drawn with a fixed seed, as the peer's `init`), tol = 0 and
// a fixed number of steps: time/iterations compares with peer_kmeans.py's ms/iter.
void BM_KMeansFit(benchmark::State& s) {
  const auto n = zss::index_t(s.range(0)), d = zss::index_t(s.range(1)),
             k = zss::index_t(s.range(2));
  const auto X = tokens(n, d, std::max<zss::index_t>(k, 8), 1);
  const auto C0 = random_rows(X, k, 2);
  zss::kmeans_options p;
  p.max_iter = 20;
  p.tol = 0;
  p.threads = kThreads;
  zss::index_t iterations = 0;
  process_cpu_counter cpu(s);
  for (auto _ : s) {
    auto r = zss::kmeans<float>(zss::as_matrix(X), zss::as_matrix(C0), p);
    iterations = r.iterations;
    benchmark::DoNotOptimize(r.inertia);
  }
  s.counters["iterations"] = double(iterations);
  set_gflops(s, 2.0 * double(n) * double(d) * double(k) * double(iterations));
}
BENCHMARK(BM_KMeansFit)->Args({16384, 512, 64})->Unit(benchmark::kMillisecond)->UseRealTime();

// A fit to strict convergence (tol = 0, at most 300 steps) from the same seeds, plain Lloyd
// (prune:0) against Hamerly's exact bounds (prune:1, cluster/hamerly.hpp): same labels and
// steps, `dist_frac` = share of the N·K·steps point–centroid distances actually computed.
void BM_KMeansFitConverged(benchmark::State& s) {
  const zss::index_t n = 16384, d = 512, k = 64;
  const auto X = tokens(n, d, k, 1);
  const auto C0 = random_rows(X, k, 2);
  zss::kmeans_options p;
  p.max_iter = 300;
  p.tol = 0;
  p.threads = kThreads;
  p.prune = s.range(0) != 0;
  zss::kmeans_result<float> r;
  process_cpu_counter cpu(s);
  for (auto _ : s) {
    r = zss::kmeans<float>(zss::as_matrix(X), zss::as_matrix(C0), p);
    benchmark::DoNotOptimize(r.inertia);
  }
  s.counters["iterations"] = double(r.iterations);
  s.counters["dist_frac"] =
      double(r.distances_computed) /
      (double(n) * double(k) * double(r.iterations + (r.strict_convergence ? 0 : 1)));
}
BENCHMARK(BM_KMeansFitConverged)
    ->ArgName("prune")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// 16 images × 1024 tokens × 512, K ∈ {2, 4, 8, 16}, k-means++, ≤ 10 steps (peer_multiscale.py).
// One contiguous 16 × 32 × 32 × 512 tensor (multiscale_batch_tokens). `threads:` 2 (the
// machine) or 1; bench/python_overhead.py times zss.multiscale_kmeans against it on the same
// tokens (python_overhead_tokens.cpp writes them). `BM_MultiScaleBatchNested`: the same with
// `nested_seeds` (one k-means++ pass per image for K = 16, prefixes for the smaller K).
template <bool Fast, bool Nested = false>
void BM_MultiScaleBatch(benchmark::State& s) {
  const zss::index_t b = 16, q = 1024, d = 512;
  const auto all = zss::bench::multiscale_batch_tokens(b, 32, 32, d);
  std::vector<zss::matrix_ref<const float>> views;
  for (zss::index_t i = 0; i < b; ++i) views.emplace_back(all.data() + i * q * d, q, d);
  zss::multiscale_options p;
  p.ks = {2, 4, 8, 16};
  p.max_iter = 10;
  p.nested_seeds = Nested;
  p.threads = Fast ? int(s.range(0)) : kThreads;
  double flops = 0;
  process_cpu_counter cpu(s);
  for (auto _ : s) {
    if constexpr (Fast) {
      auto r = zss::multiscale_kmeans_batch<float>(views, 32, 32, p);
      benchmark::DoNotOptimize(r.data());
      flops = 0;
      for (auto& img : r)
        for (auto& sc : img)
          flops += 2.0 * double(q) * double(d) * double(sc.seeds) * double(sc.iterations);
    } else {
      // Naive reference: the same problems, one by one, naive Lloyd steps from k-means++ seeds.
      for (zss::index_t i = 0; i < b; ++i)
        for (zss::index_t k : p.ks) {
          auto C = zss::kmeanspp_init<float>(views[i], k, 0, (i << 16) | k);
          zss::tensor<float, 2> Cn = C;
          std::vector<std::int32_t> labels(q, -1);
          std::vector<zss::index_t> counts(k);
          for (zss::index_t it = 0; it < p.max_iter; ++it) {
            auto st = zss::lloyd_step_naive<float>(views[i], zss::as_matrix(C), labels,
                                                   zss::as_matrix(Cn), counts);
            std::swap(C, Cn);
            if (st.changed == 0) break;
          }
          benchmark::DoNotOptimize(C.data());
        }
    }
  }
  if (flops > 0) set_gflops(s, flops);
}
BENCHMARK(BM_MultiScaleBatch<true>)
    ->Name("BM_MultiScaleBatch")
    ->ArgName("threads")
    ->Arg(kThreads)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_MultiScaleBatch<true, true>)
    ->Name("BM_MultiScaleBatchNested")
    ->ArgName("threads")
    ->Arg(kThreads)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_MultiScaleBatch<false>)
    ->Name("BM_MultiScaleBatch_naive")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(1);

}  // namespace
