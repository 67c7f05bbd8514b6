// SPDX-License-Identifier: Apache-2.0
// The losses of DESIGN §2.1/§2.2, forward + backward, beside naive references, on 2 threads.
// Shapes follow shared/peers/peer_losses.py: R = 16 × 1024 × 512, 40 classes, bank 256.
// Wall time (UseRealTime) is the measure. The counter `proc_cpu_ms` is the process CPU time per
// iteration (both threads): on a shared machine it shows how much CPU the run actually got.
#include <benchmark/benchmark.h>

#include <cmath>
#include <ctime>
#include <vector>

#include "zss/core/random.hpp"
#include "zss/loss/cosine_ce.hpp"
#include "zss/loss/cosine_logits.hpp"
#include "zss/loss/glm.hpp"
#include "zss/nn/softmax.hpp"

#include "bench_common.hpp"

namespace {

using zss::bench::normal_data;
using zss::bench::process_cpu_counter;
using zss::bench::set_bytes;
using zss::bench::set_flops;

constexpr int kThreads = 2;

// ---- cosine CE: N × D rows, K seen classes (16 images), labels in [−1, K) ----------------------
struct ce_problem {
  zss::index_t N, D, K;
  zss::aligned_vector<float> X, W;
  std::vector<int> labels;
  std::vector<zss::index_t> roff;
  ce_problem(zss::index_t n, zss::index_t d, zss::index_t k)
      : N(n), D(d), K(k), X(normal_data(n * d, 1)), W(normal_data(k * d, 2)) {
    zss::rng g(3);
    for (zss::index_t i = 0; i < N; ++i) labels.push_back(int(g.below(K + 1)) - 1);
    const zss::index_t B = 16;
    for (zss::index_t b = 0; b <= B; ++b) roff.push_back(b * N / B);
  }
  zss::class_sets<float> sets() const {
    return {roff,
            zss::matrix_ref<const float>(W.data(), K, D),
            zss::matrix_ref<const float>(nullptr, 0, D),
            {}};
  }
};

// `accumulate`: the library's default adds into dX; false writes dX (cosine_ce_options).
void cosine_ce_bench(benchmark::State& s, bool accumulate) {
  ce_problem p(zss::index_t(s.range(0)), zss::index_t(s.range(1)), zss::index_t(s.range(2)));
  zss::aligned_vector<float> dX(p.N * p.D, 0.f), dW(p.K * p.D, 0.f);
  zss::cosine_ce_cache<float> cache;
  zss::cosine_ce_options prm;
  prm.threads = kThreads;
  prm.accumulate = accumulate;
  process_cpu_counter cpu(s);
  for (auto _ : s) {
    float loss = 0;
    zss::cosine_ce_forward_backward(loss, zss::matrix_ref<float>(dX.data(), p.N, p.D),
                                    {zss::matrix_ref<float>(dW.data(), p.K, p.D), {}}, cache,
                                    zss::matrix_ref<const float>(p.X.data(), p.N, p.D), p.labels,
                                    {}, p.sets(), prm);
    benchmark::DoNotOptimize(loss);
    benchmark::ClobberMemory();
  }
  set_flops(s, 6.0 * double(p.N) * double(p.K) * double(p.D));  // logits, dX̂, dŴ
}
void BM_CosineCE(benchmark::State& s) {
  cosine_ce_bench(s, true);
}
void BM_CosineCE_overwrite(benchmark::State& s) {
  cosine_ce_bench(s, false);
}
BENCHMARK(BM_CosineCE)->Args({16384, 512, 40})->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CosineCE_overwrite)
    ->Args({16384, 512, 40})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// Reference: the unfused path — store the N × K logits, softmax CE into dS, then the logits'
// backward (three passes, a full logits matrix).
void BM_CosineCE_unfused(benchmark::State& s) {
  ce_problem p(zss::index_t(s.range(0)), zss::index_t(s.range(1)), zss::index_t(s.range(2)));
  zss::aligned_vector<float> dX(p.N * p.D, 0.f), dW(p.K * p.D, 0.f), S(p.N * p.K), dS(p.N * p.K);
  zss::cosine_logits_cache<float> cache;
  zss::cosine_logits_options prm;
  prm.threads = kThreads;
  process_cpu_counter cpu(s);
  for (auto _ : s) {
    zss::cosine_logits_forward(zss::matrix_ref<float>(S.data(), p.N, p.K), cache,
                               zss::matrix_ref<const float>(p.X.data(), p.N, p.D), p.sets(), prm);
    double loss = 0, n = 0;
    for (zss::index_t i = 0; i < p.N; ++i) n += p.labels[i] >= 0;
    for (zss::index_t i = 0; i < p.N; ++i) {
      float* ds = dS.data() + i * p.K;
      if (p.labels[i] < 0) {
        std::fill_n(ds, p.K, 0.f);
        continue;
      }
      const float lse = zss::softmax_row(ds, S.data() + i * p.K, p.K);
      loss += lse - S[i * p.K + zss::index_t(p.labels[i])];
      ds[p.labels[i]] -= 1.f;
      for (zss::index_t k = 0; k < p.K; ++k) ds[k] /= float(n);
    }
    zss::cosine_logits_backward(zss::matrix_ref<float>(dX.data(), p.N, p.D),
                                {zss::matrix_ref<float>(dW.data(), p.K, p.D), {}},
                                zss::matrix_ref<const float>(dS.data(), p.N, p.K), cache,
                                zss::matrix_ref<const float>(p.X.data(), p.N, p.D), p.sets(), prm);
    benchmark::DoNotOptimize(loss);
    benchmark::ClobberMemory();
  }
  set_flops(s, 6.0 * double(p.N) * double(p.K) * double(p.D));
}
BENCHMARK(BM_CosineCE_unfused)
    ->Args({16384, 512, 40})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// ---- GLM: R = B × P × D, CLS B × D, bank M -----------------------------------------------------
struct glm_problem {
  zss::index_t B, P, D;
  zss::aligned_vector<float> R, C;
  zss::cls_bank<float> bank;
  glm_problem(zss::index_t b, zss::index_t p, zss::index_t d, zss::index_t m)
      : B(b), P(p), D(d), R(normal_data(b * p * d, 4)), C(normal_data(b * d, 5)), bank(m, d) {
    auto V = normal_data(m * d, 6);
    bank.push(zss::matrix_ref<const float>(V.data(), m, d));
  }
  zss::matrix_ref<const float> r() const { return {R.data(), B * P, D}; }
  zss::matrix_ref<const float> c() const { return {C.data(), B, D}; }
};

void BM_GlmAttention(benchmark::State& s) {
  glm_problem p(16, 1024, 512, zss::index_t(s.range(0)));
  zss::aligned_vector<float> dR(p.B * p.P * p.D, 0.f);
  zss::glm_cache<float> cache;
  zss::glm_options prm;
  prm.threads = kThreads;
  process_cpu_counter cpu(s);
  for (auto _ : s) {
    float loss = 0;
    zss::glm_forward_backward(loss, zss::matrix_ref<float>(dR.data(), p.B * p.P, p.D), cache, p.r(),
                              p.P, p.c(), p.bank, prm);
    benchmark::DoNotOptimize(loss);
    benchmark::ClobberMemory();
  }
  // R read in the forward and in the backward, dR read and written.
  set_bytes(s, 4.0 * double(p.B * p.P * p.D) * sizeof(float));
}
BENCHMARK(BM_GlmAttention)->Arg(256)->UseRealTime()->Unit(benchmark::kMillisecond);

// Reference: the formulas of DESIGN §2.2 as plain two-pass loops (logits, softmax, pooled sum;
// backward with a separate da pass), one image per thread.
void BM_GlmAttention_naive(benchmark::State& s) {
  glm_problem p(16, 1024, 512, zss::index_t(s.range(0)));
  const zss::index_t B = p.B, P = p.P, D = p.D, K = B + p.bank.size();
  zss::aligned_vector<float> dR(B * P * D, 0.f), keys(K * D), a(B * P), S(B * D), g(B * D),
      dS(B * D), da(B * P);
  process_cpu_counter cpu(s);
  for (auto _ : s) {
    for (zss::index_t b = 0; b < B; ++b) {
      zss::normalize_row(keys.data() + b * D, p.C.data() + b * D, D);
    }
    p.bank.copy_to(keys.data() + B * D);
#pragma omp parallel for num_threads(kThreads)
    for (zss::index_t b = 0; b < B; ++b) {
      float* e = a.data() + b * P;
      for (zss::index_t q = 0; q < P; ++q) {
        float v = 0;
        for (zss::index_t d = 0; d < D; ++d) v += p.C[b * D + d] * p.R[(b * P + q) * D + d];
        e[q] = v / std::sqrt(float(D));
      }
      zss::ref::softmax_row(e, e, P);
      for (zss::index_t d = 0; d < D; ++d) {
        float v = 0;
        for (zss::index_t q = 0; q < P; ++q) v += e[q] * p.R[(b * P + q) * D + d];
        S[b * D + d] = v;
      }
    }
    double loss = 0;
    for (zss::index_t b = 0; b < B; ++b) {
      const float n = zss::normalize_row(g.data() + b * D, S.data() + b * D, D);
      std::vector<float> z(K), dz(K);
      for (zss::index_t j = 0; j < K; ++j) {
        float v = 0;
        for (zss::index_t d = 0; d < D; ++d) v += g[b * D + d] * keys[j * D + d];
        z[j] = v / 0.07f;
      }
      const float lse = zss::ref::softmax_row(dz.data(), z.data(), K);
      loss += lse - z[b];
      dz[b] -= 1.f;
      std::vector<float> dg(D, 0.f);
      for (zss::index_t j = 0; j < K; ++j)
        for (zss::index_t d = 0; d < D; ++d) dg[d] += dz[j] / (0.07f * float(B)) * keys[j * D + d];
      float gd = 0;
      for (zss::index_t d = 0; d < D; ++d) gd += g[b * D + d] * dg[d];
      for (zss::index_t d = 0; d < D; ++d) dS[b * D + d] = (dg[d] - g[b * D + d] * gd) / n;
    }
#pragma omp parallel for num_threads(kThreads)
    for (zss::index_t b = 0; b < B; ++b) {
      float sum = 0;
      for (zss::index_t q = 0; q < P; ++q) {
        float v = 0;
        for (zss::index_t d = 0; d < D; ++d) v += dS[b * D + d] * p.R[(b * P + q) * D + d];
        da[b * P + q] = v;
        sum += a[b * P + q] * v;
      }
      for (zss::index_t q = 0; q < P; ++q) {
        const float aq = a[b * P + q], de = aq * (da[b * P + q] - sum) / std::sqrt(float(D));
        for (zss::index_t d = 0; d < D; ++d)
          dR[(b * P + q) * D + d] += aq * dS[b * D + d] + de * p.C[b * D + d];
      }
    }
    benchmark::DoNotOptimize(loss);
    benchmark::ClobberMemory();
  }
  set_bytes(s, 4.0 * double(B * P * D) * sizeof(float));
}
BENCHMARK(BM_GlmAttention_naive)->Arg(256)->UseRealTime()->Unit(benchmark::kMillisecond);

// `accumulate`: the library's default adds into dR; false writes dR (glm_options).
void glm_dense_bench(benchmark::State& s, bool accumulate) {
  glm_problem p(16, 1024, 512, 0);
  zss::aligned_vector<float> dR(p.B * p.P * p.D, 0.f);
  zss::glm_cache<float> cache;
  zss::glm_options prm;
  prm.pool = zss::glm_pool::dense;
  prm.threads = kThreads;
  prm.accumulate = accumulate;
  process_cpu_counter cpu(s);
  for (auto _ : s) {
    float loss = 0;
    zss::glm_forward_backward(loss, zss::matrix_ref<float>(dR.data(), p.B * p.P, p.D), cache, p.r(),
                              p.P, p.c(), p.bank, prm);
    benchmark::DoNotOptimize(loss);
    benchmark::ClobberMemory();
  }
  set_flops(s, 4.0 * double(p.B * p.P) * double(p.B) * double(p.D));  // logits and dX̂
}
void BM_GlmDense(benchmark::State& s) {
  glm_dense_bench(s, true);
}
void BM_GlmDense_overwrite(benchmark::State& s) {
  glm_dense_bench(s, false);
}
BENCHMARK(BM_GlmDense)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_GlmDense_overwrite)->UseRealTime()->Unit(benchmark::kMillisecond);

// Reference: every pixel row normalised, its 16 logits, softmax, and dX in plain loops.
void BM_GlmDense_naive(benchmark::State& s) {
  glm_problem p(16, 1024, 512, 0);
  const zss::index_t B = p.B, P = p.P, D = p.D, N = B * P;
  zss::aligned_vector<float> dR(N * D, 0.f), keys(B * D);
  process_cpu_counter cpu(s);
  for (auto _ : s) {
    for (zss::index_t b = 0; b < B; ++b)
      zss::normalize_row(keys.data() + b * D, p.C.data() + b * D, D);
    double loss = 0;
#pragma omp parallel for num_threads(kThreads) reduction(+ : loss)
    for (zss::index_t i = 0; i < N; ++i) {
      const float* r = p.R.data() + i * D;
      float n2 = 0;
      for (zss::index_t d = 0; d < D; ++d) n2 += r[d] * r[d];
      const float n = std::max(std::sqrt(n2), 1e-12f);
      float z[16], pr[16];
      for (zss::index_t j = 0; j < B; ++j) {
        float v = 0;
        for (zss::index_t d = 0; d < D; ++d) v += r[d] * keys[j * D + d];
        z[j] = v / (n * 0.07f);
      }
      const float lse = zss::ref::softmax_row(pr, z, B);
      loss += lse - z[i / P];
      pr[i / P] -= 1.f;
      float dxh[512] = {};
      for (zss::index_t j = 0; j < B; ++j)
        for (zss::index_t d = 0; d < D; ++d) dxh[d] += pr[j] / (0.07f * float(N)) * keys[j * D + d];
      float xd = 0;
      for (zss::index_t d = 0; d < D; ++d) xd += r[d] * dxh[d];
      for (zss::index_t d = 0; d < D; ++d) dR[i * D + d] += (dxh[d] - r[d] * xd / (n * n)) / n;
    }
    benchmark::DoNotOptimize(loss);
    benchmark::ClobberMemory();
  }
  set_flops(s, 4.0 * double(N) * double(B) * double(D));
}
BENCHMARK(BM_GlmDense_naive)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
