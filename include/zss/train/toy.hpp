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
 * and the seen labels only): seen pixel labels → class-set indices → token labels on the teacher
 * grid → multi-scale K-Means of the teacher tokens (window seeds) → mask fusion and fusion with
 * the seen labels, i.e. `zss::pseudo_labels` (plm/pseudo_labels.hpp) on the teacher grid → the
 * fused map → `targets_from_fused` (nearest neighbour to the student grid, regions, u_l).
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
#include "zss/train/trainer.hpp"

namespace zss::train {

/// Seen/unseen bookkeeping of a toy world.
template <real_scalar T>
struct toy_classes {
  std::vector<std::int32_t> seen_ids;    ///< Ks dataset ids in class-set order (ascending)
  std::vector<std::int32_t> all_ids;     ///< 0..20
  std::vector<std::int32_t> seen_index;  ///< 21: class-set index of a seen id, −1 for unseen
  tensor<T, 2> seen_text;                ///< Ks × D
  std::array<bool, toy::class_count> seen_flag{};  ///< per class id: seen

  explicit toy_classes(const toy::world<T>& w) {
    const index_t K = toy::class_count, D = w.text.shape()[1];
    seen_ids = w.params.scenes.split.seen();
    seen_index.assign(K, -1);
    for (index_t k = 0; k < K; ++k) all_ids.push_back(std::int32_t(k));
    seen_text = tensor<T, 2>::from_shape({seen_ids.size(), D});
    for (index_t i = 0; i < seen_ids.size(); ++i) {
      seen_index[index_t(seen_ids[i])] = std::int32_t(i);
      seen_flag[index_t(seen_ids[i])] = true;
      for (index_t d = 0; d < D; ++d) seen_text(i, d) = w.text(index_t(seen_ids[i]), d);
    }
  }
  /// The seen flags as a span (eval::compute_metrics, predict).
  std::span<const bool> seen() const noexcept { return {seen_flag.data(), seen_flag.size()}; }
};

/// Seen pixel labels of a training scene as class-set indices (unseen/unlabelled → −1).
template <real_scalar T>
tensor<std::int32_t, 2> seen_index_labels(const toy::scene& s, const toy_classes<T>& cls) {
  tensor<std::int32_t, 2> out = s.train_labels;
  for (auto& l : out) l = l < 0 ? -1 : cls.seen_index[index_t(l)];
  return out;
}

/**
 * The PLM fused label map of one image on the teacher grid (DESIGN §2.3 steps 1–4).
 * @returns Q labels: seen index, `Ks + m`, or −1.
 */
template <real_scalar T>
std::vector<std::int32_t> toy_fused_labels(const toy::scene& s, const toy::teacher_output<T>& t,
                                           const toy_classes<T>& cls,
                                           const pseudo_label_options& pc,
                                           std::uint64_t image = 0) {
  const index_t th = t.grid_h, tw = t.grid_w, D = t.tokens.shape()[1];
  tensor<T, 3> tokens = tensor<T, 3>::from_shape({th, tw, D});
  std::copy(t.tokens.begin(), t.tokens.end(), tokens.begin());
  pseudo_label_options p = pc;
  p.token.ignore_value = -1;
  p.normalize_tokens = false;  // the toy teacher's tokens are unit rows already
  p.check_finite = false;
  auto r =
      pseudo_labels(tokens, seen_index_labels(s, cls), std::int64_t(cls.seen_ids.size()), p, image);
  return std::vector<std::int32_t>(r.fused_tokens.begin(), r.fused_tokens.end());
}

/**
 * Targets of every training image, in parallel (one image per task; independent of threads).
 * With `plm` the fused PLM map, else the seen token labels only.
 */
template <real_scalar T>
std::vector<image_targets<T>> make_toy_targets(const toy::world<T>& w, const toy_classes<T>& cls,
                                               const trainer_options& cfg, bool plm,
                                               int threads = 0) {
  const index_t n = w.train.size(), Ks = cls.seen_ids.size();
  std::vector<image_targets<T>> out(n);
  parallel_for(n, threads, [&](index_t i, int) {
    const auto& s = w.train[i];
    const auto& t = w.train_teacher[i];
    const auto [h, wd] = cfg.encoder.output_grid(s.labels.shape()[0], s.labels.shape()[1]);
    const matrix_ref<const T> Z(t.tokens.data(), t.grid_h * t.grid_w, t.tokens.shape()[1]);
    if (plm) {
      const auto fused = toy_fused_labels(s, t, cls, cfg.pseudo, i);
      out[i] = targets_from_fused<T>(std::span<const std::int32_t>(fused), Z, t.grid_h, t.grid_w, h,
                                     wd, Ks);
    } else {
      out[i] = seen_targets<T>(seen_index_labels(s, cls), Z, t.grid_h, t.grid_w, h, wd, Ks,
                               cfg.pseudo.token.ignored_fraction);
    }
  });
  return out;
}

/// Student input of scenes `idx` (2·(x − 0.5)).
template <real_scalar T>
tensor<T, 4> toy_images(const std::vector<toy::scene>& scenes, std::span<const index_t> idx) {
  require(!idx.empty(), "toy_images: no images");
  const index_t B = idx.size(), H = scenes[idx[0]].image.shape()[0],
                W = scenes[idx[0]].image.shape()[1];
  tensor<T, 4> out = tensor<T, 4>::from_shape({B, H, W, 3});
  for (index_t b = 0; b < B; ++b) {
    const auto& im = scenes[idx[b]].image;
    for (index_t y = 0; y < H; ++y)
      for (index_t x = 0; x < W; ++x)
        for (index_t c = 0; c < 3; ++c) out(b, y, x, c) = T(2) * (T(im(y, x, c)) - T(0.5));
  }
  return out;
}

/// The training batch of scenes `idx`, image b mirrored when `flips[b]` (train/sampler.hpp).
template <real_scalar T>
train_batch<T> toy_batch(const toy::world<T>& w, const std::vector<image_targets<T>>& targets,
                         std::span<const index_t> idx, std::span<const char> flips = {}) {
  const index_t B = idx.size(), D = w.text.shape()[1];
  tensor<T, 2> cls = tensor<T, 2>::from_shape({B, D});
  std::vector<const image_targets<T>*> tp;
  for (index_t i = 0; i < B; ++i) {
    for (index_t d = 0; d < D; ++d) cls(i, d) = w.train_teacher[idx[i]].cls(d);
    tp.push_back(&targets[idx[i]]);
  }
  return make_train_batch<T>(toy_images<T>(w.train, idx), std::move(cls), std::move(tp), flips);
}

/// GZSL metrics of the student on the test scenes (all 21 classes scored; DESIGN §2.5).
template <real_scalar T>
eval::segmentation_metrics evaluate_student(
    const toy::world<T>& w, const toy_classes<T>& cls, const encoder<T>& net,
    const eval::predict_options& ip = {}, index_t batch = 32,
    std::vector<tensor<std::int32_t, 2>>* predictions = nullptr) {
  const index_t n = w.test.size(), H = w.params.scenes.height, W = w.params.scenes.width;
  eval::confusion_matrix cm(toy::class_count);
  eval::predict_cache<T> cache;
  if (predictions) predictions->clear();
  for (index_t b0 = 0; b0 < n; b0 += batch) {
    const index_t B = std::min(batch, n - b0);
    std::vector<index_t> idx(B);
    for (index_t i = 0; i < B; ++i) idx[i] = b0 + i;
    const auto images = toy_images<T>(w.test, std::span<const index_t>(idx));
    tensor<std::int32_t, 3> labels = tensor<std::int32_t, 3>::from_shape({B, H, W});
    eval::predict(labels, cache, images, net, w.text, std::span<const std::int32_t>(cls.all_ids),
                  cls.seen(), ip);
    for (index_t i = 0; i < B; ++i) {
      cm.add(w.test[b0 + i].labels.data(), labels.data() + i * H * W, H * W);
      if (predictions) {
        tensor<std::int32_t, 2> p = tensor<std::int32_t, 2>::from_shape({H, W});
        std::copy_n(labels.data() + i * H * W, H * W, p.data());
        predictions->push_back(std::move(p));
      }
    }
  }
  return eval::compute_metrics(cm, cls.seen());
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
