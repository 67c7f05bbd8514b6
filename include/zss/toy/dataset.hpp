// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/toy/dataset.hpp
 * A toy world in one object: the class split, text embeddings, the teacher, and pre-generated
 * training and test scenes with the teacher's outputs (DESIGN.md §4).
 *
 * Scenes and teacher outputs are generated in parallel, one image per task; each is a pure
 * function of (seed, index), so the dataset is identical for any thread count. Training scene i
 * has index i, test scene i has index `test_index_base + i`.
 */
#include <cstdint>
#include <vector>

#include "zss/core/option_fields.hpp"
#include "zss/core/parallel.hpp"
#include "zss/core/simd.hpp"
#include "zss/eval/zero_shot.hpp"
#include "zss/toy/scenes.hpp"
#include "zss/toy/teacher.hpp"
#include "zss/toy/text_embeddings.hpp"

namespace zss::toy {

struct world_options {
  scene_options scenes;
  text_options text;
  teacher_options teacher;
  index_t train_images = 512;
  index_t test_images = 128;
  std::uint64_t seed = 0;  ///< seeds scenes, text and teacher (their own fields' seeds are ignored)
};

/**
 * The toy world's knobs as described fields (zss/core/option_fields.hpp): sizes, scenes, text
 * and the simulated teacher. `seed` is the run's (the trainer's `seed`), not listed here.
 */
template <class V>
void describe(V& v, world_options& w) {
  using namespace checks;
  v.field("train_images", w.train_images, "training scenes", at_least(1), "train-images");
  v.field("test_images", w.test_images, "test scenes", at_least(1), "test-images");
  v.field("scenes.height", w.scenes.height, "scene height H", at_least(4), "height");
  v.field("scenes.width", w.scenes.width, "scene width W", at_least(4), "width");
  v.field("scenes.min_objects", w.scenes.min_objects, "objects per scene, at least", at_least(1),
          "min-objects");
  v.field("scenes.max_objects", w.scenes.max_objects, "objects per scene, at most", at_least(1),
          "max-objects");
  v.field("scenes.clutter_objects", w.scenes.clutter_objects, "extra unlabelled clutter objects",
          {}, "clutter");
  v.field("text.dim", w.text.dim, "text embedding width D", at_least(1), "dim");
  v.field("text.shared", w.text.shared, "weight a of the colour and texture parts", non_negative(),
          "text-shared");
  v.field("text.own", w.text.own, "weight b of the class-own part", non_negative(), "text-own");
  v.field("teacher.patch", w.teacher.patch, "teacher patch size (pixels)", at_least(1), "patch");
  v.field("teacher.dense_noise", w.teacher.dense_noise, "teacher's dense-token noise sigma_d",
          non_negative(), "dense-noise");
  v.field("teacher.cls_noise", w.teacher.cls_noise, "teacher's CLS noise sigma_c", non_negative(),
          "cls-noise");
  v.field("teacher.gap", w.teacher.gap, "teacher's modality gap (rotation strength; 0 = none)",
          non_negative(), "gap");
  v.field("teacher.global_bias", w.teacher.global_bias,
          "teacher's global bias gamma in dense tokens", non_negative(), "global-bias");
  v.field("teacher.area_power", w.teacher.area_power, "CLS weight of a class: area^beta",
          positive(), "area-power");
}

template <real_scalar T = float>
struct world {
  world_options params;
  tensor<T, 2> text;               ///< 21 × D class embeddings (unit rows)
  std::vector<scene> train, test;  ///< scenes
  std::vector<teacher_output<T>> train_teacher, test_teacher;

  /// Class k is seen in training.
  bool seen(std::int32_t k) const { return params.scenes.split.is_seen(k); }
};

/// Builds the world: text embeddings, teacher, and all scenes with the teacher's outputs.
template <real_scalar T = float>
world<T> make_world(world_options p, int threads = 0) {
  p.text.seed = p.seed;
  p.teacher.seed = p.seed;
  p.scenes.validate();
  world<T> w;
  w.params = p;
  w.text = make_text_embeddings<T>(p.text);
  const teacher<T> teach(w.text, p.teacher);
  auto fill = [&](std::vector<scene>& scenes, std::vector<teacher_output<T>>& outs, index_t n,
                  std::uint64_t base) {
    scenes.resize(n);
    outs.resize(n);
    parallel_for(n, threads, [&](index_t i, int) {
      scenes[i] = make_scene(p.scenes, p.seed, base + i);
      outs[i] = teach(scenes[i], base + i);
    });
  };
  fill(w.train, w.train_teacher, p.train_images, 0);
  fill(w.test, w.test_teacher, p.test_images, test_index_base);
  return w;
}

/**
 * The teacher's own zero-shot segmentation (MaskCLIP-style, eval/zero_shot.hpp): each dense token
 * takes the class whose text embedding is most similar (ties to the class listed first),
 * upsampled to `H × W` by nearest neighbour. `classes` restricts the candidates (e.g. seen +
 * unseen = all 21).
 */
template <real_scalar T>
tensor<std::int32_t, 2> classify_tokens(const teacher_output<T>& t, const tensor<T, 2>& text,
                                        const std::vector<std::int32_t>& classes, index_t H,
                                        index_t W) {
  return eval::classify_tokens<T>(
      matrix_ref<const T>(t.tokens.data(), t.tokens.shape()[0], t.tokens.shape()[1]), t.grid_h,
      t.grid_w, text, std::span<const std::int32_t>(classes), H, W);
}

}  // namespace zss::toy
