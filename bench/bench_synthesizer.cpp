// SPDX-License-Identifier: Apache-2.0
// The PLM synthesizer (DESIGN §2.4): one pre-norm decoder block over the regions of B images plus
// L_syn (BCE over the seen classes), forward + backward, beside a per-region reference.
//
// BM_Synthesizer/B/R/D/T        B images × R regions, width D, hidden 4·D, memory = CLS + R region
//                                tokens per image, K = 16 seen classes (6 of 8 regions seen, the
//                                rest pseudo), T threads. All regions batched: GEMMs over N = B·R
//                                rows.
// BM_Synthesizer_naive/B/R/D/1  the same layers called one region at a time (N = 1: matrix-vector
//                                products; the image's memory is projected again for every
//                                region) — what a straightforward per-region loop costs.
// GFLOP/s counts 2 × the multiply-adds of the batched forward + backward products; the naive
// figure uses the same count, so it is the batched work done the slow way.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <span>
#include <vector>

#include "zss/core/eigen_map.hpp"
#include "zss/core/random.hpp"
#include "zss/plm/synthesizer.hpp"
#include "zss/plm/synthesizer_loss.hpp"

namespace {

using zss::index_t;

struct synth_bench {
  index_t B, R, D, N, K = 16;
  zss::param_buffer<float> buf;
  zss::synthesizer_param_ids ids;
  zss::aligned_vector<float> P, C, U, Text, Pi, dPi, dP;
  std::vector<index_t> off;
  std::vector<int> labels;
  zss::synthesizer_cache<float> cache;
  zss::syn_loss_cache<float> lcache;

  synth_bench(index_t b, index_t r, index_t d) : B(b), R(r), D(d), N(b * r) {
    ids = zss::declare_synthesizer_params(buf, D);
    buf.allocate();
    zss::init_synthesizer_params(buf, ids, 1);
    auto fill = [](zss::aligned_vector<float>& v, index_t n, std::uint64_t seed) {
      zss::rng g(seed);
      v.resize(n);
      for (auto& x : v) x = g.normal<float>();
    };
    fill(P, N * D, 2);
    fill(C, B * D, 3);
    fill(U, N * D, 4);
    fill(Text, K * D, 5);
    Pi.resize(N * D);
    dPi.resize(N * D);
    dP.resize(N * D);
    for (index_t i = 0; i <= B; ++i) off.push_back(i * R);
    for (index_t l = 0; l < N; ++l) labels.push_back(l % R < R * 3 / 4 ? int(l % K) : -1);
  }

  /// 2 × multiply-adds of the batched forward + backward products.
  double flops() const {
    const double n = double(N), m = double(B + N), d = double(D), h = 4.0 * d, k = double(K);
    const double scores =
        2.0 * double(B) * double(R) * double(R + 1) * d;  // one n_b × m_b × D product per image
    const double fwd = 2 * (2 * n * d * d)                // W_q, W_o
                       + 2 * (2 * m * d * d)              // W_k, W_v
                       + 2 * scores                       // QKᵀ, PV
                       + 2 * (2 * n * d * h)              // fc1, fc2
                       + 2 * n * k * d;                   // L_syn logits
    const double bwd = 4 * (2 * n * d * d)                // W_q, W_o: input and weight gradients
                       +
                       2 * (2 * m * d * d)  // W_k, W_v: weight gradients only (memory is constant)
                       + 4 * scores         // dV, dP, dQ, dK
                       + 4 * (2 * n * d * h)  // fc1, fc2: input and weight gradients
                       + 2 * n * k * d;       // dΠ
    return fwd + bwd;
  }
};

void set_flops(benchmark::State& s, double flops) {
  s.counters["GFLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate,
                                             benchmark::Counter::kIs1000);
}

void BM_Synthesizer(benchmark::State& s) {
  zss::eigen_single_thread_guard guard;
  synth_bench b(index_t(s.range(0)), index_t(s.range(1)), index_t(s.range(2)));
  const int threads = int(s.range(3));
  const index_t N = b.N, D = b.D;
  const auto params = b.ids.params(b.buf);
  const auto grads = b.ids.grads(b.buf);
  for (auto _ : s) {
    b.buf.zero_grad();
    std::fill(b.dP.begin(), b.dP.end(), 0.0f);
    std::fill(b.dPi.begin(), b.dPi.end(), 0.0f);
    zss::synthesizer_forward<float>({b.Pi.data(), N, D}, b.cache, {b.P.data(), N, D},
                                    {b.C.data(), b.B, D}, {b.U.data(), N, D}, b.off, params, {},
                                    threads);
    float loss = 0;
    zss::syn_loss_forward<float>(loss, b.lcache, {b.Pi.data(), N, D}, b.labels,
                                 {b.Text.data(), b.K, D});
    zss::syn_loss_backward<float>({b.dPi.data(), N, D}, 1.0f, b.lcache, {b.Pi.data(), N, D},
                                  b.labels, {b.Text.data(), b.K, D});
    zss::synthesizer_backward<float>({b.dP.data(), N, D}, grads, {b.dPi.data(), N, D}, b.cache,
                                     {b.Pi.data(), N, D}, {b.P.data(), N, D}, {b.C.data(), b.B, D},
                                     {b.U.data(), N, D}, b.off, params, {}, threads);
    benchmark::DoNotOptimize(loss);
    benchmark::ClobberMemory();
  }
  set_flops(s, b.flops());
}
BENCHMARK(BM_Synthesizer)
    ->Args({16, 8, 512, 1})
    ->Args({16, 8, 512, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_Synthesizer_naive(benchmark::State& s) {
  zss::eigen_single_thread_guard guard;
  synth_bench b(index_t(s.range(0)), index_t(s.range(1)), index_t(s.range(2)));
  const index_t D = b.D, R = b.R;
  const auto params = b.ids.params(b.buf);
  const auto grads = b.ids.grads(b.buf);
  zss::aligned_vector<float> mem((R + 1) * D), a(D), attn(D), h(D), g(D), m(D), o(D), d_o(D),
      d_g(D), d_a(D);
  zss::layer_norm_cache<float> ln1, ln2;
  zss::attention_cache<float> ac;
  zss::mlp_cache<float> mc;
  zss::normalize_cache<float> nc;
  const index_t q_off[2] = {0, 1}, m_off[2] = {0, R + 1};
  for (auto _ : s) {
    b.buf.zero_grad();
    std::fill(b.dP.begin(), b.dP.end(), 0.0f);
    for (index_t l = 0; l < b.N; ++l) {
      const index_t img = l / R;
      std::copy_n(b.C.data() + img * D, D, mem.data());  // [c_b ; u of the image's regions]
      std::copy_n(b.U.data() + img * R * D, R * D, mem.data() + D);
      const float* p = b.P.data() + l * D;
      float* pi = b.Pi.data() + l * D;
      float* dpi = b.dPi.data() + l * D;
      float* dp = b.dP.data() + l * D;
      zss::layer_norm_forward<float>({a.data(), 1, D}, ln1, {p, 1, D}, params.ln1);
      zss::attention_forward<float>({attn.data(), 1, D}, ac, {a.data(), 1, D},
                                    {mem.data(), R + 1, D}, q_off, m_off, params.attn);
      for (index_t j = 0; j < D; ++j) h[j] = p[j] + attn[j];
      zss::layer_norm_forward<float>({g.data(), 1, D}, ln2, {h.data(), 1, D}, params.ln2);
      zss::mlp_forward<float>({m.data(), 1, D}, mc, {g.data(), 1, D}, params.mlp);
      for (index_t j = 0; j < D; ++j) o[j] = h[j] + m[j];
      zss::normalize_rows_forward<float>({pi, 1, D}, nc, {o.data(), 1, D});
      float loss = 0;
      const std::span<const int> lab(b.labels.data() + l, 1);
      zss::syn_loss_forward<float>(loss, b.lcache, {pi, 1, D}, lab, {b.Text.data(), b.K, D});
      std::fill_n(dpi, D, 0.0f);
      zss::syn_loss_backward<float>({dpi, 1, D}, 1.0f, b.lcache, {pi, 1, D}, lab,
                                    {b.Text.data(), b.K, D});
      std::fill(d_o.begin(), d_o.end(), 0.0f);
      std::fill(d_g.begin(), d_g.end(), 0.0f);
      std::fill(d_a.begin(), d_a.end(), 0.0f);
      zss::normalize_rows_backward<float>({d_o.data(), 1, D}, {dpi, 1, D}, nc, {pi, 1, D});
      zss::mlp_backward<float>({d_g.data(), 1, D}, grads.mlp, {d_o.data(), 1, D}, mc,
                               {g.data(), 1, D}, params.mlp);
      zss::layer_norm_backward<float>({d_o.data(), 1, D}, grads.ln2, {d_g.data(), 1, D}, ln2,
                                      {h.data(), 1, D}, params.ln2);
      zss::attention_backward<float>({d_a.data(), 1, D}, {}, grads.attn, {d_o.data(), 1, D}, ac,
                                     {a.data(), 1, D}, {mem.data(), R + 1, D}, q_off, m_off,
                                     params.attn);
      zss::layer_norm_backward<float>({dp, 1, D}, grads.ln1, {d_a.data(), 1, D}, ln1, {p, 1, D},
                                      params.ln1);
      for (index_t j = 0; j < D; ++j) dp[j] += d_o[j];
      benchmark::DoNotOptimize(loss);
    }
    benchmark::ClobberMemory();
  }
  set_flops(s, b.flops());
}
BENCHMARK(BM_Synthesizer_naive)
    ->Args({16, 8, 512, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
