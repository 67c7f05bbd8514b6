// SPDX-License-Identifier: Apache-2.0
// Tests for zss/clip/teacher.hpp: the learned teacher's outputs (unit CLS equal to the image
// encoder's, unit dense tokens on its grid), the world it rewrites, and the cache: a key that
// names everything the weights depend on, a file per key, loads only of the same key.
#include <doctest/doctest.h>

#include <cmath>

#include "support/temp_dir.hpp"
#include "zss/clip/teacher.hpp"

namespace test_clip_teacher {

using namespace zss;
using namespace zss::clip;

namespace {
options small_options() {
  options o;
  o.model.image.widths = {4, 6};
  o.model.image.strides = {2, 2};
  o.model.image.token_width = 5;
  o.model.image.attn_width = 4;
  o.model.text_width = 4;
  o.model.dim = 6;
  o.train.batch = 4;
  o.train.corpus = 8;
  o.train.schedule.total_steps = 2;
  o.train.schedule.warmup_steps = 1;
  return o;
}
}  // namespace

TEST_CASE("the learned teacher's outputs and the world that uses them") {
  const auto o = small_options();
  trainer<float> tr(o, 5, 1);
  toy::world_options wp;
  wp.scenes.height = wp.scenes.width = 16;
  wp.text.dim = 6;
  wp.train_images = 5;
  wp.test_images = 3;
  auto w = toy::make_world<float>(wp, 1);
  use_learned_teacher(w, tr.net(), o.captions.names, 2);
  REQUIRE(w.train_teacher.size() == 5);
  REQUIRE(w.test_teacher.size() == 3);
  const auto text = tr.net().class_embeddings(o.captions.names);
  CHECK(w.text == text);
  const auto& t = w.test_teacher[2];
  CHECK(t.grid_h == 4);
  CHECK(t.grid_w == 4);
  CHECK(t.tokens.shape()[0] == 16);
  for (index_t q = 0; q < 16; ++q) {
    double n = 0;
    for (index_t d = 0; d < 6; ++d) n += double(t.tokens(q, d)) * double(t.tokens(q, d));
    CHECK(n == doctest::Approx(1.0).epsilon(1e-5));
  }
  // CLS: the image encoder's forward of that scene alone (batching does not change it).
  const toy::scene* one[1] = {&w.test[2]};
  const auto im = scene_images<float>(std::span<const toy::scene* const>(one, 1));
  image_encoder_cache<float> cache;
  std::vector<float> cls(6);
  image_encoder_forward<float>({cls.data(), 1, 6}, cache, im, tr.net().image());
  for (index_t d = 0; d < 6; ++d) CHECK(t.cls(d) == doctest::Approx(cls[d]).epsilon(1e-6));
  wp.text.dim = 5;
  auto w5 = toy::make_world<float>(wp, 1);
  CHECK_THROWS_WITH_AS(use_learned_teacher(w5, tr.net(), o.captions.names),
                       doctest::Contains("differs from the model's D"), std::invalid_argument);
}

TEST_CASE("the teacher cache: one file per key, loaded only for the same key") {
  const auto o = small_options();
  toy::scene_options so;
  so.height = so.width = 16;
  const auto key = cache_key(o, so, 3, 1);
  CHECK(key.find("seed = 3") != std::string::npos);
  CHECK(key.find("model.widths = 4,6") != std::string::npos);
  auto o2 = o;
  o2.train.schedule.total_steps = 3;
  auto so2 = so;
  so2.pixel_noise = 0.05;
  CHECK(cache_key(o2, so, 3, 1) != key);
  CHECK(cache_key(o, so2, 3, 1) != key);
  CHECK(cache_key(o, so, 4, 1) != key);
  CHECK(cache_key(o, so, 3, 2) != key);
  test::temp_dir dir;
  const auto file = cache_file(dir.path / "sub", key);
  CHECK(file.filename().string().rfind("mini-clip-", 0) == 0);
  CHECK(cache_file(dir.path, key).filename() == file.filename());
  CHECK(cache_file(dir.path, cache_key(o, so, 4, 1)).filename() != file.filename());

  const corpus data(so, o.captions, o.train.corpus, 3, 1);
  trainer<float> tr(o, 3, 1);
  tr.run(data, [](std::uint64_t, const step_stats&) {});
  trainer<float> fresh(o, 3, 1);
  CHECK_FALSE(load_cached(fresh, file, key));  // no file yet
  save_cached(tr, file, key);                  // creates the directory
  CHECK(load_cached(fresh, file, key));
  const auto& a = tr.net().parameters();
  CHECK(std::equal(a.values(), a.values() + a.size(), fresh.net().parameters().values()));
  trainer<float> other(o, 8, 1);
  const std::vector<float> before(other.net().parameters().values(),
                                  other.net().parameters().values() + a.size());
  CHECK_FALSE(load_cached(other, file, cache_key(o, so, 4, 1)));  // another key: untouched
  CHECK(std::equal(before.begin(), before.end(), other.net().parameters().values()));
  test::write_bytes(file, "not a checkpoint");
  CHECK_FALSE(load_cached(other, file, key));
}

}  // namespace test_clip_teacher
