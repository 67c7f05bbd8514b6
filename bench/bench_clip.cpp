// SPDX-License-Identifier: Apache-2.0
// mini-CLIP (zss/clip/): one training step at the default size (batch 64 of 64 × 64 scenes:
// image and text encoders forward, symmetric InfoNCE, both backwards, clipping, AdamW) in
// images/s with GFLOP/s, the teacher's dense inference, and the machine's FP32 FMA peak measured
// in the same sitting (the roofline the step is compared with).
#include <benchmark/benchmark.h>

#include <omp.h>

#include <xsimd/xsimd.hpp>

#include "bench_common.hpp"
#include "zss/clip/teacher.hpp"
#include "zss/clip/trainer.hpp"

namespace {

using T = float;

/// FLOPs of one training step: per image 3× the image encoder's forward (forward, weight
/// gradient, input gradient) less the first layer's input gradient (none); the text encoder and
/// the loss are below 0.1 % and not counted.
double step_flops(const zss::clip::model<T>& m, zss::index_t B, zss::index_t H, zss::index_t W) {
  const auto& trunk = m.image().trunk;
  const auto g1 = trunk.geometry(0, H, W);
  const double first = 2.0 * double(g1.out_pixels() * g1.patch() * trunk.out_channels(0));
  return double(B) * (3 * m.image().forward_flops(H, W) - first);
}

struct clip_fixture {
  zss::clip::options o;
  zss::toy::scene_options scenes;
  zss::clip::corpus data;
  zss::clip::trainer<T> tr;
  zss::train::batch_sampler sampler;
  clip_fixture()
      : data(scenes, o.captions, 256, 0, 0), tr(o, 0, 0), sampler(256, o.train.batch, 0) {}
};

void BM_MiniClipStep(benchmark::State& s) {
  clip_fixture f;
  const auto batch = f.data.batch<T>(f.sampler, 0, true);
  f.tr.step(batch);                        // warm: caches sized
  zss::bench::process_cpu_counter cpu(s);  // proc_cpu_ms: all threads
  for (auto _ : s) benchmark::DoNotOptimize(f.tr.step(batch).loss);
  const auto B = f.o.train.batch;
  zss::bench::set_flops(s, step_flops(f.tr.net(), B, f.scenes.height, f.scenes.width));
  s.SetItemsProcessed(s.iterations() * std::int64_t(B));
}
BENCHMARK(BM_MiniClipStep)
    ->Name("BM_MiniClipStep/B64/64x64/D64")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The corpus batch alone (8-bit pixels to floats, flips, captions): the data side of a step.
void BM_MiniClipBatch(benchmark::State& s) {
  clip_fixture f;
  std::uint64_t step = 0;
  for (auto _ : s) benchmark::DoNotOptimize(f.data.batch<T>(f.sampler, step++, true).tokens.data());
  s.SetItemsProcessed(s.iterations() * std::int64_t(f.o.train.batch));
}
BENCHMARK(BM_MiniClipBatch)
    ->Name("BM_MiniClipBatch/B64")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The teacher's outputs (CLS and MaskCLIP tokens) of 128 test scenes.
void BM_MiniClipTeacherOutputs(benchmark::State& s) {
  clip_fixture f;
  std::vector<zss::toy::scene> scenes;
  for (std::uint64_t i = 0; i < 128; ++i) scenes.push_back(zss::toy::make_scene(f.scenes, 0, i));
  for (auto _ : s) benchmark::DoNotOptimize(zss::clip::teacher_outputs(f.tr.net(), scenes).size());
  zss::bench::set_flops(s, 128 * f.tr.net().image().forward_flops(64, 64));
  s.SetItemsProcessed(s.iterations() * 128);
}
BENCHMARK(BM_MiniClipTeacherOutputs)
    ->Name("BM_MiniClipTeacherOutputs/128")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The FP32 FMA peak of this machine on the OpenMP threads: 12 independent FMA chains per thread
// in the widest xsimd batch (the roofline of the step above).
void BM_FmaPeak(benchmark::State& s) {
  using B = xsimd::batch<float>;
  constexpr int chains = 12;
  constexpr long reps = 1 << 20;
  int threads = 1;
  for (auto _ : s) {
#pragma omp parallel
    {
#pragma omp single
      threads = omp_get_num_threads();
      B acc[chains];
      for (int c = 0; c < chains; ++c) acc[c] = B(1.0f + 1e-3f * float(c));
      const B a(0.999999f), b(1e-7f);
      for (long r = 0; r < reps; ++r)
        for (int c = 0; c < chains; ++c) acc[c] = xsimd::fma(acc[c], a, b);
      B sum(0.0f);
      for (int c = 0; c < chains; ++c) sum += acc[c];
      benchmark::DoNotOptimize(sum);
    }
  }
  zss::bench::set_flops(s, 2.0 * double(threads) * reps * chains * double(B::size));
  s.counters["threads"] = threads;
}
BENCHMARK(BM_FmaPeak)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
