// SPDX-License-Identifier: Apache-2.0
// Tests for zss/train/{config,targets,trainer,inference}.hpp: the whole training step's gradient
// (all losses together) against central finite differences, the targets' renumbering, the step's
// bookkeeping, checkpoints, and inference against a direct reference.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <numeric>

#include "support/gradcheck.hpp"
#include "support/temp_dir.hpp"
#include "zss/core/random.hpp"
#include "zss/train/inference.hpp"
#include "zss/train/trainer.hpp"

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

trainer_config tiny_config() {
  trainer_config c;
  c.encoder.widths = {4, 5};
  c.encoder.strides = {2, 1};
  c.encoder.embed_dim = 6;
  c.synth_hidden = 7;
  c.bank_size = 3;
  c.batch = 2;
  c.steps = 10;
  c.warmup = 1;
  c.threads = 2;
  c.alpha = 5;  // moderate scales keep the finite differences well conditioned
  c.beta = 4;
  c.glm_tau = 0.5;
  c.syn_tau = 0.5;
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
    batch.images = tensor<T, 4>::from_shape({B, H, W, 3});
    for (auto& v : batch.images) v = r.uniform<T>(T(-1), T(1));
    batch.cls = random_matrix<T>(B, D, 20);
    for (auto& t : targets) batch.targets.push_back(&t);
    batch.flipped = {0, 1};
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
  auto& enc = tr.student().params;
  const std::vector<double> g_enc(enc.grads(), enc.grads() + enc.size());
  auto loss = [&] { return tr.forward_backward(batch).total; };
  return check_buffer(loss, enc.values(), g_enc.data(), enc.size());
}

bool synthesizer_gradient_is_zero(trainer<double>& tr) {
  auto& syn = tr.synthesizer_buffer();
  return std::all_of(syn.grads(), syn.grads() + syn.size(), [](double g) { return g == 0; });
}

}  // namespace

TEST_CASE("targets_from_fused: regions are present seen classes then renumbered pseudo classes") {
  const index_t Ks = 4;
  // 4 × 4 teacher grid, student 2 × 2 (nearest neighbour takes cells (1,1), (1,3), (3,1), (3,3)).
  std::vector<std::int32_t> fused(16, -1);
  fused[5] = 2;       // (1,1) seen 2
  fused[7] = Ks + 3;  // (1,3) pseudo 3
  fused[13] = Ks + 1; // (3,1) pseudo 1
  fused[0] = Ks + 0;  // pseudo 0: not on the student grid → dropped
  fused[15] = 1;      // (3,3) seen 1
  const auto tokens = random_matrix<double>(16, 3, 5);
  const auto t = targets_from_fused<double>(fused, as_matrix(tokens), 4, 4, 2, 2, Ks);
  CHECK(t.pseudo_count == 2);
  CHECK(t.labels == std::vector<std::int32_t>{2, std::int32_t(Ks + 1), std::int32_t(Ks + 0), 1});
  CHECK(t.region_label == std::vector<std::int32_t>{1, 2, -1, -1});
  CHECK(t.region_of(2) == 1);
  CHECK(t.region_of(std::int32_t(Ks + 1)) == 3);
  // u_l is the mean teacher token of the region (on the teacher grid): single tokens here.
  for (index_t d = 0; d < 3; ++d) {
    CHECK(t.region_tokens(0, d) == doctest::Approx(tokens(15, d)));
    CHECK(t.region_tokens(2, d) == doctest::Approx(tokens(13, d)));
    CHECK(t.region_tokens(3, d) == doctest::Approx(tokens(7, d)));
  }
  CHECK(t.teacher_map[0] == -1);  // the dropped pseudo class is ignored in the picture map too
}

TEST_CASE("trainer: the whole step's gradient (all losses) matches central differences") {
  tiny_problem<double> pb;
  auto cfg = tiny_config();
  SUBCASE("all modules, attention pooling, gradient into the pseudo prototypes") {}
  SUBCASE("the recipe's synthesizer (no shortcut, identity init, delta 10) with the prototype gradient") {
    cfg.use_synthesizer_recipe();
    REQUIRE_FALSE(cfg.pseudo_grad);
    cfg.pseudo_grad = true;  // the full gradient (stop-gradient is tested below)
    cfg.syn_delta = 1.5;     // tiny_config's τ_s = 0.5
  }
  SUBCASE("mean pooling, CE synthesizer loss, memory = CLS only") {
    cfg.syn_delta = 1.5;
    cfg.pool = glm_pool::mean;
    cfg.syn_loss = syn_loss_kind::ce;
    cfg.region_tokens = false;
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
  auto& enc = tr.student().params;
  auto& syn = tr.synthesizer_buffer();
  const std::vector<double> g_enc(enc.grads(), enc.grads() + enc.size());
  const std::vector<double> g_syn(syn.grads(), syn.grads() + syn.size());
  auto loss = [&] { return tr.forward_backward(pb.batch).total; };
  const double e_enc = check_buffer(loss, enc.values(), g_enc.data(), enc.size());
  const double e_syn = check_buffer(loss, syn.values(), g_syn.data(), syn.size());
  CHECK(e_enc < 1e-6);
  CHECK(e_syn < 1e-6);
  CHECK(test::relative_error(g_syn, std::vector<double>(g_syn.size(), 0.0)) > 0);  // not trivially zero
}

TEST_CASE("trainer: stop-gradient into the pseudo prototypes and teacher-token prototypes") {
  tiny_problem<double> pb;
  auto cfg = tiny_config();
  cfg.pseudo_grad = false;
  cfg.modules.lambda_syn = 0;  // only L_ce/L_nel/L_glm could reach the synthesizer
  SUBCASE("synthesizer prototypes, stopped") {
    // Without the query shortcut and with the CLS as the only memory row, the prototypes do not
    // depend on the student: the stopped gradient is then the whole gradient of the encoder.
    cfg.synth_residual = false;
    cfg.region_tokens = false;
  }
  SUBCASE("teacher-token prototypes (constants)") { cfg.prototypes = prototype_source::teacher_tokens; }
  trainer<double> tr(cfg, pb.text);
  const auto l = tr.forward_backward(pb.batch);
  CHECK(l.pseudo_classes == 4);
  CHECK(l.syn == 0);
  CHECK(synthesizer_gradient_is_zero(tr));
  CHECK(encoder_gradient_error(tr, pb.batch) < 1e-6);
  if (cfg.prototypes == prototype_source::teacher_tokens) {
    CHECK(tr.prototypes().rows == 0);
  } else {
    // Every region of an image reads the same single memory row: equal prototypes per image.
    const auto Pi = tr.prototypes();
    const auto ro = tr.region_offsets();
    REQUIRE(Pi.rows == ro.back());
    for (index_t b = 0; b + 1 < ro.size(); ++b)
      for (index_t r = ro[b] + 1; r < ro[b + 1]; ++r)
        for (index_t d = 0; d < Pi.cols; ++d) CHECK(Pi(r, d) == doctest::Approx(Pi(ro[b], d)).epsilon(1e-12));
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
  cfg.steps = 40;
  cfg.lr = 1e-2;
  trainer<float> tr(cfg, pb.text);
  const double first = tr.forward_backward(pb.batch).total;
  for (int i = 0; i < 30; ++i) tr.step(pb.batch);
  const auto after = tr.forward_backward(pb.batch);
  const double later = after.total;
  CHECK(later < first);
  CHECK(tr.steps_done() == 30);

  test::temp_dir dir;
  tr.save(dir.path);
  trainer<float> other(cfg, pb.text);
  CHECK(other.load(dir.path) == 30);
  CHECK(std::equal(tr.student().params.values(), tr.student().params.values() + tr.student().params.size(),
                   other.student().params.values()));
  // The bank is not checkpointed (trainer.hpp): compare the losses that do not read it.
  const auto reloaded = other.forward_backward(pb.batch);
  CHECK(reloaded.ce == after.ce);
  CHECK(reloaded.syn == after.syn);
  // A missing directory leaves the trainer unchanged.
  CHECK_THROWS_AS(other.load(dir.path / "nope"), std::invalid_argument);
  CHECK(other.steps_done() == 30);

  auto bad = pb.batch;
  bad.cls = random_matrix<float>(3, 6, 1);
  CHECK_THROWS_AS(tr.forward_backward(bad), std::invalid_argument);
  auto cfg_bad = cfg;
  cfg_bad.warmup = 100;
  CHECK_THROWS_AS(trainer<float>(cfg_bad, pb.text), std::invalid_argument);
  cfg_bad = cfg;
  cfg_bad.encoder.embed_dim = 5;
  CHECK_THROWS_AS(trainer<float>(cfg_bad, pb.text), std::invalid_argument);
  cfg_bad = cfg;
  cfg_bad.syn_delta = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH_AS(cfg_bad.validate(), doctest::Contains("syn_delta"), std::invalid_argument);
}

TEST_CASE("predict: argmax of calibrated cosine scores (stride-1 net: upsampling is the identity)") {
  encoder_config ec;
  ec.widths = {4};
  ec.strides = {1};
  ec.embed_dim = 5;
  encoder<double> net(ec);
  encoder_init(net, 3);
  for (auto id : net.bias_id)  // non-zero biases: no all-zero feature rows
    for (index_t i = 0; i < net.params.entries()[id].size; ++i) net.params.value(id)[i] = 0.1 * double(i % 3) - 0.05;
  const index_t B = 2, H = 5, W = 6, K = 4;
  tensor<double, 4> images = tensor<double, 4>::from_shape({B, H, W, 3});
  rng g(4, 0);
  for (auto& v : images) v = g.uniform<double>(-1, 1);
  const auto text = random_matrix<double>(K, 5, 9);
  const std::vector<std::int32_t> ids = {10, 11, 12, 13};
  const bool seen_flags[K] = {true, false, true, false};
  for (double gamma : {0.0, 0.3}) {
    tensor<std::int32_t, 3> labels = tensor<std::int32_t, 3>::from_shape({B, H, W});
    inference_cache<double> cache;
    inference_params ip;
    ip.calibration = gamma;
    predict(labels, cache, images, net, text, std::span<const std::int32_t>(ids), std::span<const bool>(seen_flags, K), ip);
    tensor<double, 3> feats = tensor<double, 3>::from_shape({B, H * W, 5});
    encoder_cache<double> ecache;
    encoder_forward(feats, ecache, images, net, 1);
    for (index_t b = 0; b < B; ++b)
      for (index_t p = 0; p < H * W; ++p) {
        double best = -1e300;
        std::int32_t arg = -1;
        double fn = 0;
        for (index_t d = 0; d < 5; ++d) fn += feats(b, p, d) * feats(b, p, d);
        for (index_t k = 0; k < K; ++k) {
          double dot = 0, tn = 0;
          for (index_t d = 0; d < 5; ++d) dot += feats(b, p, d) * text(k, d), tn += text(k, d) * text(k, d);
          const double s = dot / std::sqrt(fn * tn) - (seen_flags[k] ? gamma : 0.0);
          if (s > best) best = s, arg = ids[k];
        }
        CHECK(labels(b, p / W, p % W) == arg);
      }
  }
}
