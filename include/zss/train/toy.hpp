// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/train/toy.hpp
 * The trainer on the toy world (DESIGN.md §4): class bookkeeping, the cached per-image targets
 * (PLM pseudo labels from the simulated teacher), batches, and the GZSL evaluation (§2.5) of
 * the student and of the teacher's own zero-shot segmentation.
 *
 * Legend: Ks seen classes (background + 15 by default), K = 21 classes, H × W pixels, h_t × w_t
 * teacher grid, h × w student grid, D width.
 *
 * PLM pseudo labels per training image (DESIGN §2.3), computed once (they depend on the teacher
 * and the seen labels only) by train/dataset.hpp's `make_image_targets`, the path a dataset on
 * disk takes too: seen pixel labels → class-set indices → token labels on the teacher grid →
 * multi-scale K-Means of the teacher tokens (window seeds) → mask fusion and fusion with the seen
 * labels → the fused map → `targets_from_fused` (nearest neighbour to the student grid, regions,
 * u_l).
 *
 * Inputs: images enter the student as `2·(x − 0.5)` (pixels in [0, 1] → [−1, 1]).
 */
#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "zss/core/parallel.hpp"
#include "zss/core/random.hpp"
#include "zss/eval/metrics.hpp"
#include "zss/eval/predict.hpp"
#include "zss/plm/pseudo_labels.hpp"
#include "zss/plm/targets.hpp"
#include "zss/plm/token_labels.hpp"
#include "zss/toy/dataset.hpp"
#include "zss/train/config.hpp"
#include "zss/train/dataset.hpp"
#include "zss/train/trainer.hpp"

namespace zss::train {

/// Seen/unseen bookkeeping of a toy world (train/dataset.hpp's class table of its 21 classes).
template <real_scalar T>
struct toy_classes : class_table<T> {
  explicit toy_classes(const toy::world<T>& w) : class_table<T>(w.text, seen_flags(w)) {}

 private:
  static std::vector<bool> seen_flags(const toy::world<T>& w) {
    std::vector<bool> seen(toy::class_count);
    for (index_t k = 0; k < toy::class_count; ++k) seen[k] = w.seen(std::int32_t(k));
    return seen;
  }
};

/// Seen pixel labels of a training scene as class-set indices (unseen/unlabelled → −1).
template <real_scalar T>
tensor<std::int32_t, 2> seen_index_labels(const toy::scene& s, const toy_classes<T>& cls) {
  return seen_index_labels(s.train_labels, static_cast<const class_table<T>&>(cls));
}

/// The teacher's view of a training scene (tokens, grid, the labels with unseen classes hidden).
template <real_scalar T>
teacher_view<T> toy_view(const toy::scene& s, const toy::teacher_output<T>& t) {
  return {matrix_ref<const T>(t.tokens.data(), t.grid_h * t.grid_w, t.tokens.shape()[1]), t.grid_h,
          t.grid_w, &s.train_labels};
}

/**
 * The PLM fused label map of one image on the teacher grid (DESIGN §2.3 steps 1–4; the toy
 * teacher's tokens are unit rows already).
 * @returns Q labels: seen index, `Ks + m`, or −1.
 */
template <real_scalar T>
std::vector<std::int32_t> toy_fused_labels(const toy::scene& s, const toy::teacher_output<T>& t,
                                           const toy_classes<T>& cls,
                                           const pseudo_label_options& pc,
                                           std::uint64_t image = 0) {
  return fused_token_labels(toy_view(s, t), cls, pc, image, true);
}

/**
 * Targets of every training image, in parallel (one image per task; independent of threads).
 * With `plm` the fused PLM map, else the seen token labels only.
 */
template <real_scalar T>
std::vector<image_targets<T>> make_toy_targets(const toy::world<T>& w, const toy_classes<T>& cls,
                                               const trainer_options& cfg, bool plm,
                                               int threads = 0) {
  std::vector<image_targets<T>> out(w.train.size());
  parallel_for(w.train.size(), threads, [&](index_t i, int) {
    out[i] = make_image_targets(toy_view(w.train[i], w.train_teacher[i]), cls, cfg, plm, i, true);
  });
  return out;
}

/// The images of scenes `idx` (views).
inline std::vector<const tensor<float, 3>*> toy_image_views(const std::vector<toy::scene>& scenes,
                                                            std::span<const index_t> idx) {
  std::vector<const tensor<float, 3>*> out;
  for (auto i : idx) out.push_back(&scenes[i].image);
  return out;
}

/// Student input of scenes `idx` (2·(x − 0.5)).
template <real_scalar T>
tensor<T, 4> toy_images(const std::vector<toy::scene>& scenes, std::span<const index_t> idx) {
  require(!idx.empty(), "toy_images: no images");
  const auto views = toy_image_views(scenes, idx);
  return student_images<T>(std::span<const tensor<float, 3>* const>(views));
}

/// The training batch of scenes `idx`, image b mirrored when `flips[b]` (train/sampler.hpp).
template <real_scalar T>
train_batch<T> toy_batch(const toy::world<T>& w, const std::vector<image_targets<T>>& targets,
                         std::span<const index_t> idx, std::span<const char> flips = {}) {
  const auto views = toy_image_views(w.train, idx);
  std::vector<const T*> cls;
  std::vector<const image_targets<T>*> tp;
  for (auto i : idx) cls.push_back(w.train_teacher[i].cls.data()), tp.push_back(&targets[i]);
  return make_batch<T>(std::span<const tensor<float, 3>* const>(views),
                       std::span<const T* const>(cls), w.text.shape()[1], std::move(tp), flips);
}

/// GZSL metrics of the student on the test scenes (all 21 classes scored; DESIGN §2.5).
template <real_scalar T>
eval::segmentation_metrics evaluate_student(
    const toy::world<T>& w, const toy_classes<T>& cls, const encoder<T>& net,
    const eval::predict_options& ip = {}, index_t batch = 32,
    std::vector<tensor<std::int32_t, 2>>* predictions = nullptr) {
  std::vector<const tensor<float, 3>*> images;
  std::vector<const tensor<std::int32_t, 2>*> labels;
  for (const auto& s : w.test) images.push_back(&s.image), labels.push_back(&s.labels);
  return evaluate_student<T>(std::span<const tensor<float, 3>* const>(images),
                             std::span<const tensor<std::int32_t, 2>* const>(labels), w.text, cls,
                             net, ip, batch, predictions);
}

/// GZSL metrics of the teacher's own zero-shot segmentation (`toy::classify_tokens`, all classes).
template <real_scalar T>
eval::segmentation_metrics evaluate_teacher(const toy::world<T>& w, const toy_classes<T>& cls) {
  const index_t H = w.params.scenes.height, W = w.params.scenes.width;
  eval::confusion_matrix cm(toy::class_count);
  for (index_t i = 0; i < w.test.size(); ++i) {
    const auto pred = toy::classify_tokens(w.test_teacher[i], w.text, cls.all_ids, H, W);
    cm.add(w.test[i].labels.data(), pred.data(), H * W);
  }
  return eval::compute_metrics(cm, cls.seen());
}

}  // namespace zss::train
