// SPDX-License-Identifier: Apache-2.0
// Tests for zss/toy/export.hpp: the exported toy world reads back as the world itself (lossless
// images bitwise, PNG within rounding), with the toy's classes and split; the training targets
// built from the files equal the in-memory toy's bitwise (the same path, train/dataset.hpp).
#include <doctest/doctest.h>

#include <cmath>

#include "support/small_world.hpp"
#include "support/temp_dir.hpp"
#include "zss/toy/export.hpp"
#include "zss/train/toy.hpp"

namespace test_toy_export {

using namespace zss;

namespace {
toy::world<float> world() {
  return test::small_world<float>(5, 2, 32, 12, 7, 2);
}
}  // namespace

TEST_CASE("the exported toy world reads back as itself; its targets equal the toy's bitwise") {
  const auto w = world();
  test::temp_dir dir;
  toy::export_world(w, dir.path, data::file_kind::npy, data::file_kind::png, 2);
  const auto d = data::open_dataset(dir.path, {"train", "test"});
  CHECK(d.classes() == toy::class_count);
  CHECK(d.dim == 12);
  CHECK(d.tokens_normalized);
  for (index_t k = 0; k < toy::class_count; ++k) {
    CHECK(d.class_names[k] == toy::class_name(std::int32_t(k)));
    CHECK(d.seen[k] == w.seen(std::int32_t(k)));
  }
  CHECK(d.text_embeddings<float>() == w.text);
  const auto& s = d.split("train");
  REQUIRE(s.size() == 5);
  CHECK(s.stems[3] == "000003");
  CHECK(d.split("test").size() == 2);
  const train::toy_classes<float> cls(w);
  const train::class_table<float> table(d.text_embeddings<float>(), d.seen);
  CHECK(table.seen_ids == cls.seen_ids);
  train::trainer_options cfg;
  const auto toy_targets = train::make_toy_targets(w, cls, cfg, true, 1);
  for (index_t i = 0; i < s.size(); ++i) {
    CAPTURE(i);
    const auto it = data::load_item<float>(d, s, i);
    CHECK(it.image == w.train[i].image);
    CHECK(it.labels == w.train[i].labels);
    CHECK(it.cls == w.train_teacher[i].cls);
    const index_t th = it.tokens.shape()[0], tw = it.tokens.shape()[1];
    CHECK(th * tw * 12 == w.train_teacher[i].tokens.size());
    CHECK(std::equal(it.tokens.begin(), it.tokens.end(), w.train_teacher[i].tokens.begin()));
    const train::teacher_view<float> v{matrix_ref<const float>(it.tokens.data(), th * tw, 12), th,
                                       tw, &it.labels};
    const auto t = train::make_image_targets(v, table, cfg, true, i, d.tokens_normalized);
    CHECK(t.labels == toy_targets[i].labels);
    CHECK(t.region_label == toy_targets[i].region_label);
    CHECK(t.region_tokens == toy_targets[i].region_tokens);
    CHECK(t.pseudo_count == toy_targets[i].pseudo_count);
  }
  // Test labels keep every class; unseen classes are in the files (training hides them).
  const auto te = data::load_item<float>(d, d.split("test"), 1);
  CHECK(te.labels == w.test[1].labels);
}

TEST_CASE("PNG export: images within 8-bit rounding, labels exact (clutter ignored)") {
  auto wo_world = world();
  test::temp_dir dir;
  toy::export_world(wo_world, dir.path, data::file_kind::png, data::file_kind::npy, 1);
  const auto d = data::open_dataset(dir.path, {"train"});
  const auto it = data::load_item<float>(d, d.split("train"), 2);
  for (index_t j = 0; j < it.image.size(); ++j)
    CHECK(std::abs(it.image.data()[j] - wo_world.train[2].image.data()[j]) <= 0.5f / 255 + 1e-6f);
  CHECK(it.labels == wo_world.train[2].labels);
}

}  // namespace test_toy_export
