// SPDX-License-Identifier: Apache-2.0
// Tests for zss/train/{config,trainer}.hpp: the whole training step's gradient (all losses
// together) against central finite differences, the step's bookkeeping and checkpoints.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <numeric>

#include "support/gradcheck.hpp"
#include "support/temp_dir.hpp"
#include "zss/core/random.hpp"
#include "zss/train/trainer.hpp"

namespace test_train_trainer {

using namespace zss;
using namespace zss::train;

namespace {

template <class T>
tensor<T, 2> random_matrix(index_t r, index_t c, std::uint64_t seed) {
  rng g(seed, 7);
  tensor<T, 2> m = tensor<T, 2>::from_shape({r, c});
  for (auto& v : m) v = g.normal<T>();
  return m;
}

trainer_options tiny_config() {
  trainer_options c;
  c.encoder.widths = {4, 5};
  c.encoder.strides = {2, 1};
  c.encoder.embed_dim = 6;
  c.plm.hidden = 7;
  c.bank_size = 3;
  c.batch = 2;
  c.schedule.total_steps = 10;
  c.schedule.warmup_steps = 1;
  c.threads = 2;
  c.ce.alpha = 5;  // moderate scales keep the finite differences well conditioned
  c.ce.beta = 4;
  c.glm.tau = 0.5;
  c.syn_loss.tau = 0.5;
  return c;
}

/// A tiny problem: B = 2 images of 8 × 8, student and teacher grids 4 × 4, Ks = 3, D = 6.
template <class T>
struct tiny_problem {
  static constexpr index_t B = 2, H = 8, W = 8, g = 4, Ks = 3, D = 6;
  tensor<T, 2> text = random_matrix<T>(Ks, D, 1);
  std::vector<image_targets<T>> targets;
  train_batch<T> batch;

  explicit tiny_problem(std::uint64_t seed = 3) {
    rng r(seed, 0);
    for (index_t b = 0; b < B; ++b) {
      std::vector<std::int32_t> fused(g * g);
      // Seen classes 0, 2 (and 1 in image 1), pseudo classes Ks+0, Ks+1, some ignored tokens.
      for (index_t q = 0; q < g * g; ++q) {
        const index_t y = q / g, x = q % g;
        fused[q] = y < 2 ? (x < 2 ? 0 : 2) : (x < 2 ? std::int32_t(Ks) : std::int32_t(Ks + 1));
        if (b == 1 && q == 5) fused[q] = 1;
        if (q == 15 || (b == 0 && q == 9)) fused[q] = -1;
      }
      const auto tokens = random_matrix<T>(g * g, D, 10 + b);
      targets.push_back(targets_from_fused<T>(fused, as_matrix(tokens), g, g, g, g, Ks));
    }
    tensor<T, 4> images = tensor<T, 4>::from_shape({B, H, W, 3});
    for (auto& v : images) v = r.uniform<T>(T(-1), T(1));
    std::vector<const image_targets<T>*> tp;
    for (auto& t : targets) tp.push_back(&t);
    const char flips[B] = {0, 1};
    batch = make_train_batch<T>(std::move(images), random_matrix<T>(B, D, 20), std::move(tp),
                                std::span<const char>(flips, B));
  }
};

/// Relative error of the analytic gradient of one buffer against central differences.
template <class F>
double check_buffer(F&& loss, double* values, const double* grads, index_t n) {
  std::vector<double> analytic(grads, grads + n);
  const auto numeric = test::numeric_gradient(loss, values, n, 1e-6);
  return test::relative_error(analytic, numeric);
}

/// The trainer's encoder gradient from its last `forward_backward` against central differences
/// of the total loss on `batch` (the gradient buffer is overwritten).
double encoder_gradient_error(trainer<double>& tr, const train_batch<double>& batch) {
  auto& pb = tr.parameters();
  const auto& enc = tr.student();
  const std::vector<double> g_enc(pb.grads() + enc.first_scalar,
                                  pb.grads() + enc.first_scalar + enc.scalars);
  auto loss = [&] { return tr.forward_backward(batch).total; };
  return check_buffer(loss, pb.values() + enc.first_scalar, g_enc.data(), enc.scalars);
}

bool synthesizer_gradient_is_zero(trainer<double>& tr) {
  const auto g = tr.synthesizer_gradients();
  return !g.empty() && std::all_of(g.begin(), g.end(), [](double x) { return x == 0; });
}

}  // namespace

TEST_CASE("trainer: the whole step's gradient (all losses) matches central differences") {
  tiny_problem<double> pb;
  auto cfg = tiny_config();
  // The finite differences see every path, so the stop-gradient default is switched off here.
  SUBCASE("all modules, attention pooling, gradient into the pseudo prototypes") {
    REQUIRE(cfg.synthesizer.residual == synthesizer_residual::teacher);
    cfg.plm.pseudo_grad = true;
  }
  SUBCASE("DESIGN's synthesizer (query residual, Xavier init, delta 0)") {
    cfg.use_design_synthesizer();
  }
  SUBCASE(
      "the recipe's synthesizer (no shortcut, identity init, delta 10) with the prototype "
      "gradient") {
    cfg.use_synthesizer_recipe();
    REQUIRE_FALSE(cfg.plm.pseudo_grad);
    cfg.plm.pseudo_grad = true;  // the full gradient (stop-gradient is tested below)
    cfg.syn_loss.delta = 1.5;    // tiny_config's τ_s = 0.5
  }
  SUBCASE("mean pooling, CE synthesizer loss, memory = CLS only") {
    cfg.syn_loss.delta = 1.5;
    cfg.glm.pool = glm_pool::mean;
    cfg.syn_loss.kind = syn_loss_kind::ce;
    cfg.synthesizer.region_tokens = false;
    cfg.synthesizer.residual = synthesizer_residual::query;  // the teacher residual needs them
    cfg.plm.pseudo_grad = true;
    cfg.modules.lambda_nel = 0.5;
    cfg.modules.lambda_syn = 2;
  }
  trainer<double> tr(cfg, pb.text);
  // Fill the bank with one step on the same batch, so GLM sees bank keys too.
  tr.step(pb.batch);
  REQUIRE(tr.bank().size() == 2);
  const auto losses = tr.forward_backward(pb.batch);
  CHECK(losses.ce > 0);
  CHECK(losses.nel > 0);
  CHECK(losses.glm > 0);
  CHECK(losses.syn > 0);
  CHECK(losses.pseudo_classes == 4);

  const auto& m = cfg.modules;
  CHECK(losses.total == doctest::Approx(m.lambda_ce * losses.ce + m.lambda_nel * losses.nel +
                                        m.lambda_glm * losses.glm + m.lambda_syn * losses.syn));
  // One buffer holds both: the encoder's scalars first, then the synthesizer's.
  auto& all = tr.parameters();
  const index_t ne = tr.student().scalars,
                first_syn = all.size() - tr.synthesizer_gradients().size();
  REQUIRE(tr.student().first_scalar == 0);
  REQUIRE(first_syn >= ne);
  const std::vector<double> g_enc(all.grads(), all.grads() + ne);
  const std::vector<double> g_syn(all.grads() + first_syn, all.grads() + all.size());
  auto loss = [&] { return tr.forward_backward(pb.batch).total; };
  const double e_enc = check_buffer(loss, all.values(), g_enc.data(), ne);
  const double e_syn =
      check_buffer(loss, all.values() + first_syn, g_syn.data(), all.size() - first_syn);
  CHECK(e_enc < 1e-6);
  CHECK(e_syn < 1e-6);
  CHECK(test::relative_error(g_syn, std::vector<double>(g_syn.size(), 0.0)) >
        0);  // not trivially zero
}

TEST_CASE("trainer: stop-gradient into the pseudo prototypes and teacher-token prototypes") {
  tiny_problem<double> pb;
  auto cfg = tiny_config();
  cfg.plm.pseudo_grad = false;
  cfg.modules.lambda_syn = 0;  // only L_ce/L_nel/L_glm could reach the synthesizer
  SUBCASE("synthesizer prototypes, stopped") {
    // Without the query shortcut and with the CLS as the only memory row, the prototypes do not
    // depend on the student: the stopped gradient is then the whole gradient of the encoder.
    cfg.synthesizer.residual = synthesizer_residual::none;
    cfg.synthesizer.region_tokens = false;
  }
  SUBCASE("teacher-token prototypes (constants)") {
    cfg.plm.prototypes = prototype_source::teacher_tokens;
  }
  trainer<double> tr(cfg, pb.text);
  const auto l = tr.forward_backward(pb.batch);
  CHECK(l.pseudo_classes == 4);
  CHECK(l.syn == 0);
  CHECK(synthesizer_gradient_is_zero(tr));
  CHECK(encoder_gradient_error(tr, pb.batch) < 1e-6);
  if (cfg.plm.prototypes == prototype_source::teacher_tokens) {
    CHECK(tr.prototypes().rows == 0);
  } else {
    // Every region of an image reads the same single memory row: equal prototypes per image.
    const auto Pi = tr.prototypes();
    const auto ro = tr.region_offsets();
    REQUIRE(Pi.rows == ro.back());
    for (index_t b = 0; b + 1 < ro.size(); ++b)
      for (index_t r = ro[b] + 1; r < ro[b + 1]; ++r)
        for (index_t d = 0; d < Pi.cols; ++d)
          CHECK(Pi(r, d) == doctest::Approx(Pi(ro[b], d)).epsilon(1e-12));
  }
}

TEST_CASE("trainer: switching modules off removes their losses and gradients") {
  tiny_problem<double> pb;
  auto cfg = tiny_config();
  cfg.modules.glm = false;
  cfg.modules.plm = false;
  trainer<double> tr(cfg, pb.text);
  const auto l = tr.forward_backward(pb.batch);
  CHECK(l.glm == 0);
  CHECK(l.syn == 0);
  CHECK(l.pseudo_classes == 0);
  CHECK(l.total == doctest::Approx(l.ce + l.nel));
  CHECK(synthesizer_gradient_is_zero(tr));
  // The baseline's gradient is still right (pseudo labels are ignored rows).
  CHECK(encoder_gradient_error(tr, pb.batch) < 1e-6);
}

TEST_CASE("trainer: steps lower the loss, a checkpoint round-trips, bad input is rejected") {
  tiny_problem<float> pb;
  auto cfg = tiny_config();
  cfg.schedule.total_steps = 40;
  cfg.schedule.base_lr = 1e-2;
  trainer<float> tr(cfg, pb.text);
  const double first = tr.forward_backward(pb.batch).total;
  for (int i = 0; i < 30; ++i) tr.step(pb.batch);
  const auto after = tr.forward_backward(pb.batch);
  const double later = after.total;
  CHECK(later < first);
  CHECK(tr.steps_done() == 30);

  test::temp_dir dir;
  const auto file = dir.path / "run.zss";
  tr.save(file, {checkpoint_section{"app.note", {1, 2, 3}}});
  trainer<float> other(cfg, pb.text);
  const auto extra = other.load(file);
  CHECK(other.steps_done() == 30);
  REQUIRE(extra.size() == 1);
  CHECK(extra[0].name == "app.note");
  CHECK(extra[0].bytes == std::vector<unsigned char>{1, 2, 3});
  const auto& pa = tr.parameters();
  CHECK(std::equal(pa.values(), pa.values() + pa.size(), other.parameters().values()));
  CHECK(std::equal(tr.optimizer_state().m.begin(), tr.optimizer_state().m.end(),
                   other.optimizer_state().m.begin()));
  CHECK(std::equal(tr.optimizer_state().v.begin(), tr.optimizer_state().v.end(),
                   other.optimizer_state().v.begin()));
  CHECK(other.optimizer_state().step == tr.optimizer_state().step);
  // The bank is part of the checkpoint: every loss, GLM's included, is the same bitwise.
  REQUIRE(other.bank().size() == tr.bank().size());
  const auto reloaded = other.forward_backward(pb.batch);
  CHECK(reloaded.ce == after.ce);
  CHECK(reloaded.glm == after.glm);
  CHECK(reloaded.syn == after.syn);
  // And the next steps too.
  for (int i = 0; i < 3; ++i) CHECK(tr.step(pb.batch).total == other.step(pb.batch).total);
  CHECK(std::equal(pa.values(), pa.values() + pa.size(), other.parameters().values()));
  // A missing file leaves the trainer unchanged.
  CHECK_THROWS_AS(other.load(dir.path / "nope.zss"), std::invalid_argument);
  CHECK(other.steps_done() == 33);
  // Another configuration is refused, naming the first differing field.
  auto cfg_other = cfg;
  cfg_other.glm.tau = 0.25;
  trainer<float> third(cfg_other, pb.text);
  CHECK_THROWS_WITH_AS(third.load(file), doctest::Contains("glm.tau"), std::invalid_argument);
  CHECK(third.steps_done() == 0);

  auto bad = pb.batch;
  bad.cls = random_matrix<float>(3, 6, 1);
  CHECK_THROWS_AS(tr.forward_backward(bad), std::invalid_argument);
  auto cfg_bad = cfg;
  cfg_bad.schedule.warmup_steps = 100;
  CHECK_THROWS_AS(trainer<float>(cfg_bad, pb.text), std::invalid_argument);
  cfg_bad = cfg;
  cfg_bad.encoder.embed_dim = 5;
  CHECK_THROWS_AS(trainer<float>(cfg_bad, pb.text), std::invalid_argument);
  cfg_bad = cfg;
  cfg_bad.syn_loss.delta = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH_AS(cfg_bad.validate(), doctest::Contains("syn_loss.delta"),
                       std::invalid_argument);
}

}  // namespace test_train_trainer
