// SPDX-License-Identifier: Apache-2.0
// Tests for zss/clip/captions.hpp: property tests on many seeded scenes — every class named when
// visible and only then (visibility counted here from the label maps), each once; determinism per
// (seed, index); variety of templates, order, shape words and distractors at their stated rates;
// flip invariance; errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <map>
#include <set>

#include "zss/clip/captions.hpp"

namespace test_clip_captions {

using namespace zss;
using namespace zss::clip;

namespace {
/// Pixels per class counted directly from the scene's full label map.
std::array<index_t, 21> pixel_counts(const toy::scene& s) {
  std::array<index_t, 21> n{};
  for (index_t y = 0; y < s.labels.shape()[0]; ++y)
    for (index_t x = 0; x < s.labels.shape()[1]; ++x)
      if (s.labels(y, x) >= 0) ++n[index_t(s.labels(y, x))];
  return n;
}
/// How often class k's name appears in the tokens (words mode: colour word then texture word).
index_t mentions(const std::vector<std::int32_t>& t, std::int32_t k, name_tokens mode) {
  const auto name = class_name_tokens(k, mode);
  index_t n = 0;
  for (index_t i = 0; i + name.size() <= t.size(); ++i)
    n += std::equal(name.begin(), name.end(), t.begin() + long(i));
  return n;
}
}  // namespace

TEST_CASE("captions name every visible class once, and no other (property test)") {
  toy::scene_options so;
  so.max_objects = 4;
  so.clutter_objects = 1;  // clutter is no class: never named
  for (auto mode : {name_tokens::phrase, name_tokens::words})
    for (index_t min_pixels : {1, 16, 200}) {
      CAPTURE(int(mode));
      CAPTURE(min_pixels);
      caption_options o;
      o.names = mode;
      o.min_pixels = min_pixels;
      index_t named_hidden = 0;
      for (std::uint64_t i = 0; i < 150; ++i) {
        const auto s = toy::make_scene(so, 3, i);
        const auto n = pixel_counts(s);
        const auto c = make_caption(s, o, 3, i);
        for (std::int32_t k = 0; k < 21; ++k) {
          const bool visible = n[index_t(k)] >= min_pixels;
          CHECK(c.named[index_t(k)] == visible);
          CHECK(mentions(c.tokens, k, mode) == (visible ? 1u : 0u));
          named_hidden += visible && !so.split.is_seen(k);
        }
      }
      CHECK(named_hidden > 20);  // unseen classes are named too
    }
}

TEST_CASE("captions are a pure function of (seed, index) and vary otherwise") {
  const toy::scene_options so;
  const caption_options o;
  std::set<std::vector<std::int32_t>> distinct;
  std::set<std::int32_t> first_words;
  index_t reordered = 0, shape_words = 0, objects = 0, distractors = 0;
  const auto shape_ids = [] {
    std::set<std::int32_t> s;
    for (int k = 0; k < 4; ++k) s.insert(shape_token(toy::shape_kind(k)));
    return s;
  }();
  const auto distractor_ids = [] {
    std::set<std::int32_t> s;
    for (auto w : clip::detail::distractor_words) s.insert(token_id(w));
    return s;
  }();
  for (std::uint64_t i = 0; i < 300; ++i) {
    const auto s = toy::make_scene(so, 5, i);
    const auto a = make_caption(s, o, 5, i), b = make_caption(s, o, 5, i);
    CHECK(a.tokens == b.tokens);
    const auto other = make_caption(s, o, 5, i + (std::uint64_t(1) << 40));  // another epoch
    CHECK(other.named == a.named);
    distinct.insert(a.tokens);
    first_words.insert(a.tokens[0]);
    // Order of the named object classes.
    std::vector<std::int32_t> order;
    for (std::int32_t k = 1; k < 21; ++k)
      if (a.named[index_t(k)]) objects++;
    for (auto t : a.tokens)
      for (std::int32_t k = 1; k < 21; ++k)
        if (t == class_name_tokens(k, name_tokens::phrase)[0]) order.push_back(k);
    reordered += !std::is_sorted(order.begin(), order.end());
    for (auto t : a.tokens)
      shape_words += shape_ids.count(t), distractors += distractor_ids.count(t);
  }
  CHECK(distinct.size() >= 280);   // single-object scenes repeat a few short captions
  CHECK(first_words.size() >= 4);  // several templates
  CHECK(reordered > 30);           // shuffled order
  // Rates near their options (0.5 and 0.2 per named object; binomial, ~600 objects).
  CHECK(double(shape_words) / double(objects) == doctest::Approx(0.5).epsilon(0.15));
  CHECK(double(distractors) / double(objects) == doctest::Approx(0.2).epsilon(0.3));
  // Seeds change the caption of the same scene.
  const auto s0 = toy::make_scene(so, 5, 0);
  index_t differ = 0;
  for (std::uint64_t seed = 0; seed < 20; ++seed)
    differ += make_caption(s0, o, seed, 0).tokens != make_caption(s0, o, 5, 0).tokens;
  CHECK(differ >= 10);
}

TEST_CASE("caption options: no shapes, no distractors, class order; and errors") {
  const toy::scene_options so;
  caption_options o;
  o.shape_words = 0, o.distractors = 0, o.shuffle = false;
  for (std::uint64_t i = 0; i < 50; ++i) {
    const auto s = toy::make_scene(so, 1, i);
    const auto c = make_caption(s, o, 1, i);
    std::vector<std::int32_t> order;
    for (auto t : c.tokens) {
      CHECK(token_word(t) != "disc");
      CHECK(token_word(t) != "small");
      for (std::int32_t k = 1; k < 21; ++k)
        if (t == class_name_tokens(k, name_tokens::phrase)[0]) order.push_back(k);
    }
    CHECK(std::is_sorted(order.begin(), order.end()));
  }
  o.min_pixels = 0;
  CHECK_THROWS_AS(make_caption(toy::make_scene(so, 1, 0), o, 1, 0), std::invalid_argument);
  o.min_pixels = 1, o.shape_words = 1.5;
  CHECK_THROWS_AS(make_caption(toy::make_scene(so, 1, 0), o, 1, 0), std::invalid_argument);
}

TEST_CASE("described caption options reach the command-line names") {
  caption_options o;
  option_fields f(o);
  REQUIRE(f.find("names") != nullptr);
  CHECK(f.find("names")->flag == "caption-names");
  f.find("names")->set("words");
  CHECK(o.names == name_tokens::words);
  f.find("min_pixels")->set("0");
  CHECK_THROWS_AS(f.validate("captions"), std::invalid_argument);
}

}  // namespace test_clip_captions
