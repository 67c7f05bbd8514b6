// SPDX-License-Identifier: Apache-2.0
// Tests for zss/train/collective.hpp and the trainer's data-parallel step without MPI: R "ranks"
// are R threads sharing an in-memory model of the collective (sums in rank order, rows gathered
// in rank order, like zss/dist's), so the data-parallel logic runs in the ordinary (and the
// sanitizer) test build. R ranks × a share of the batch = 1 process × the batch after K steps; the
// single-process collective changes nothing.
#include <doctest/doctest.h>

#include <barrier>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

#include "support/small_world.hpp"
#include "zss/dist/shard.hpp"
#include "zss/train/sampler.hpp"
#include "zss/train/toy.hpp"

namespace test_train_collective {

using namespace zss;
using namespace zss::train;

namespace {

/// R threads as ranks: every call is a rendezvous; sums are added in rank order.
struct thread_group {
  explicit thread_group(int r) : ranks(r), sync(r), slots(std::size_t(r)) {}
  int ranks;
  std::barrier<> sync;
  std::vector<std::vector<double>> slots;  // one per rank (values as double: exact for T)
  std::vector<std::vector<index_t>> shapes = std::vector<std::vector<index_t>>(slots.size());
};

template <class T>
struct thread_collective {
  thread_group* g;
  int me;
  int ranks() const noexcept { return g->ranks; }
  int rank() const noexcept { return me; }
  template <class U>
  void sum(std::span<U> v) {
    g->slots[std::size_t(me)].assign(v.begin(), v.end());
    g->sync.arrive_and_wait();
    for (std::size_t i = 0; i < v.size(); ++i) {
      U s = U(g->slots[0][i]);
      for (int r = 1; r < g->ranks; ++r) s += U(g->slots[std::size_t(r)][i]);
      v[i] = s;
    }
    g->sync.arrive_and_wait();
  }
  void allgather_rows(matrix_ref<const T> mine, aligned_vector<T>& all,
                      std::vector<index_t>& offsets) {
    auto& slot = g->slots[std::size_t(me)];
    slot.clear();
    for (index_t i = 0; i < mine.rows; ++i)
      slot.insert(slot.end(), mine.row(i), mine.row(i) + mine.cols);
    g->sync.arrive_and_wait();
    all.clear();
    offsets = {0};
    for (int r = 0; r < g->ranks; ++r) {
      for (double x : g->slots[std::size_t(r)]) all.push_back(T(x));
      offsets.push_back(offsets.back() + g->slots[std::size_t(r)].size() / mine.cols);
    }
    g->sync.arrive_and_wait();
  }
};
static_assert(collective<thread_collective<float>, float>);
static_assert(collective<single_process, double>);

struct problem {
  toy::world<double> w = test::small_world<double>(10, 1, 32, 12, 3);
  toy_classes<double> cls{w};
  trainer_options cfg;
  std::vector<image_targets<double>> targets;
  explicit problem(index_t batch) {
    cfg.encoder.widths = {6, 8};
    cfg.encoder.strides = {2, 2};
    cfg.encoder.embed_dim = 12;
    cfg.plm.hidden = 8;
    cfg.bank_size = 5;
    cfg.batch = batch;
    cfg.schedule.total_steps = 4;
    cfg.schedule.warmup_steps = 1;
    cfg.threads = 1;
    targets = make_toy_targets(w, cls, cfg, true, 1);
  }
};

template <class Comm>
std::vector<step_losses> run(problem& p, trainer<double>& tr, Comm& comm) {
  batch_sampler sampler(p.w.train.size(), p.cfg.batch, p.cfg.seed);
  const auto mine = dist::block_range(p.cfg.batch, index_t(comm.rank()), index_t(comm.ranks()));
  std::vector<step_losses> out;
  for (std::uint64_t s = 0; s < p.cfg.steps(); ++s) {
    const auto idx = sampler.indices(s);
    const auto flips = sampler.flips(s, true);
    const std::vector<index_t> local(idx.begin() + std::ptrdiff_t(mine.begin),
                                     idx.begin() + std::ptrdiff_t(mine.end));
    out.push_back(
        tr.step(toy_batch<double>(p.w, p.targets, std::span<const index_t>(local),
                                  std::span<const char>(flips.data() + mine.begin, mine.size())),
                comm));
  }
  return out;
}

}  // namespace

TEST_CASE("3 threads as ranks x shares of a batch of 7 = 1 process x 7 (double, 4 steps)") {
  problem p(7);  // shares 3, 2, 2
  trainer<double> ref(p.cfg, p.cls.seen_text);
  single_process one;
  const auto lr = run(p, ref, one);
  const int R = 3;
  thread_group g(R);
  std::vector<std::vector<step_losses>> ld(R);
  std::vector<std::vector<double>> params(R);
  std::vector<std::thread> threads;
  for (int r = 0; r < R; ++r)
    threads.emplace_back([&, r] {
      trainer<double> tr(p.cfg, p.cls.seen_text);
      thread_collective<double> comm{&g, r};
      ld[std::size_t(r)] = run(p, tr, comm);
      params[std::size_t(r)].assign(tr.parameters().values(),
                                    tr.parameters().values() + tr.parameters().size());
    });
  for (auto& t : threads) t.join();
  for (int r = 0; r < R; ++r) {
    CAPTURE(r);
    CHECK(params[std::size_t(r)] == params[0]);  // every rank holds the same bits
    for (std::size_t s = 0; s < lr.size(); ++s) {
      CHECK(ld[std::size_t(r)][s].total == doctest::Approx(lr[s].total).epsilon(1e-12));
      CHECK(ld[std::size_t(r)][s].glm == doctest::Approx(lr[s].glm).epsilon(1e-12));
      CHECK(ld[std::size_t(r)][s].syn == doctest::Approx(lr[s].syn).epsilon(1e-12));
      CHECK(ld[std::size_t(r)][s].grad_norm == doctest::Approx(lr[s].grad_norm).epsilon(1e-12));
    }
  }
  double num = 0, den = 0;
  for (index_t i = 0; i < ref.parameters().size(); ++i) {
    const double d = params[0][i] - ref.parameters().values()[i];
    num += d * d, den += ref.parameters().values()[i] * ref.parameters().values()[i];
  }
  CHECK(std::sqrt(num / den) < 1e-10);
}

TEST_CASE("the single-process collective is the default step, bitwise") {
  problem p(3);
  trainer<double> a(p.cfg, p.cls.seen_text), b(p.cfg, p.cls.seen_text);
  const std::vector<index_t> idx = {4, 1, 7};
  const auto batch = toy_batch<double>(p.w, p.targets, std::span<const index_t>(idx));
  single_process one;
  const auto la = a.step(batch);
  const auto lb = b.step(batch, one);
  CHECK(la.total == lb.total);
  CHECK(std::memcmp(a.parameters().values(), b.parameters().values(),
                    a.parameters().size() * sizeof(double)) == 0);
}

}  // namespace test_train_collective
