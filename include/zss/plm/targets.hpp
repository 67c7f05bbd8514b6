// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/plm/targets.hpp
 * What one training image contributes besides its pixels: the fused label map on the student's
 * feature grid, its regions and the teacher's region-pooled tokens (DESIGN.md §2.3 step 5, §2.4).
 *
 * Legend: Ks seen classes, H × W pixels, h_t × w_t teacher token grid (Q tokens), h × w student
 * feature grid (P = h·w), D width, M pseudo classes of the image, L = S + M regions of the image
 * (S seen classes present on the student grid, then the M pseudo masks).
 *
 * Labels on the student grid are *class-set indices* (cosine_logits.hpp): a seen class's index in
 * `[0, Ks)` (its position among the seen classes, not its dataset id), a pseudo class `Ks + m`,
 * or −1 (ignored). Targets depend only on the teacher and the seen labels, never on the student:
 * the trainer computes them once per image and caches them (they are constants, so the training
 * loss stays differentiable in the student's and the synthesizer's parameters).
 *
 * Decisions:
 *  - Regions are defined on the student grid (what region pooling sees); the teacher tokens of
 *    region l (`u_l`, synthesizer memory) are pooled on the teacher grid over the same fused label.
 *    A region that has no teacher token (possible only when the grids differ) takes the image's
 *    mean token.
 *  - Pseudo classes that vanish in the nearest-neighbour resize are dropped and the rest
 *    renumbered `0..M−1` in their original order, so every class of the set owns a pixel.
 */
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "zss/core/check.hpp"
#include "zss/core/tensor.hpp"
#include "zss/plm/token_labels.hpp"

namespace zss {

/// The constant training targets of one image (see the file comment).
template <real_scalar T>
struct image_targets {
  index_t grid_h = 0, grid_w = 0;    ///< student grid h × w
  index_t seen_classes = 0;          ///< Ks
  index_t pseudo_count = 0;          ///< M
  std::vector<std::int32_t> labels;  ///< P fused labels (class-set indices or −1)
  std::vector<std::int32_t>
      region_label;            ///< L: seen index for the S seen regions, −1 for the M pseudo ones
  tensor<T, 2> region_tokens;  ///< L × D: teacher tokens pooled over each region (u_l)
  std::vector<std::int32_t>
      teacher_map;  ///< Q fused labels on the teacher grid (for pictures), −1 ignored

  index_t regions() const noexcept { return region_label.size(); }
  /// S: seen regions (the first S regions).
  index_t seen_regions() const noexcept { return regions() - pseudo_count; }
  /// Local region id of a label (−1 for ignored). Seen label k → its rank among present seen
  /// classes.
  std::int32_t region_of(std::int32_t label) const noexcept {
    if (label < 0) return -1;
    if (index_t(label) >= seen_classes)
      return std::int32_t(seen_regions() + (index_t(label) - seen_classes));
    const auto S = seen_regions();
    for (index_t r = 0; r < S; ++r)
      if (region_label[r] == label) return std::int32_t(r);
    return -1;
  }
};

/**
 * Targets from a fused label map on the teacher grid.
 * @param fused   Q labels on the teacher grid: seen index in [0, Ks), pseudo `Ks + m`, or −1.
 * @param tokens  Q × D teacher tokens (for the region-pooled tokens u_l).
 * @param th, tw  teacher grid.
 * @param h, w    student grid.
 * @param Ks      number of seen classes.
 * @throws std::invalid_argument on mismatched sizes or labels < −1.
 */
template <real_scalar T>
image_targets<T> targets_from_fused(std::span<const std::int32_t> fused, matrix_ref<const T> tokens,
                                    index_t th, index_t tw, index_t h, index_t w, index_t Ks) {
  constexpr const char* where = "targets_from_fused";
  check_extent(where, "fused labels", fused.size(), "h_t * w_t", th * tw);
  check_extent(where, "teacher tokens", tokens.rows, "h_t * w_t", th * tw);
  for (auto l : fused)
    if (l < -1)  // the message is built only on failure
      throw std::invalid_argument(std::string(where) + ": label " + std::to_string(l) +
                                  " is below -1");
  const index_t D = tokens.cols;
  image_targets<T> t;
  t.grid_h = h, t.grid_w = w, t.seen_classes = Ks;
  t.teacher_map.assign(fused.begin(), fused.end());
  std::vector<std::int32_t> small(h * w);
  resize_nearest<std::int32_t>(std::span<std::int32_t>(small), h, w, fused, th, tw);
  // Present classes on the student grid; renumber the pseudo classes that survive.
  std::int32_t max_label = -1;
  for (auto l : fused) max_label = std::max(max_label, l);
  std::vector<char> present(index_t(std::max<std::int32_t>(max_label + 1, std::int32_t(Ks))), 0);
  for (auto l : small)
    if (l >= 0) present[index_t(l)] = 1;
  std::vector<std::int32_t> remap(present.size(), -1);  // old label → new class-set label
  for (index_t k = 0; k < Ks && k < present.size(); ++k)
    if (present[k]) remap[k] = std::int32_t(k), t.region_label.push_back(std::int32_t(k));
  for (index_t k = Ks; k < present.size(); ++k)
    if (present[k]) remap[k] = std::int32_t(Ks + t.pseudo_count++);
  for (index_t m = 0; m < t.pseudo_count; ++m) t.region_label.push_back(-1);
  t.labels.resize(h * w);
  for (index_t i = 0; i < h * w; ++i) t.labels[i] = small[i] < 0 ? -1 : remap[index_t(small[i])];
  // Region-pooled teacher tokens over the teacher-grid fused map (same remapping).
  const index_t L = t.regions();
  t.region_tokens = tensor<T, 2>::from_shape({L, D});
  t.region_tokens.fill(T(0));
  std::vector<index_t> count(L, 0);
  std::vector<double> mean(D, 0.0);
  for (index_t q = 0; q < th * tw; ++q) {
    for (index_t d = 0; d < D; ++d) mean[d] += double(tokens(q, d)) / double(th * tw);
    const auto l = fused[q];
    if (l < 0 || remap[index_t(l)] < 0) continue;
    const auto r = t.region_of(remap[index_t(l)]);
    ++count[index_t(r)];
    for (index_t d = 0; d < D; ++d) t.region_tokens(index_t(r), d) += tokens(q, d);
  }
  for (index_t r = 0; r < L; ++r)
    for (index_t d = 0; d < D; ++d)
      t.region_tokens(r, d) = count[r] ? t.region_tokens(r, d) / T(count[r]) : T(mean[d]);
  for (auto& l : t.teacher_map)
    if (l >= 0) l = remap[index_t(l)];
  return t;
}

/**
 * Seen-only targets (no PLM): token labels of the seen pixel labels on the student grid (a token
 * is ignored when ≥ `ignored_fraction` of its pixels are), no pseudo classes.
 * @param seen_pixels H × W labels: seen index in [0, Ks) or −1.
 */
template <real_scalar T>
image_targets<T> seen_targets(const tensor<std::int32_t, 2>& seen_pixels,
                              matrix_ref<const T> tokens, index_t th, index_t tw, index_t h,
                              index_t w, index_t Ks, double ignored_fraction = 0.5) {
  token_label_options tp;
  tp.ignore_value = -1;
  tp.ignored_fraction = ignored_fraction;
  tp.num_seen = std::int64_t(Ks);
  const auto fused = token_labels(seen_pixels, th, tw, tp);
  return targets_from_fused<T>(std::span<const std::int32_t>(fused.data(), fused.size()), tokens,
                               th, tw, h, w, Ks);
}

/// What `shift_modality_gap` measured and applied (for reports; all in double).
struct modality_gap_shift {
  index_t regions = 0;             ///< region tokens shifted (over all images)
  std::vector<double> token_mean;  ///< mean of the normalised region tokens, D
  std::vector<double> text_mean;   ///< mean of the normalised class embeddings, D
  double token_mean_norm = 0, text_mean_norm = 0;
  double cos_means = 0;  ///< cos(token mean, text mean); 0 when either is 0
};

/**
 * Moves the teacher's region tokens across the modality gap (Liang et al., "Mind the Gap",
 * NeurIPS 2022): every `u_l` of every image becomes `n(u_l) − μ_u + μ_t`, with `μ_u` the mean of
 * the normalised region tokens over all regions of `targets` and `μ_t` the mean of the normalised
 * rows of `text` (the seen classes' embeddings: what training may know). A contrastive model's
 * image and text embeddings sit in two cones with different centres; the student's features are
 * trained towards the text cone (the seen classes), so pseudo weights taken from the image cone
 * miss the component every text shares (docs/EXPERIMENTS.md, stop 13: mini-CLIP's token mean has
 * norm ≈ 0.2 and cosine ≈ 0.0–0.07 with the prompt mean of norm ≈ 0.6).
 *
 * A dataset-level step: run it once over all training targets (the means are sums in image and
 * region order, in double, so the result does not depend on threads). The shifted tokens are not
 * renormalised; every consumer normalises them (cosine logits; the synthesizer's n(u_l)).
 * @throws std::invalid_argument when a target's token width differs from `text.cols` or `text`
 *         has no rows.
 */
template <real_scalar T>
modality_gap_shift shift_modality_gap(std::span<image_targets<T>> targets,
                                      matrix_ref<const T> text) {
  constexpr const char* where = "shift_modality_gap";
  const index_t D = text.cols;
  require(text.rows > 0, std::string(where) + ": no class embeddings to take the text mean of");
  modality_gap_shift g;
  g.token_mean.assign(D, 0.0);
  g.text_mean.assign(D, 0.0);
  const auto unit = [D](const T* v, std::vector<double>& out) {
    double s = 0;
    for (index_t d = 0; d < D; ++d) s += double(v[d]) * double(v[d]);
    const double inv = 1 / std::max(std::sqrt(s), 1e-12);  // normalize_eps, in double
    for (index_t d = 0; d < D; ++d) out[d] = double(v[d]) * inv;
  };
  std::vector<double> u(D);
  for (index_t k = 0; k < text.rows; ++k) {
    unit(text.row(k), u);
    for (index_t d = 0; d < D; ++d) g.text_mean[d] += u[d];
  }
  for (auto& x : g.text_mean) x /= double(text.rows);
  for (const auto& t : targets) {
    if (t.regions() == 0) continue;
    check_extent(where, "region token width", t.region_tokens.shape()[1], "class embedding width",
                 D);
    for (index_t r = 0; r < t.regions(); ++r) {
      unit(&t.region_tokens(r, 0), u);
      for (index_t d = 0; d < D; ++d) g.token_mean[d] += u[d];
      ++g.regions;
    }
  }
  if (g.regions == 0) return g;
  for (auto& x : g.token_mean) x /= double(g.regions);
  double tt = 0, xx = 0, tx = 0;
  for (index_t d = 0; d < D; ++d)
    tt += g.token_mean[d] * g.token_mean[d], xx += g.text_mean[d] * g.text_mean[d],
        tx += g.token_mean[d] * g.text_mean[d];
  g.token_mean_norm = std::sqrt(tt), g.text_mean_norm = std::sqrt(xx);
  g.cos_means = tt > 0 && xx > 0 ? tx / (g.token_mean_norm * g.text_mean_norm) : 0.0;
  for (auto& t : targets)
    for (index_t r = 0; r < t.regions(); ++r) {
      unit(&t.region_tokens(r, 0), u);
      for (index_t d = 0; d < D; ++d)
        t.region_tokens(r, d) = T(u[d] - g.token_mean[d] + g.text_mean[d]);
    }
  return g;
}

}  // namespace zss
