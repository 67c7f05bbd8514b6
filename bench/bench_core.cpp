// SPDX-License-Identifier: Apache-2.0
// Core kernels beside their scalar references, with GB/s (bytes read + written per call).
#include <benchmark/benchmark.h>

#include "zss/core/random.hpp"
#include "zss/core/simd.hpp"
#include "zss/nn/normalize.hpp"
#include "zss/nn/softmax.hpp"

#include "bench_common.hpp"

namespace {

auto data(zss::index_t n, std::uint64_t seed) {
  return zss::bench::normal_data(n, seed);
}
using zss::bench::set_bytes;

template <bool Fast>
void BM_Dot(benchmark::State& s) {
  const auto n = zss::index_t(s.range(0));
  auto a = data(n, 1), b = data(n, 2);
  for (auto _ : s) {
    float r =
        Fast ? zss::simd::dot(a.data(), b.data(), n) : zss::simd::ref::dot(a.data(), b.data(), n);
    benchmark::DoNotOptimize(r);
  }
  set_bytes(s, 2.0 * n * sizeof(float));
}
BENCHMARK(BM_Dot<true>)->Name("BM_Dot")->Arg(512)->Arg(4096)->Arg(1 << 16);
BENCHMARK(BM_Dot<false>)->Name("BM_Dot_ref")->Arg(512)->Arg(4096)->Arg(1 << 16);

template <bool Fast>
void BM_SquaredDistance(benchmark::State& s) {
  const auto n = zss::index_t(s.range(0));
  auto a = data(n, 1), b = data(n, 2);
  for (auto _ : s) {
    float r = Fast ? zss::simd::squared_distance(a.data(), b.data(), n)
                   : zss::simd::ref::squared_distance(a.data(), b.data(), n);
    benchmark::DoNotOptimize(r);
  }
  set_bytes(s, 2.0 * n * sizeof(float));
}
BENCHMARK(BM_SquaredDistance<true>)->Name("BM_SquaredDistance")->Arg(512)->Arg(1 << 16);
BENCHMARK(BM_SquaredDistance<false>)->Name("BM_SquaredDistance_ref")->Arg(512)->Arg(1 << 16);

template <bool Fast>
void BM_Axpy(benchmark::State& s) {
  const auto n = zss::index_t(s.range(0));
  auto x = data(n, 1), y = data(n, 2);
  for (auto _ : s) {
    if (Fast)
      zss::simd::axpy(1e-7f, x.data(), y.data(), n);
    else
      zss::simd::ref::axpy(1e-7f, x.data(), y.data(), n);
    benchmark::ClobberMemory();
  }
  set_bytes(s, 3.0 * n * sizeof(float));
}
BENCHMARK(BM_Axpy<true>)->Name("BM_Axpy")->Arg(512)->Arg(1 << 16);
BENCHMARK(BM_Axpy<false>)->Name("BM_Axpy_ref")->Arg(512)->Arg(1 << 16);

template <bool Fast>
void BM_Argmin(benchmark::State& s) {
  const auto n = zss::index_t(s.range(0));
  auto x = data(n, 3);
  for (auto _ : s) {
    auto r = Fast ? zss::simd::argmin(x.data(), n) : zss::simd::ref::argmin(x.data(), n);
    benchmark::DoNotOptimize(r);
  }
  set_bytes(s, 1.0 * n * sizeof(float));
}
BENCHMARK(BM_Argmin<true>)->Name("BM_Argmin")->Arg(64)->Arg(4096);
BENCHMARK(BM_Argmin<false>)->Name("BM_Argmin_ref")->Arg(64)->Arg(4096);

template <bool Fast>
void BM_SoftmaxRows(benchmark::State& s) {
  const zss::index_t rows = 4096, k = zss::index_t(s.range(0));
  auto x = data(rows * k, 4);
  zss::aligned_vector<float> y(rows * k);
  for (auto _ : s) {
    for (zss::index_t i = 0; i < rows; ++i) {
      if (Fast)
        zss::softmax_row(y.data() + i * k, x.data() + i * k, k);
      else
        zss::ref::softmax_row(y.data() + i * k, x.data() + i * k, k);
    }
    benchmark::ClobberMemory();
  }
  set_bytes(s, 2.0 * rows * k * sizeof(float));
}
BENCHMARK(BM_SoftmaxRows<true>)->Name("BM_SoftmaxRows")->Arg(40)->Arg(512);
BENCHMARK(BM_SoftmaxRows<false>)->Name("BM_SoftmaxRows_ref")->Arg(40)->Arg(512);

void BM_NormalizeRows(benchmark::State& s) {
  const zss::index_t rows = zss::index_t(s.range(0)), d = 512;
  auto x = data(rows * d, 5);
  zss::aligned_vector<float> y(rows * d);
  zss::normalize_cache<float> cache;
  const int threads = int(s.range(1));
  for (auto _ : s) {
    zss::normalize_rows_forward(zss::matrix_ref<float>(y.data(), rows, d), cache,
                                zss::matrix_ref<const float>(x.data(), rows, d), 1e-12f, threads);
    benchmark::ClobberMemory();
  }
  set_bytes(s, 2.0 * rows * d * sizeof(float));
}
BENCHMARK(BM_NormalizeRows)
    ->ArgNames({"rows", "threads"})
    ->Args({16384, 1})
    ->Args({16384, 2})
    ->UseRealTime();

}  // namespace
