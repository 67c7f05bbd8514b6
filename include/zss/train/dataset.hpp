// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/train/dataset.hpp
 * The trainer's data from plain arrays, whatever their source (the toy world in memory,
 * train/toy.hpp; a dataset folder, data/dataset.hpp): class bookkeeping, the cached per-image
 * targets (PLM pseudo labels from the teacher's tokens), the student's input, batches, and the
 * GZSL evaluation of the student (DESIGN.md §2.3–§2.5).
 *
 * Legend: K classes, Ks seen classes, H × W pixels, h_t × w_t teacher grid (Q tokens), h × w
 * student grid, D width, B images.
 *
 * Targets of one training image (DESIGN §2.3): its pixel labels with unseen classes hidden, as
 * class-set indices → token labels on the teacher grid → multi-scale K-Means of the tokens (window
 * seeds) → mask fusion and fusion with the seen labels (`zss::pseudo_labels`, the fused map on the
 * teacher grid) → `targets_from_fused` (nearest neighbour to the student grid, regions, u_l). The
 * fused map may also come precomputed (e.g. from `zss-pseudo-labels --data`): the rest is cheap.
 *
 * Inputs: images enter the student as `2·(x − 0.5)` (pixels in [0, 1] → [−1, 1]).
 */
#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "zss/core/check.hpp"
#include "zss/core/tensor.hpp"
#include "zss/eval/metrics.hpp"
#include "zss/eval/predict.hpp"
#include "zss/plm/pseudo_labels.hpp"
#include "zss/plm/targets.hpp"
#include "zss/train/config.hpp"
#include "zss/train/trainer.hpp"

namespace zss::train {

/// The most classes a class table holds (255 is the datasets' ignore label).
inline constexpr index_t max_classes = 255;

/// Seen/unseen bookkeeping of a dataset's K classes.
template <real_scalar T>
struct class_table {
  std::vector<std::int32_t> seen_ids;         ///< Ks class ids in class-set order (ascending)
  std::vector<std::int32_t> all_ids;          ///< 0..K−1
  std::vector<std::int32_t> seen_index;       ///< K: class-set index of a seen id, −1 unseen
  tensor<T, 2> seen_text;                     ///< Ks × D
  std::array<bool, max_classes> seen_flag{};  ///< per class id: seen (first K entries)

  class_table() = default;
  /**
   * @param text K × D text embeddings; @param seen K flags.
   * @throws std::invalid_argument on mismatched counts, K > 255 or no seen class.
   */
  class_table(const tensor<T, 2>& text, const std::vector<bool>& seen) {
    const index_t K = text.shape()[0], D = text.shape()[1];
    check_extent("class_table", "seen flags", seen.size(), "classes", K);
    require(K <= max_classes, "class_table: " + std::to_string(K) + " classes, at most 255");
    for (index_t k = 0; k < K; ++k) {
      all_ids.push_back(std::int32_t(k));
      seen_flag[k] = seen[k];
      if (seen[k]) seen_ids.push_back(std::int32_t(k));
    }
    require(!seen_ids.empty(), "class_table: no seen class");
    seen_index.assign(K, -1);
    seen_text = tensor<T, 2>::from_shape({seen_ids.size(), D});
    for (index_t i = 0; i < seen_ids.size(); ++i) {
      seen_index[index_t(seen_ids[i])] = std::int32_t(i);
      for (index_t d = 0; d < D; ++d) seen_text(i, d) = text(index_t(seen_ids[i]), d);
    }
  }
  index_t classes() const noexcept { return all_ids.size(); }
  /// The seen flags as a span (eval::compute_metrics, predict).
  std::span<const bool> seen() const noexcept { return {seen_flag.data(), all_ids.size()}; }
};

/**
 * Pixel labels of a training image as class-set indices: seen class → its index, unseen class
 * and ignored (−1) → −1.
 * @throws std::invalid_argument on a label outside [−1, K).
 */
template <real_scalar T>
tensor<std::int32_t, 2> seen_index_labels(const tensor<std::int32_t, 2>& labels,
                                          const class_table<T>& cls) {
  tensor<std::int32_t, 2> out = labels;
  for (auto& l : out) {
    require(l >= -1 && index_t(l + 1) <= cls.classes(), "seen_index_labels: label " +
                                                            std::to_string(l) + " outside [-1, " +
                                                            std::to_string(cls.classes()) + ")");
    l = l < 0 ? -1 : cls.seen_index[index_t(l)];
  }
  return out;
}

/// One training image's teacher outputs and labels, as views.
template <real_scalar T>
struct teacher_view {
  matrix_ref<const T> tokens;                       ///< Q × D on an h_t × w_t grid
  index_t grid_h = 0, grid_w = 0;                   ///< h_t × w_t
  const tensor<std::int32_t, 2>* labels = nullptr;  ///< H × W class ids (−1 ignored), all classes
};

/**
 * The PLM fused label map of one image on the teacher grid (DESIGN §2.3 steps 1–4).
 * @param unit_tokens the tokens are unit rows already (no normalisation; e.g. the toy teacher's).
 * @param image       the image's index (k-means++ streams).
 * @returns Q labels: seen index, `Ks + m`, or −1.
 */
template <real_scalar T>
std::vector<std::int32_t> fused_token_labels(const teacher_view<T>& v, const class_table<T>& cls,
                                             const pseudo_label_options& pc, std::uint64_t image,
                                             bool unit_tokens) {
  const index_t th = v.grid_h, tw = v.grid_w, D = v.tokens.cols;
  check_extent("fused_token_labels", "tokens", v.tokens.rows, "h_t * w_t", th * tw);
  tensor<T, 3> tokens = tensor<T, 3>::from_shape({th, tw, D});
  for (index_t q = 0; q < th * tw; ++q) std::copy_n(v.tokens.row(q), D, tokens.data() + q * D);
  pseudo_label_options p = pc;
  p.token.ignore_value = -1;
  p.normalize_tokens = !unit_tokens;
  p.check_finite = false;  // the caller's data is checked where it is read
  auto r = pseudo_labels(tokens, seen_index_labels(*v.labels, cls),
                         std::int64_t(cls.seen_ids.size()), p, image);
  return std::vector<std::int32_t>(r.fused_tokens.begin(), r.fused_tokens.end());
}

/**
 * The targets of one training image: with `plm`, from its fused map (`fused`, or computed here),
 * else its seen token labels only.
 * @param H, W        the image size (the student grid is `cfg.encoder.output_grid(H, W)`).
 * @param fused       Q precomputed fused labels, or null (computed with `fused_token_labels`).
 */
template <real_scalar T>
image_targets<T> make_image_targets(const teacher_view<T>& v, const class_table<T>& cls,
                                    const trainer_options& cfg, bool plm, std::uint64_t image,
                                    bool unit_tokens,
                                    const std::vector<std::int32_t>* fused = nullptr) {
  const index_t H = v.labels->shape()[0], W = v.labels->shape()[1], Ks = cls.seen_ids.size();
  const auto [h, w] = cfg.encoder.output_grid(H, W);
  if (plm) {
    std::vector<std::int32_t> computed;
    if (!fused) computed = fused_token_labels(v, cls, cfg.pseudo, image, unit_tokens);
    const auto& f = fused ? *fused : computed;
    return targets_from_fused<T>(std::span<const std::int32_t>(f), v.tokens, v.grid_h, v.grid_w, h,
                                 w, Ks);
  }
  return seen_targets<T>(seen_index_labels(*v.labels, cls), v.tokens, v.grid_h, v.grid_w, h, w, Ks,
                         cfg.pseudo.token.ignored_fraction);
}

/// Student input of `images` (each H × W × 3 in [0, 1]): `2·(x − 0.5)`, B × H × W × 3.
template <real_scalar T>
tensor<T, 4> student_images(std::span<const tensor<float, 3>* const> images) {
  require(!images.empty(), "student_images: no images");
  const index_t B = images.size(), H = images[0]->shape()[0], W = images[0]->shape()[1];
  tensor<T, 4> out = tensor<T, 4>::from_shape({B, H, W, 3});
  for (index_t b = 0; b < B; ++b) {
    const auto& im = *images[b];
    check_shape("student_images", "image", im, {H, W, 3});
    for (index_t y = 0; y < H; ++y)
      for (index_t x = 0; x < W; ++x)
        for (index_t c = 0; c < 3; ++c) out(b, y, x, c) = T(2) * (T(im(y, x, c)) - T(0.5));
  }
  return out;
}

/**
 * A training batch: images, their teacher CLS tokens and targets, image b mirrored when
 * `flips[b]` (train/sampler.hpp).
 */
template <real_scalar T>
train_batch<T> make_batch(std::span<const tensor<float, 3>* const> images,
                          std::span<const T* const> cls, index_t D,
                          std::vector<const image_targets<T>*> targets,
                          std::span<const char> flips = {}) {
  const index_t B = images.size();
  check_extent("make_batch", "CLS tokens", cls.size(), "images", B);
  tensor<T, 2> c = tensor<T, 2>::from_shape({B, D});
  for (index_t i = 0; i < B; ++i) std::copy_n(cls[i], D, c.data() + i * D);
  return make_train_batch<T>(student_images<T>(images), std::move(c), std::move(targets), flips);
}

/**
 * GZSL metrics of the student on labelled images (all K classes scored; DESIGN §2.5), `batch`
 * images at a time; the predictions too when asked.
 */
template <real_scalar T>
eval::segmentation_metrics evaluate_student(
    std::span<const tensor<float, 3>* const> images,
    std::span<const tensor<std::int32_t, 2>* const> labels, const tensor<T, 2>& text,
    const class_table<T>& cls, const encoder<T>& net, const eval::predict_options& ip = {},
    index_t batch = 32, std::vector<tensor<std::int32_t, 2>>* predictions = nullptr) {
  check_extent("evaluate_student", "label maps", labels.size(), "images", images.size());
  const index_t n = images.size();
  eval::confusion_matrix cm(cls.classes());
  eval::predict_cache<T> cache;
  if (predictions) predictions->clear();
  for (index_t b0 = 0; b0 < n; b0 += batch) {
    const index_t B = std::min(batch, n - b0);
    const auto x = student_images<T>(images.subspan(b0, B));
    const index_t H = x.shape()[1], W = x.shape()[2];
    tensor<std::int32_t, 3> out = tensor<std::int32_t, 3>::from_shape({B, H, W});
    eval::predict(out, cache, x, net, text, std::span<const std::int32_t>(cls.all_ids), cls.seen(),
                  ip);
    for (index_t i = 0; i < B; ++i) {
      cm.add(labels[b0 + i]->data(), out.data() + i * H * W, H * W);
      if (predictions) {
        tensor<std::int32_t, 2> p = tensor<std::int32_t, 2>::from_shape({H, W});
        std::copy_n(out.data() + i * H * W, H * W, p.data());
        predictions->push_back(std::move(p));
      }
    }
  }
  return eval::compute_metrics(cm, cls.seen());
}

}  // namespace zss::train
