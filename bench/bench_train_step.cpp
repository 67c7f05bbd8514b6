// SPDX-License-Identifier: Apache-2.0
// The whole training step of zss-train-toy at its default configuration (train/config.hpp and
// toy/dataset.hpp defaults: B 16, 64 × 64, D 64, GLM + PLM + L_nel): images/s and the time of
// every stage, read through the trainer's stage hook (trainer::step(batch, comm, after)).
//
// Counters (ms per step, medians over repetitions in bench/README.md):
//   batch      toy_batch: images, flips, CLS tokens (the example's loop does this per step)
//   encoder    student_forward + student_backward
//   targets    gather_targets (labels and region ids of the cached pseudo labels)
//   synth      prototypes_forward + prototypes_backward (region pooling, synthesizer, L_syn)
//   losses     logit_losses (L_ce, L_nel) + glm_loss (L_glm)
//   optim      clipping, AdamW, the bank push
// BM_PseudoLabelsToy: the pseudo labels themselves (multi-scale K-Means + mask fusion per
// training image), computed once before training by zss-train-toy: ms per image.
#include <benchmark/benchmark.h>

#include <chrono>
#include <map>
#include <string>

#include "bench_common.hpp"
#include "zss/train/sampler.hpp"
#include "zss/train/toy.hpp"

namespace {

using T = float;
using clock_type = std::chrono::steady_clock;

struct toy_fixture {
  zss::train::trainer_options cfg;
  zss::toy::world<T> world;
  zss::train::toy_classes<T> cls;
  std::vector<zss::image_targets<T>> targets;

  toy_fixture()
      : world(make()),
        cls(world),
        targets(zss::train::make_toy_targets<T>(world, cls, cfg, true)) {}
  static zss::toy::world<T> make() {
    zss::toy::world_options wp;
    wp.seed = zss::train::trainer_options{}.seed;
    return zss::toy::make_world<T>(wp);
  }
};

toy_fixture& fixture() {
  static toy_fixture f;
  return f;
}

void BM_TrainStep(benchmark::State& state) {
  auto& f = fixture();
  zss::train::trainer<T> tr(f.cfg, f.cls.seen_text);
  const zss::index_t B = std::min<zss::index_t>(f.cfg.batch, f.world.train.size());
  zss::train::batch_sampler sampler(f.world.train.size(), B, f.cfg.seed);
  std::map<std::string, double> ms;  // stage → seconds, summed over the timed steps
  const std::map<std::string, std::string> group = {
      {"student_forward", "encoder"},   {"student_backward", "encoder"},
      {"gather_targets", "targets"},    {"prototypes_forward", "synth"},
      {"prototypes_backward", "synth"}, {"logit_losses", "losses"},
      {"glm_loss", "losses"},           {"optimizer", "optim"}};
  std::uint64_t s = 0;
  for (int warm = 0; warm < 3; ++warm, ++s) {  // sizes every workspace
    const auto idx = sampler.indices(s);
    const auto flips = sampler.flips(s, f.cfg.flip);
    tr.step(zss::train::toy_batch<T>(f.world, f.targets, std::span<const zss::index_t>(idx),
                                     std::span<const char>(flips)));
  }
  zss::bench::process_cpu_counter cpu(state);
  for (auto _ : state) {
    auto t = clock_type::now();
    const auto idx = sampler.indices(s);
    const auto flips = sampler.flips(s, f.cfg.flip);
    const auto batch = zss::train::toy_batch<T>(
        f.world, f.targets, std::span<const zss::index_t>(idx), std::span<const char>(flips));
    auto now = clock_type::now();
    ms["batch"] += std::chrono::duration<double>(now - t).count();
    t = now;
    zss::train::single_process one;
    const auto l = tr.step(batch, one, [&](const char* stage) {
      const auto n = clock_type::now();
      ms[group.at(stage)] += std::chrono::duration<double>(n - t).count();
      t = n;
    });
    benchmark::DoNotOptimize(l.total);
    ++s;
  }
  for (const auto& [name, sec] : ms) state.counters[name] = 1e3 * sec / double(state.iterations());
  state.counters["images/s"] = benchmark::Counter(
      double(B), benchmark::Counter::kIsRate | benchmark::Counter::kIsIterationInvariant);
}
BENCHMARK(BM_TrainStep)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

void BM_PseudoLabelsToy(benchmark::State& state) {
  auto& f = fixture();
  zss::bench::process_cpu_counter cpu(state);
  for (auto _ : state) {
    auto t = zss::train::make_toy_targets<T>(f.world, f.cls, f.cfg, true);
    benchmark::DoNotOptimize(t.data());
  }
  // (1e-3 · images / s), inverted: ms per image.
  state.counters["ms/image"] = benchmark::Counter(
      1e-3 * double(f.world.train.size()),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_PseudoLabelsToy)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
