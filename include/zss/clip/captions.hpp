// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/clip/captions.hpp
 * Seeded captions of toy scenes: the weak, image-level text mini-CLIP learns from (DESIGN.md §4).
 *
 * A class is *visible* in a scene when it owns at least `min_pixels` pixels of the full label map
 * (occlusion counted; clutter is no class). A caption names every visible class — all 21, the
 * unseen ones included: CLIP saw those words in pretraining, only the segmentation labels hide
 * them — and no other, each once, whatever the number of its instances:
 *
 *     <prefix> <object> [<joiner> <object>]… [<background phrase>]
 *     object = "a" [distractor] <class name tokens> [shape word]
 *
 * e.g. "a photo of a large red stripes disc and a blue dots on a background". The prefix, the
 * joiners, the background phrase, the object order (`shuffle`), the shape word of the object's
 * largest visible instance (`shape_words`) and the distractor adjectives (`distractors`) are
 * drawn at random; background is named (by the background phrase) exactly when it is visible.
 * A caption of scene `index` is a pure function of `(seed, index)` (its own stream), so captions
 * can be made in any order and on any thread. A scene and its mirror image have the same caption.
 */
#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "zss/clip/vocabulary.hpp"
#include "zss/core/check.hpp"
#include "zss/core/option_fields.hpp"
#include "zss/core/random.hpp"
#include "zss/toy/scenes.hpp"

namespace zss::clip {

/// Knobs of the caption generator, with defaults.
struct caption_options {
  name_tokens names = name_tokens::phrase;  ///< one token per class name, or colour + texture words
  index_t min_pixels = 16;   ///< a class is visible (and named) with at least this many pixels
  double shape_words = 0.5;  ///< probability that a named object is followed by its shape word
  double distractors = 0.2;  ///< probability of a distractor adjective before an object's name
  bool shuffle = true;       ///< objects in random order (else in class-id order)

  void validate() const {
    require(min_pixels >= 1, "clip::caption_options: min_pixels must be >= 1");
    require(shape_words >= 0 && shape_words <= 1 && distractors >= 0 && distractors <= 1,
            "clip::caption_options: shape_words and distractors are probabilities in [0, 1]");
  }
};

/// The caption generator's knobs as described fields (zss/core/option_fields.hpp).
template <class V>
void describe(V& v, caption_options& c) {
  using namespace checks;
  v.choice("names", c.names, name_tokens_names,
           "class names as one token (phrase) or colour + texture words (words)", "caption-names");
  v.field("min_pixels", c.min_pixels, "pixels a class needs to be visible and named", at_least(1),
          "caption-min-pixels");
  v.field("shape_words", c.shape_words, "probability of a shape word after a named object",
          interval(0, 1, false, false), "caption-shapes");
  v.field("distractors", c.distractors, "probability of a distractor adjective per object",
          interval(0, 1, false, false), "caption-distractors");
  v.field("shuffle", c.shuffle, "objects named in random order", "caption-shuffle");
}

/// What a caption depends on in a scene: each class's visible pixels and the shape of its
/// largest visible instance (a few bytes, so a corpus keeps them instead of label maps).
struct caption_facts {
  std::array<index_t, toy::class_count> pixels{};         ///< by class id (occlusion counted)
  std::array<toy::shape_kind, toy::class_count> shape{};  ///< by class id (objects only)

  caption_facts() = default;
  explicit caption_facts(const toy::scene& s) {
    for (auto l : s.labels)
      if (l >= 0) ++pixels[index_t(l)];
    std::array<index_t, toy::class_count> best{};
    for (const auto& obj : s.objects)
      if (obj.class_id > 0 && obj.visible_pixels > best[index_t(obj.class_id)]) {
        best[index_t(obj.class_id)] = obj.visible_pixels;
        shape[index_t(obj.class_id)] = obj.shape;
      }
  }
  /// Which classes are visible: at least `min_pixels` pixels (21 flags by class id).
  std::array<bool, toy::class_count> visible(index_t min_pixels) const {
    std::array<bool, toy::class_count> out{};
    for (index_t k = 0; k < toy::class_count; ++k) out[k] = pixels[k] >= min_pixels;
    return out;
  }
};

/// Which classes are visible in `s` (see the file comment): 21 flags by class id.
inline std::array<bool, toy::class_count> visible_classes(const toy::scene& s, index_t min_pixels) {
  return caption_facts(s).visible(min_pixels);
}

/// A caption: its tokens (vocabulary ids) and the classes it names.
struct caption {
  std::vector<std::int32_t> tokens;
  std::array<bool, toy::class_count> named{};  ///< by class id
  std::string text() const { return tokens_text(tokens); }
};

/**
 * The caption number `index` of a scene with `facts` in a world with seed `seed` (see the file
 * comment). A corpus that redraws captions every epoch passes a different `index` each time.
 * @throws std::invalid_argument when `o` is invalid.
 */
inline caption make_caption(const caption_facts& facts, const caption_options& o,
                            std::uint64_t seed, std::uint64_t index) {
  o.validate();
  rng g(seed ^ 0xca97105eedull, index);
  caption c;
  c.named = facts.visible(o.min_pixels);
  const auto& shape = facts.shape;
  std::vector<std::int32_t> objects;
  for (std::int32_t k = 1; k < std::int32_t(toy::class_count); ++k)
    if (c.named[index_t(k)]) objects.push_back(k);
  if (o.shuffle)
    for (index_t i = objects.size(); i > 1; --i) std::swap(objects[i - 1], objects[g.below(i)]);

  auto put = [&](std::initializer_list<const char*> words) {
    for (auto w : words) c.tokens.push_back(token_id(w));
  };
  switch (g.below(6)) {
    case 0:
      put({"a", "photo", "of"});
      break;
    case 1:
      put({"an", "image", "of"});
      break;
    case 2:
      put({"a", "picture", "of"});
      break;
    case 3:
      put({"there", "is"});
      break;
    case 4:
      put({"this", "scene", "shows"});
      break;
    default:
      put({"a", "toy", "scene", "with"});
      break;
  }
  for (index_t i = 0; i < objects.size(); ++i) {
    if (i > 0) {
      switch (g.below(3)) {
        case 0:
          put({"and"});
          break;
        case 1:
          put({"with"});
          break;
        default:
          put({"next", "to"});
          break;
      }
    }
    put({"a"});
    const double d = g.uniform();
    if (d < o.distractors)
      c.tokens.push_back(
          token_id(detail::distractor_words[g.below(detail::distractor_words.size())]));
    for (auto t : class_name_tokens(objects[i], o.names)) c.tokens.push_back(t);
    if (g.uniform() < o.shape_words) c.tokens.push_back(shape_token(shape[index_t(objects[i])]));
  }
  if (c.named[toy::background]) {
    const auto bg = token_id("background");
    if (objects.empty()) {
      put({"a"});
      c.tokens.push_back(bg);
    } else {
      switch (g.below(3)) {
        case 0:
          put({"on", "a"});
          break;
        case 1:
          put({"on", "a", "plain"});
          break;
        default:
          put({"in", "the"});
          break;
      }
      c.tokens.push_back(bg);
    }
  }
  return c;
}

/// The caption of scene `s` (number `index` of the world with seed `seed`).
inline caption make_caption(const toy::scene& s, const caption_options& o, std::uint64_t seed,
                            std::uint64_t index) {
  return make_caption(caption_facts(s), o, seed, index);
}

}  // namespace zss::clip
