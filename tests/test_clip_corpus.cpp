// SPDX-License-Identifier: Apache-2.0
// Tests for zss/clip/corpus.hpp: scenes at indices disjoint from the toy's, 8-bit images that
// round-trip the generator's, flips that mirror, captions redrawn per epoch with the same named
// classes, errors.
#include <doctest/doctest.h>

#include <cmath>

#include "zss/clip/corpus.hpp"

namespace test_clip_corpus {

using namespace zss;
using namespace zss::clip;

TEST_CASE("corpus batches: the generator's scenes, mirrored when flipped, captions per epoch") {
  toy::scene_options so;
  so.height = so.width = 16;
  const caption_options co;
  const corpus data(so, co, 12, 9, 2);
  CHECK(data.size() == 12);
  train::batch_sampler sampler(12, 5, 9);
  const auto flips = sampler.flips(4, true);
  const auto b = data.batch<float>(sampler, 4, true);
  REQUIRE(b.scenes.size() == 5);
  REQUIRE(b.offsets.size() == 6);
  index_t flipped = 0;
  for (index_t i = 0; i < 5; ++i) {
    const auto s = toy::make_scene(so, 9, corpus_index_base + b.scenes[i]);
    flipped += flips[i];
    for (index_t y = 0; y < 16; ++y)
      for (index_t x = 0; x < 16; ++x)
        for (index_t c = 0; c < 3; ++c) {
          const float px = s.image(y, flips[i] ? 15 - x : x, c);
          CHECK(std::abs(b.images(i, y, x, c) - 2 * (px - 0.5f)) <= 1.0f / 255 + 1e-6f);
        }
    // The caption of step 4 (positions 20..24: epoch 1 or 2) names the scene's visible classes.
    const std::vector<std::int32_t> tokens(b.tokens.begin() + long(b.offsets[i]),
                                           b.tokens.begin() + long(b.offsets[i + 1]));
    const std::uint64_t epoch = (4 * 5 + i) / 12;
    CHECK(tokens == data.caption_of(b.scenes[i], epoch).tokens);
    CHECK(data.caption_of(b.scenes[i], epoch).named == visible_classes(s, co.min_pixels));
  }
  CHECK(flipped > 0);
  index_t changed = 0;
  for (index_t i = 0; i < 12; ++i) {
    changed += data.caption_of(i, 0).tokens != data.caption_of(i, 1).tokens;
    CHECK(data.caption_of(i, 0).named == data.caption_of(i, 1).named);
  }
  CHECK(changed >= 10);
  train::batch_sampler wrong(11, 5, 9);
  CHECK_THROWS_WITH_AS(data.batch<float>(wrong, 0, false), doctest::Contains("11 images"),
                       std::invalid_argument);
  CHECK_THROWS_AS(corpus(so, co, 0, 9), std::invalid_argument);
}

}  // namespace test_clip_corpus
