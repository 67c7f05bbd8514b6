// SPDX-License-Identifier: Apache-2.0
// The compact encoder (DESIGN.md §3): one training step as peer_encoder.py times it, plus the
// encoder's forward / backward alone and every layer's conv forward / backward, with GFLOP/s
// (2 FLOP per multiply-add; backward = weight gradient + input gradient, none for layer 1).
#include <benchmark/benchmark.h>

#include <vector>

#include "zss/core/random.hpp"
#include "zss/loss/cosine_ce.hpp"
#include "zss/nn/conv2d.hpp"
#include "zss/nn/encoder.hpp"
#include "zss/optim/adamw.hpp"

namespace {

constexpr zss::index_t kB = 16, kH = 64, kD = 64, kK = 20;

void set_flops(benchmark::State& s, double flops_per_iter) {
  s.counters["GFLOP/s"] = benchmark::Counter(
      flops_per_iter, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  s.counters["GFLOP"] = flops_per_iter * 1e-9;
}

// Forward, backward and step FLOPs of the encoder on one batch.
struct encoder_flops {
  double fwd = 0, bwd = 0;
  explicit encoder_flops(const zss::encoder<float>& net) {
    for (zss::index_t l = 0; l < net.layers(); ++l) {
      const auto g = net.geometry(l, kH, kH);
      const double f = 2.0 * double(kB * g.out_pixels() * g.patch() * net.out_channels(l));
      fwd += f;
      bwd += l == 0 ? f : 2 * f;
    }
  }
};

struct step_fixture {
  zss::encoder<float> net;
  zss::encoder_cache<float> cache;
  zss::tensor<float, 4> images;
  zss::tensor<float, 3> F, dF;
  zss::aligned_vector<float> text;
  std::vector<int> labels;
  std::vector<zss::index_t> offsets;
  zss::cosine_ce_cache<float> ce;
  zss::cosine_ce_options ce_params;
  zss::adamw_state<float> opt;
  zss::adamw_options adamw;
  zss::index_t P = 0;

  explicit step_fixture(bool winograd = true) {
    cache.winograd = winograd;
    zss::encoder_init(net, 0);
    zss::rng g(1);
    images = zss::tensor<float, 4>::from_shape({kB, kH, kH, 3});
    for (auto& v : images) v = g.normal<float>();
    const auto [h, w] = net.output_grid(kH, kH);
    P = h * w;
    F = zss::tensor<float, 3>::from_shape({kB, P, kD});
    dF = F;
    text.resize(kK * kD);
    for (auto& v : text) v = g.normal<float>();
    for (zss::index_t i = 0; i < kB * P; ++i)
      labels.push_back(int(g.below(kK + 1)) - 1);  // −1 = ignored
    for (zss::index_t b = 0; b <= kB; ++b) offsets.push_back(b * P);
    ce_params.threads = 0;
    adamw.lr = 1e-3f;
    adamw.weight_decay = 0;  // the peer uses Adam; the decay costs the same
  }

  float step() {
    net.params.zero_grad();
    dF.fill(0.f);
    zss::encoder_forward(F, cache, images, net, 0);
    const zss::class_sets<float> sets{
        offsets, zss::matrix_ref<const float>(text.data(), kK, kD), {}, {}};
    float loss = 0;
    zss::cosine_ce_forward_backward(
        loss, zss::matrix_ref<float>(dF.data(), kB * P, kD), zss::class_set_grads<float>{}, ce,
        zss::matrix_ref<const float>(F.data(), kB * P, kD), std::span<const int>(labels),
        std::span<const float>{}, sets, ce_params);
    zss::encoder_backward(net, dF, cache, images, 0);
    zss::adamw_step(std::span<float>(net.params.values(), net.params.size()),
                    std::span<const float>(net.params.grads(), net.params.size()), opt, adamw);
    return loss;
  }
};

// One training step: encoder forward, fused cosine CE (20 classes, stride 4) forward+backward,
// encoder backward, AdamW. Same work as shared/peers/peer_encoder.py. `winograd:1` (the default
// cache) runs layers 3 and 5 (stride 1, 64 and 128 channels) by Winograd F(2×2, 3×3), `0` every
// layer in the direct im2col form; GFLOP/s counts the direct form's FLOPs in both, so Winograd's
// is an effective rate (it does 2.25× fewer multiply–adds in those layers' forward and input
// gradient).
void BM_EncoderStep(benchmark::State& s) {
  step_fixture f(s.range(0) != 0);
  f.step();  // warm-up: sizes every cache
  for (auto _ : s) benchmark::DoNotOptimize(f.step());
  const encoder_flops fl(f.net);
  set_flops(s, fl.fwd + fl.bwd);
}
// The CPU column is the process CPU time (all threads): on the shared 2-core machine it is the
// number to compare when the wall time is inflated by other jobs.
BENCHMARK(BM_EncoderStep)
    ->Name("BM_EncoderStep/B16/64x64/D64/K20")
    ->ArgName("winograd")
    ->Arg(1)
    ->Arg(0)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MeasureProcessCPUTime();

void BM_EncoderForward(benchmark::State& s) {
  step_fixture f(s.range(0) != 0);
  f.step();
  for (auto _ : s) {
    zss::encoder_forward(f.F, f.cache, f.images, f.net, 0);
    benchmark::ClobberMemory();
  }
  set_flops(s, encoder_flops(f.net).fwd);
}
BENCHMARK(BM_EncoderForward)
    ->Name("BM_EncoderForward/B16/64x64/D64")
    ->ArgName("winograd")
    ->Arg(1)
    ->Arg(0)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_EncoderBackward(benchmark::State& s) {
  step_fixture f(s.range(0) != 0);
  f.step();
  for (auto _ : s) {
    zss::encoder_backward(f.net, f.dF, f.cache, f.images, 0);
    benchmark::ClobberMemory();
  }
  set_flops(s, encoder_flops(f.net).bwd);
}
BENCHMARK(BM_EncoderBackward)
    ->Name("BM_EncoderBackward/B16/64x64/D64")
    ->ArgName("winograd")
    ->Arg(1)
    ->Arg(0)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// One layer of the default net on the whole batch through the public conv2d API.
struct layer_fixture {
  zss::conv2d_geometry g;
  zss::index_t co;
  zss::tensor<float, 4> in, out, din;
  zss::aligned_vector<float> w, dw;
  zss::conv2d_cache<float> cache;
  explicit layer_fixture(zss::index_t layer) {
    zss::encoder<float> net;
    g = net.geometry(layer, kH, kH);
    co = net.out_channels(layer);
    zss::rng r(layer);
    in = zss::tensor<float, 4>::from_shape({kB, g.in_h, g.in_w, g.in_c});
    for (auto& v : in) v = r.normal<float>();
    din = in;
    out = zss::tensor<float, 4>::from_shape({kB, g.out_h(), g.out_w(), co});
    for (auto& v : out) v = r.normal<float>();
    w.resize(g.patch() * co + co);
    dw.resize(w.size());
    for (auto& v : w) v = r.normal<float>(0.f, 0.05f);
  }
  double flops() const { return 2.0 * double(kB * g.out_pixels() * g.patch() * co); }
  zss::matrix_ref<const float> W() const { return {w.data(), g.patch(), co}; }
};

void BM_ConvForward(benchmark::State& s) {
  layer_fixture f(zss::index_t(s.range(0)));
  for (auto _ : s) {
    zss::conv2d_forward(f.out, f.cache, f.in, f.W(), f.w.data() + f.g.patch() * f.co, f.g, 0);
    benchmark::ClobberMemory();
  }
  set_flops(s, f.flops());
}
BENCHMARK(BM_ConvForward)
    ->ArgName("layer")
    ->DenseRange(0, 5)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_ConvBackward(benchmark::State& s) {
  const auto layer = zss::index_t(s.range(0));
  layer_fixture f(layer);
  for (auto _ : s) {
    zss::conv2d_backward(layer == 0 ? nullptr : &f.din,
                         zss::matrix_ref<float>(f.dw.data(), f.g.patch(), f.co),
                         f.dw.data() + f.g.patch() * f.co, f.out, f.cache, f.in, f.W(), f.g, 0);
    benchmark::ClobberMemory();
  }
  set_flops(s, f.flops() * (layer == 0 ? 1 : 2));
}
BENCHMARK(BM_ConvBackward)
    ->ArgName("layer")
    ->DenseRange(0, 5)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
