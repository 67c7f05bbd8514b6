// SPDX-License-Identifier: Apache-2.0
// Data-parallel training under mpiexec (zss/dist/collective.hpp + train/trainer.hpp): after K = 5
// steps, R ranks × a share of the batch give the losses and parameters of one process with the
// whole batch (computed on every rank as the reference) to ≤ 1e-5 relative; two runs with the same
// R are bitwise identical, and so are the ranks' parameters; a run saved by rank 0 and resumed by
// every rank continues bitwise.
//
// Tolerances: the two computations add the same terms in different groups (each rank's GEMMs over
// its rows, then the sum over ranks), so they differ by rounding, which AdamW's normalised update
// amplifies step after step (≈ 300 ε after 5 steps here). In double the parameters agree to
// ≈ 1e-13 (asserted ≤ 1e-10: the mathematics is the same); in float the losses agree to ≤ 1e-5 at
// every step but the parameters only to ≈ 2e-5 after 5 steps (asserted ≤ 1e-4).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "support/small_world.hpp"
#include "support/temp_dir.hpp"
#include "zss/dist/collective.hpp"
#include "zss/dist/collectives.hpp"
#include "zss/dist/shard.hpp"
#include "zss/train/sampler.hpp"
#include "zss/train/toy.hpp"

namespace test_dist_trainer {

using namespace zss;
using namespace zss::train;

namespace {

/// A small toy world (32 × 32 scenes, 8 × 8 teacher and student grids, D = 16) and its targets.
template <class T>
struct problem {
  toy::world<T> w;
  toy_classes<T> cls;
  trainer_options cfg;
  std::vector<image_targets<T>> targets;

  explicit problem(index_t batch) : w(test::small_world<T>(12, 1, 32, 16, 5)), cls(w) {
    cfg.encoder.widths = {8, 16, 16};
    cfg.encoder.strides = {2, 1, 2};
    cfg.encoder.embed_dim = 16;
    cfg.plm.hidden = 16;
    cfg.bank_size = 6;
    cfg.batch = batch;
    cfg.schedule.total_steps = 5;
    cfg.schedule.warmup_steps = 1;
    cfg.threads = 1;
    cfg.seed = 9;
    targets = make_toy_targets(w, cls, cfg, true, 1);
  }
};

/// `steps` steps of `tr` on this rank's block of every batch (`ranks` = 1: the whole batch).
template <class T, class Comm>
std::vector<step_losses> train_steps(problem<T>& p, trainer<T>& tr, std::uint64_t steps,
                                     Comm& comm) {
  batch_sampler sampler(p.w.train.size(), p.cfg.batch, p.cfg.seed);
  const auto mine = dist::block_range(p.cfg.batch, index_t(comm.rank()), index_t(comm.ranks()));
  std::vector<step_losses> out;
  for (std::uint64_t s = tr.steps_done(); s < steps; ++s) {
    const auto idx = sampler.indices(s);
    const auto flips = sampler.flips(s, p.cfg.flip);
    const std::vector<index_t> local(idx.begin() + std::ptrdiff_t(mine.begin),
                                     idx.begin() + std::ptrdiff_t(mine.end));
    const auto batch = toy_batch<T>(p.w, p.targets, std::span<const index_t>(local),
                                    std::span<const char>(flips.data() + mine.begin, mine.size()));
    out.push_back(tr.step(batch, comm));
  }
  return out;
}

double relative(double a, double b) {
  return std::abs(a - b) / std::max(std::abs(b), 1e-30);
}

template <class T>
double relative_norm(const param_buffer<T>& a, const param_buffer<T>& b) {
  double num = 0, den = 0;
  for (index_t i = 0; i < a.size(); ++i) {
    const double d = double(a.values()[i]) - double(b.values()[i]);
    num += d * d;
    den += double(b.values()[i]) * double(b.values()[i]);
  }
  return std::sqrt(num / den);
}

template <class T>
bool same_bits(const param_buffer<T>& a, const param_buffer<T>& b) {
  return a.size() == b.size() && std::memcmp(a.values(), b.values(), a.size() * sizeof(T)) == 0;
}

}  // namespace

TEST_CASE_TEMPLATE("R ranks x a share of the batch = 1 process x the batch (K steps)", T, float,
                   double) {
  dist::mpi_collective comm;
  CHECK(comm.ranks() >= 2);
  for (index_t batch : {index_t(4), index_t(5)}) {  // even and uneven shares (5 = 3 + 2)
    CAPTURE(batch);
    problem<T> p(batch);
    trainer<T> dp(p.cfg, p.cls.seen_text), ref(p.cfg, p.cls.seen_text);
    dist::broadcast_parameters(dp.parameters());
    single_process one;
    const auto ld = train_steps(p, dp, p.cfg.steps(), comm);
    const auto lr = train_steps(p, ref, p.cfg.steps(), one);
    const double tol = 1e-5, param_tol = std::is_same_v<T, float> ? 1e-4 : 1e-10;
    for (std::size_t s = 0; s < ld.size(); ++s) {
      CAPTURE(s);
      CHECK(relative(ld[s].total, lr[s].total) <= tol);
      CHECK(relative(ld[s].ce, lr[s].ce) <= tol);
      CHECK(relative(ld[s].nel, lr[s].nel) <= tol);
      CHECK(relative(ld[s].glm, lr[s].glm) <= tol);
      CHECK(relative(ld[s].syn, lr[s].syn) <= tol);
      CHECK(relative(ld[s].grad_norm, lr[s].grad_norm) <= tol);
      CHECK(ld[s].pseudo_classes == lr[s].pseudo_classes);
    }
    const double rel = relative_norm(dp.parameters(), ref.parameters());
    MESSAGE("batch " << batch << ": relative parameter difference after " << ld.size()
                     << " steps: " << rel);
    CHECK(rel <= param_tol);
    // The bank holds the same CLS tokens in the same order.
    CHECK(dp.bank().size() == ref.bank().size());
    for (index_t i = 0; i < dp.bank().size(); ++i)
      CHECK(std::memcmp(dp.bank().row(i), ref.bank().row(i), p.cfg.encoder.embed_dim * sizeof(T)) ==
            0);
  }
}

TEST_CASE("data-parallel runs with the same R are bitwise identical, on every rank") {
  using T = float;
  dist::mpi_collective comm;
  problem<T> p(4);
  trainer<T> a(p.cfg, p.cls.seen_text), b(p.cfg, p.cls.seen_text);
  const auto la = train_steps(p, a, p.cfg.steps(), comm);
  const auto lb = train_steps(p, b, p.cfg.steps(), comm);
  CHECK(same_bits(a.parameters(), b.parameters()));
  for (std::size_t s = 0; s < la.size(); ++s) CHECK(la[s].total == lb[s].total);
  // Every rank holds the same bits.
  aligned_vector<T> all;
  std::vector<index_t> off;
  dist::allgather_rows(matrix_ref<const T>(a.parameters().values(), 1, a.parameters().size()), all,
                       off);
  for (int r = 1; r < comm.ranks(); ++r)
    CHECK(std::memcmp(all.data() + off[r] * a.parameters().size(), all.data(),
                      a.parameters().size() * sizeof(T)) == 0);
}

TEST_CASE("a data-parallel run saved by rank 0 and resumed by every rank continues bitwise") {
  using T = float;
  dist::mpi_collective comm;
  problem<T> p(4);
  trainer<T> whole(p.cfg, p.cls.seen_text);
  train_steps(p, whole, p.cfg.steps(), comm);
  // Rank 0's temporary folder, named to every rank.
  std::optional<test::temp_dir> dir;
  if (comm.rank() == 0) dir.emplace();
  std::vector<char> name(4096, 0);
  if (dir) std::strncpy(name.data(), (*dir / "ckpt.zss").c_str(), name.size() - 1);
  dist::broadcast(std::span<char>(name));
  const std::string file(name.data());
  {
    trainer<T> first(p.cfg, p.cls.seen_text);
    train_steps(p, first, 2, comm);
    if (comm.rank() == 0) first.save(file);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  trainer<T> resumed(p.cfg, p.cls.seen_text);
  resumed.load(file);
  CHECK(resumed.steps_done() == 2);
  train_steps(p, resumed, p.cfg.steps(), comm);
  CHECK(same_bits(resumed.parameters(), whole.parameters()));
  MPI_Barrier(MPI_COMM_WORLD);  // rank 0 removes the folder only after every rank has read it
}

}  // namespace test_dist_trainer
