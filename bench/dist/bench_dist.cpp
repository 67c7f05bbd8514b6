// SPDX-License-Identifier: Apache-2.0
// zss_bench_dist: data parallelism under MPI (zss/dist). Run it as
//   mpiexec -n R [--oversubscribe --bind-to none] zss_bench_dist
// Every rank runs every benchmark for a fixed number of iterations (the ranks must call the same
// collectives); rank 0 reports. Per benchmark:
//  - BM_TrainStep: one data-parallel training step of the DESIGN §3 student (64 × 64 toy scenes,
//    D = 64, the default trainer) with the whole batch of 16 images shared by the R ranks, 1 thread
//    per rank: wall time per step, images/s, and the time inside the collectives (the gradient
//    sum, the CLS gather, the counts; waiting for the slower rank included) and its share.
//  - BM_SumOrdered / BM_Allreduce: the order-independent gradient sum against MPI_Allreduce (the
//    peer, whose summation order MPI does not fix) on n floats.
//  - BM_PseudoLabels: each rank computes the PLM pseudo labels of its own images of 32 × 32 tokens
//    of width 512 (COCO-Stuff's ViT-B/16 grid), windows {4, 8, 16}, 1 thread: images/s per rank.
#include <benchmark/benchmark.h>
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <span>
#include <vector>

#include "../bench_common.hpp"
#include "zss/dist/collective.hpp"
#include "zss/dist/collectives.hpp"
#include "zss/dist/environment.hpp"
#include "zss/dist/shard.hpp"
#include "zss/plm/pseudo_labels.hpp"
#include "zss/train/sampler.hpp"
#include "zss/train/toy.hpp"

namespace {

using namespace zss;
using clock_type = std::chrono::steady_clock;

int world_rank() {
  return dist::detail::comm_rank(MPI_COMM_WORLD);
}
int world_size() {
  return dist::detail::comm_size(MPI_COMM_WORLD);
}

/// CPU time of the calling thread (s): what a rank computes, whatever the machine's load.
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

/// The trainer's collective with a stopwatch (wall and thread CPU) around every call.
struct timed_collective {
  dist::mpi_collective inner;
  double seconds = 0, cpu_seconds = 0;
  void start() {
    t0 = clock_type::now();
    c0 = thread_cpu_seconds();
  }
  void stop() {
    seconds += std::chrono::duration<double>(clock_type::now() - t0).count();
    cpu_seconds += thread_cpu_seconds() - c0;
  }
  clock_type::time_point t0;
  double c0 = 0;
  int ranks() const noexcept { return inner.ranks(); }
  int rank() const noexcept { return inner.rank(); }
  template <class U>
  void sum(std::span<U> v) {
    start();
    inner.sum(v);
    stop();
  }
  template <class T>
  void allgather_rows(matrix_ref<const T> mine, aligned_vector<T>& all,
                      std::vector<index_t>& offsets) {
    start();
    inner.allgather_rows(mine, all, offsets);
    stop();
  }
};

void BM_TrainStep(benchmark::State& state) {
  using T = float;
  const index_t batch = index_t(state.range(0));
  toy::world_options wo;
  wo.train_images = batch * 2;
  wo.test_images = 1;
  wo.seed = 1;
  const auto w = toy::make_world<T>(wo, 1);
  const train::toy_classes<T> cls(w);
  train::trainer_options cfg;
  cfg.encoder.embed_dim = wo.text.dim;
  cfg.batch = batch;
  cfg.threads = 1;
  cfg.schedule.total_steps = 1000;
  const auto targets = train::make_toy_targets(w, cls, cfg, true, 1);
  train::trainer<T> tr(cfg, cls.seen_text);
  timed_collective comm;
  const auto mine = dist::block_range(batch, index_t(comm.rank()), index_t(comm.ranks()));
  train::batch_sampler sampler(w.train.size(), batch, cfg.seed);
  auto local_batch = [&](std::uint64_t s) {
    const auto idx = sampler.indices(s);
    const auto flips = sampler.flips(s, cfg.flip);
    const std::vector<index_t> local(idx.begin() + std::ptrdiff_t(mine.begin),
                                     idx.begin() + std::ptrdiff_t(mine.end));
    return train::toy_batch<T>(w, targets, std::span<const index_t>(local),
                               std::span<const char>(flips.data() + mine.begin, mine.size()));
  };
  for (std::uint64_t s = 0; s < 2; ++s) tr.step(local_batch(s), comm);  // warm-up: allocations
  comm.seconds = comm.cpu_seconds = 0;
  double step_cpu = 0;
  std::uint64_t s = 2;
  bench::process_cpu_counter cpu(state);
  for (auto _ : state) {
    state.PauseTiming();
    const auto b = local_batch(s++);  // the data loader's work, not timed
    MPI_Barrier(MPI_COMM_WORLD);
    state.ResumeTiming();
    const double c0 = thread_cpu_seconds();
    benchmark::DoNotOptimize(tr.step(b, comm));
    step_cpu += thread_cpu_seconds() - c0;
  }
  state.counters["ranks"] = comm.ranks();
  state.counters["params"] = double(tr.parameters().size());
  state.counters["images/s"] =
      benchmark::Counter(double(batch), benchmark::Counter::kIsIterationInvariantRate);
  const double it = double(state.iterations());
  state.counters["collective_ms"] = 1e3 * comm.seconds / it;
  // The rank's own work: its thread's CPU time in the step minus the CPU time spent (spinning)
  // inside the collectives. On an idle machine, step ≈ compute + the collectives' own cost.
  state.counters["compute_cpu_ms"] = 1e3 * (step_cpu - comm.cpu_seconds) / it;
}
BENCHMARK(BM_TrainStep)->Arg(16)->Iterations(20)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_SumOrdered(benchmark::State& state) {
  const index_t n = index_t(state.range(0));
  const auto v0 = bench::normal_data(n, 3 + std::uint64_t(world_rank()));
  std::vector<float> v(v0.begin(), v0.end()), scratch;
  for (auto _ : state) {
    dist::sum_ordered(std::span<float>(v), scratch);
    benchmark::ClobberMemory();
  }
  bench::set_bytes(state, double(n) * sizeof(float));
}
BENCHMARK(BM_SumOrdered)->Arg(10000)->Arg(336000)->Arg(3000000)->Iterations(50)->UseRealTime();

void BM_Allreduce(benchmark::State& state) {
  const index_t n = index_t(state.range(0));
  const auto v0 = bench::normal_data(n, 3 + std::uint64_t(world_rank()));
  std::vector<float> v(v0.begin(), v0.end());
  for (auto _ : state) {
    MPI_Allreduce(MPI_IN_PLACE, v.data(), int(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    benchmark::ClobberMemory();
  }
  bench::set_bytes(state, double(n) * sizeof(float));
}
BENCHMARK(BM_Allreduce)->Arg(10000)->Arg(336000)->Arg(3000000)->Iterations(50)->UseRealTime();

void BM_PseudoLabels(benchmark::State& state) {
  using T = float;
  // 32 × 32 tokens of width 512: the toy teacher at patch 2 on 64 × 64 scenes, D = 512.
  const index_t per_rank = 4;
  toy::world_options wo;
  wo.train_images = per_rank * index_t(world_size());
  wo.test_images = 1;
  wo.text.dim = 512;
  wo.teacher.patch = 2;
  wo.seed = 2;
  const auto w = toy::make_world<T>(wo, 1);
  const train::toy_classes<T> cls(w);
  pseudo_label_options p;
  p.kmeans.windows = {4, 8, 16};
  const auto mine =
      dist::strided_items(w.train.size(), index_t(world_rank()), index_t(world_size()));
  bench::process_cpu_counter cpu(state);
  for (auto _ : state) {
    MPI_Barrier(MPI_COMM_WORLD);
    for (auto i : mine)
      benchmark::DoNotOptimize(train::toy_fused_labels(w.train[i], w.train_teacher[i], cls, p, i));
  }
  state.counters["ranks"] = world_size();
  state.counters["images/s/rank"] =
      benchmark::Counter(double(mine.size()), benchmark::Counter::kIsIterationInvariantRate);
  bench::set_bytes(state, double(mine.size()) * 32 * 32 * 512 * sizeof(T));
}
BENCHMARK(BM_PseudoLabels)->Iterations(5)->Unit(benchmark::kMillisecond)->UseRealTime();

/// Rank 0 reports; the others run silently.
class silent_reporter : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>&) override {}
};

}  // namespace

int main(int argc, char** argv) {
  dist::environment env(&argc, &argv);
  benchmark::Initialize(&argc, argv);
  if (env.rank() == 0)
    std::printf("zss_bench_dist: %d ranks, 1 thread per rank unless noted\n", env.size());
  if (env.rank() == 0) {
    benchmark::RunSpecifiedBenchmarks();
  } else {
    silent_reporter quiet;
    benchmark::RunSpecifiedBenchmarks(&quiet);
  }
  benchmark::Shutdown();
  return 0;
}
