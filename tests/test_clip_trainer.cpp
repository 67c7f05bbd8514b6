// SPDX-License-Identifier: Apache-2.0
// Tests for zss/clip/trainer.hpp: the whole step's gradient (both encoders and the log logit
// scale, with queues) against central finite differences in double; the clamp of the scale;
// determinism per seed and thread count; the loss falls; save and load.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "support/gradcheck.hpp"
#include "support/temp_dir.hpp"
#include "zss/clip/trainer.hpp"

namespace test_clip_trainer {

using namespace zss;
using namespace zss::clip;

namespace {
/// A small mini-CLIP on 8 × 8 scenes.
options tiny_options() {
  options o;
  o.model.image.widths = {4, 6};
  o.model.image.strides = {2, 1};
  o.model.image.token_width = 5;
  o.model.image.attn_width = 4;
  o.model.text_width = 4;
  o.model.dim = 3;
  o.train.batch = 4;
  o.train.corpus = 16;
  o.train.schedule.total_steps = 5;
  o.train.schedule.warmup_steps = 1;
  return o;
}
toy::scene_options tiny_scenes() {
  toy::scene_options s;
  s.height = s.width = 8;
  return s;
}
}  // namespace

TEST_CASE("mini-CLIP step: gradient of every parameter equals finite differences (double)") {
  auto o = tiny_options();
  o.train.queue = 3;
  o.captions.min_pixels = 1;
  const corpus data(tiny_scenes(), o.captions, o.train.corpus, 2, 1);
  trainer<double> tr(o, 4, 1);
  train::batch_sampler sampler(data.size(), o.train.batch, 4);
  // Fill the queues with one real step first, so the check covers them.
  tr.step(data.batch<double>(sampler, 0, true));
  const auto batch = data.batch<double>(sampler, 1, true);
  auto& pb = tr.net().parameters();
  auto loss = [&] { return tr.forward_backward(batch).loss; };
  tr.forward_backward(batch);
  const std::vector<double> grads(pb.grads(), pb.grads() + pb.size());
  for (const auto& e : pb.entries()) {
    CAPTURE(e.name);
    const index_t id = pb.id(e.name);
    const auto num = test::numeric_gradient(loss, pb.value(id), e.size);
    const std::vector<double> got(grads.begin() + long(e.offset),
                                  grads.begin() + long(e.offset + e.size));
    CHECK(test::relative_error(got, num) < 1e-6);
  }
  CHECK(grads[pb.entries()[pb.id("logit_scale")].offset] != 0.0);
}

TEST_CASE("mini-CLIP training: deterministic per seed and thread count; the loss falls") {
  auto o = tiny_options();
  o.train.corpus = 64;
  o.train.batch = 16;
  o.train.schedule.total_steps = 40;
  o.train.schedule.warmup_steps = 4;
  o.train.schedule.base_lr = 1e-2;
  const corpus data(tiny_scenes(), o.captions, o.train.corpus, 7, 2);
  const corpus data1(tiny_scenes(), o.captions, o.train.corpus, 7, 1);
  train::batch_sampler s0(64, 16, 7), s1(64, 16, 7);
  const auto b0 = data.batch<float>(s0, 3, true);
  const auto b1 = data1.batch<float>(s1, 3, true);
  CHECK(b0.tokens == b1.tokens);  // the corpus does not depend on threads
  CHECK(b0.images == b1.images);
  auto run = [&](int threads) {
    trainer<float> tr(o, 11, threads);
    std::vector<double> losses;
    tr.run(data, [&](std::uint64_t, const step_stats& s) { losses.push_back(s.loss); });
    CHECK(tr.steps_done() == 40);
    return std::pair{
        losses, std::vector<float>(tr.net().parameters().values(),
                                   tr.net().parameters().values() + tr.net().parameters().size())};
  };
  const auto [l2, p2] = run(2);
  const auto [l2b, p2b] = run(2);
  CHECK(l2 == l2b);
  CHECK(p2 == p2b);
  const auto [l1, p1] = run(1);
  CHECK(std::abs(l1.back() - l2.back()) < 1e-3);  // other thread counts: rounding only
  double first = 0, last = 0;
  for (index_t i = 0; i < 5; ++i) first += l2[i] / 5, last += l2[l2.size() - 1 - i] / 5;
  MESSAGE("loss " << first << " -> " << last << " (uniform guess log 16 = " << std::log(16.0)
                  << ")");
  CHECK(last < 0.8 * first);
}

TEST_CASE("mini-CLIP: the logit scale is clamped to [1, max_scale] after each step") {
  auto o = tiny_options();
  o.model.max_scale = 15;  // ln 15 = 2.708, barely above ln(1/0.07) = 2.659
  o.train.schedule.base_lr = 0.5;
  o.train.schedule.min_lr = 0.5;
  const corpus data(tiny_scenes(), o.captions, o.train.corpus, 1, 1);
  trainer<float> tr(o, 1, 1);
  tr.run(data, [&](std::uint64_t, const step_stats&) {
    CHECK(tr.net().log_scale() <= float(std::log(15.0)));
    CHECK(tr.net().log_scale() >= 0.f);
  });
  o.model.max_scale = 10;  // below the initial scale 1/0.07
  CHECK_THROWS_WITH_AS(trainer<float>(o, 1, 1), doctest::Contains("max_scale"),
                       std::invalid_argument);
}

TEST_CASE("mini-CLIP: save and load restore the model bitwise; other architectures are refused") {
  const auto o = tiny_options();
  const corpus data(tiny_scenes(), o.captions, o.train.corpus, 3, 1);
  trainer<float> tr(o, 3, 1);
  tr.run(data, [](std::uint64_t, const step_stats&) {});
  test::temp_dir dir;
  const auto file = dir / "m.zss";
  const checkpoint_section sec{"note", {'h', 'i'}};
  tr.save(file, std::span<const checkpoint_section>(&sec, 1));
  trainer<float> back(o, 99, 1);
  const auto sections = back.load(file);
  REQUIRE(sections.size() == 1);
  CHECK(sections[0].name == "note");
  CHECK(back.steps_done() == tr.steps_done());
  const auto& a = tr.net().parameters();
  const auto& b = back.net().parameters();
  CHECK(std::equal(a.values(), a.values() + a.size(), b.values()));
  auto other = o;
  other.model.dim = 4;
  trainer<float> wrong(other, 3, 1);
  CHECK_THROWS_WITH_AS(wrong.load(file), doctest::Contains("architecture mismatch"),
                       std::invalid_argument);
}

}  // namespace test_clip_trainer
