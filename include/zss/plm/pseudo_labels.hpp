// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/plm/pseudo_labels.hpp
 * The PLM pseudo labels of a batch of images: DESIGN.md §2.3 steps 1–5 end to end.
 *
 * Legend: B images, h × w token grid (Q = h·w), D width, H × W pixel-label grid,
 * H' × W' output grid, C_seen seen classes, M_b pseudo classes of image b.
 *
 * Per image b:
 *  1. tokens Z_b (Q × D) are L2-normalised (unless `normalize_tokens` is off: then the caller
 *     guarantees it) and, when `check_finite`, checked once;
 *  2. pixel labels (H × W, −1 or 255 ignored) → token labels on h × w (`token_labels`);
 *  3. multi-scale K-Means with window seeds (`multiscale_kmeans`, one scale after another on
 *     this thread; k-means++ streams use the image index b);
 *  4. mask fusion and fusion with the seen labels (`fuse_masks`);
 *  5. the fused token map resized to H' × W' by nearest neighbour (`resize_nearest`).
 * Images run in parallel, one image per thread (`parallel_for`, static split). Every image's
 * result depends only on its own data, its index and the params, so results are bitwise
 * identical for every thread count.
 */
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "zss/cluster/clustering.hpp"
#include "zss/cluster/mask_fusion.hpp"
#include "zss/cluster/multiscale_kmeans.hpp"
#include "zss/core/check.hpp"
#include "zss/core/parallel.hpp"
#include "zss/core/tensor.hpp"
#include "zss/plm/token_labels.hpp"

namespace zss {

/// Options of the pseudo-label pipeline (defaults: DESIGN §2.3, a 16 × 16 token grid).
struct pseudo_label_options {
  multiscale_options kmeans;   ///< scales (windows {2, 4} by default; {4, 8, 16} for 32 × 32),
                               ///< max_iter 10, …; its `threads` and `check_finite` are ignored
  mask_fusion_options fusion;  ///< λ = 0.9, min_tokens = 2; its `check_finite` is ignored
  token_label_options
      token;  ///< ignored pixels (−1, 255), the 50 % rule; its `num_seen` is set from the call
  index_t out_h = 0;             ///< H' of the output label maps (0 = the token grid's h)
  index_t out_w = 0;             ///< W' (0 = w)
  bool normalize_tokens = true;  ///< L2-normalise the tokens first (DESIGN: Z_b is normalised)
  bool check_finite = true;      ///< throw on a non-finite token (one pass per image)
  bool keep_details =
      false;        ///< keep the per-scale clusterings and the fusion record in the result
  int threads = 0;  ///< threads over images (0 = OpenMP default)
};

/**
 * The pseudo labels of one image.
 * @tparam T float or double.
 */
template <real_scalar T>
struct pseudo_label_result {
  tensor<std::int32_t, 2> token_labels;  ///< h × w: seen label or −1 (step 2)
  tensor<std::int32_t, 2> fused_tokens;  ///< h × w: fused label map on the token grid (step 4)
  tensor<std::int32_t, 2>
      labels;  ///< H' × W': the fused map resized (step 5): seen c, C_seen + m, or −1
  index_t num_pseudo = 0;                   ///< M_b
  std::vector<scale_clustering<T>> scales;  ///< with `keep_details`: the clusterings fused
  mask_fusion_result<T> fusion;             ///< with `keep_details`: masks, partition, centroids
};

namespace detail {

inline void check_pseudo_params(const pseudo_label_options& p, std::int64_t num_seen) {
  require(num_seen >= 0, "pseudo_labels: num_seen must be >= 0, got " + std::to_string(num_seen));
  require((p.out_h == 0) == (p.out_w == 0),
          "pseudo_labels: out_h and out_w must both be 0 or both > 0 (got " +
              std::to_string(p.out_h) + " x " + std::to_string(p.out_w) + ")");
  detail::check_multiscale(p.kmeans);
}

/// One image; `z` is a Q × D scratch buffer (the tokens, normalised in place when asked).
template <real_scalar T, std::integral L>
pseudo_label_result<T> pseudo_labels_one(const T* tokens, index_t h, index_t w, index_t d,
                                         const L* pixels, index_t H, index_t W,
                                         std::int64_t num_seen, const pseudo_label_options& p,
                                         std::uint64_t image, std::vector<T>& z,
                                         std::span<std::int32_t> labels_out = {}) {
  const index_t Q = h * w;
  if (p.check_finite) check_finite("pseudo_labels", "tokens", tokens, Q * d);
  const T* data = tokens;
  if (p.normalize_tokens) {
    z.assign(tokens, tokens + Q * d);
    for (index_t q = 0; q < Q; ++q) {
      T* row = z.data() + q * d;
      double s = 0;
      for (index_t c = 0; c < d; ++c) s += double(row[c]) * double(row[c]);
      const double n = std::sqrt(s);
      // A zero token stays zero (it cannot be normalised; K-Means and fusion cope with it).
      if (n > 0)
        for (index_t c = 0; c < d; ++c) row[c] = static_cast<T>(double(row[c]) / n);
    }
    data = z.data();
  }
  const matrix_ref<const T> Z(data, Q, d);

  pseudo_label_result<T> r;
  token_label_options tp = p.token;
  tp.num_seen = num_seen > 0 ? num_seen : tp.num_seen;  // 0: fuse_masks rejects any seen label
  r.token_labels = tensor<std::int32_t, 2>::from_shape({h, w});
  token_labels<L>(std::span<std::int32_t>(r.token_labels.data(), Q), pixels, H, W, h, w, tp);

  multiscale_options mp = p.kmeans;
  mp.threads = 1;
  mp.check_finite = false;
  auto scales = multiscale_kmeans<T>(Z, h, w, mp, image);

  mask_fusion_options fp = p.fusion;
  fp.check_finite = false;
  auto fusion = fuse_masks<T>(Z, std::span<const std::int32_t>(r.token_labels.data(), Q),
                              std::span<const scale_clustering<T>>(scales), num_seen, fp);
  r.num_pseudo = fusion.num_pseudo;
  r.fused_tokens = tensor<std::int32_t, 2>::from_shape({h, w});
  std::copy(fusion.labels.begin(), fusion.labels.end(), r.fused_tokens.data());
  const index_t Ho = p.out_h ? p.out_h : h, Wo = p.out_w ? p.out_w : w;
  if (labels_out.empty())
    r.labels = resize_nearest(r.fused_tokens, Ho, Wo);
  else
    resize_nearest<std::int32_t>(labels_out, Ho, Wo,
                                 std::span<const std::int32_t>(r.fused_tokens.data(), Q), h, w);
  if (p.keep_details) {
    r.scales = std::move(scales);
    r.fusion = std::move(fusion);
  }
  return r;
}

}  // namespace detail

/**
 * Pseudo labels of one image (steps 1–5).
 * @param tokens   h × w × D teacher tokens.
 * @param pixels   H × W pixel labels (any resolution): seen class in [0, num_seen), −1 or 255
 * ignored.
 * @param num_seen C_seen; pseudo classes are C_seen + m.
 * @param p        options (`p.threads` unused: one image runs on the calling thread).
 * @param image    the image's index (k-means++ stream), so a single call reproduces image b of a
 * batch.
 * @throws std::invalid_argument on empty or non-finite tokens, bad labels, bad params.
 */
template <real_scalar T, std::integral L>
pseudo_label_result<T> pseudo_labels(const tensor<T, 3>& tokens, const tensor<L, 2>& pixels,
                                     std::int64_t num_seen, const pseudo_label_options& p = {},
                                     std::uint64_t image = 0) {
  detail::check_pseudo_params(p, num_seen);
  const index_t h = tokens.shape()[0], w = tokens.shape()[1], d = tokens.shape()[2];
  require(h > 0 && w > 0 && d > 0,
          "pseudo_labels: tokens are empty " + shape_string(tokens.shape()));
  std::vector<T> z;
  return detail::pseudo_labels_one<T, L>(tokens.data(), h, w, d, pixels.data(), pixels.shape()[0],
                                         pixels.shape()[1], num_seen, p, image, z);
}

/**
 * Pseudo labels of a batch held in caller memory (row-major, contiguous), one image per thread;
 * result b equals `pseudo_labels(tokens[b], pixels[b], num_seen, p, b)` bitwise, for every
 * thread count. What a caller that owns the memory hands over without a copy (the Python
 * binding, an MPI receive buffer).
 * @param tokens     B·h·w·D teacher tokens (B × h × w × D).
 * @param pixels     B·H·W pixel labels (B × H × W).
 * @param labels_out empty, or B·H'·W' entries (H' × W' = `p.out_h × p.out_w`, or h × w when
 *                   those are 0): the output label maps are written there and each result's
 *                   `labels` stays empty (no per-image allocation, no stacking copy).
 * @throws std::invalid_argument on an empty grid, a `labels_out` of the wrong size, or for the
 *         first failing image (its index in the message).
 */
template <real_scalar T, std::integral L>
std::vector<pseudo_label_result<T>> pseudo_labels_batch(const T* tokens, index_t B, index_t h,
                                                        index_t w, index_t d, const L* pixels,
                                                        index_t H, index_t W, std::int64_t num_seen,
                                                        const pseudo_label_options& p = {},
                                                        std::span<std::int32_t> labels_out = {}) {
  detail::check_pseudo_params(p, num_seen);
  require(h > 0 && w > 0 && d > 0,
          "pseudo_labels_batch: tokens are empty " + shape_string({B, h, w, d}));
  const index_t Ho = p.out_h ? p.out_h : h, Wo = p.out_w ? p.out_w : w;
  if (!labels_out.empty())
    check_extent("pseudo_labels_batch", "labels_out size", labels_out.size(), "B * H' * W'",
                 B * Ho * Wo);
  std::vector<pseudo_label_result<T>> out(B);
  const int threads = resolve_threads(p.threads);
  std::vector<std::vector<T>> scratch(static_cast<std::size_t>(threads));
  parallel_for(B, threads, [&](index_t b, int t) {
    try {
      out[b] = detail::pseudo_labels_one<T, L>(
          tokens + b * h * w * d, h, w, d, pixels + b * H * W, H, W, num_seen, p, b,
          scratch[static_cast<std::size_t>(t)],
          labels_out.empty() ? labels_out : labels_out.subspan(b * Ho * Wo, Ho * Wo));
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("pseudo_labels_batch: image " + std::to_string(b) + ": " +
                                  e.what());
    }
  });
  return out;
}

/**
 * Pseudo labels of a batch, one image per thread; result b equals `pseudo_labels(tokens[b],
 * pixels[b], num_seen, p, b)` bitwise, for every thread count.
 * @param tokens   B × h × w × D teacher tokens.
 * @param pixels   B × H × W pixel labels.
 * @throws std::invalid_argument when B differs, or for the first failing image (its index in the
 *         message).
 */
template <real_scalar T, std::integral L>
std::vector<pseudo_label_result<T>> pseudo_labels_batch(const tensor<T, 4>& tokens,
                                                        const tensor<L, 3>& pixels,
                                                        std::int64_t num_seen,
                                                        const pseudo_label_options& p = {}) {
  check_extent("pseudo_labels_batch", "pixel label maps", pixels.shape()[0], "token images",
               tokens.shape()[0]);
  return pseudo_labels_batch<T, L>(tokens.data(), tokens.shape()[0], tokens.shape()[1],
                                   tokens.shape()[2], tokens.shape()[3], pixels.data(),
                                   pixels.shape()[1], pixels.shape()[2], num_seen, p);
}

/// The output label maps of a batch as one B × H' × W' tensor.
template <real_scalar T>
tensor<std::int32_t, 3> stack_labels(const std::vector<pseudo_label_result<T>>& results) {
  if (results.empty()) return tensor<std::int32_t, 3>::from_shape({0, 0, 0});
  const index_t Ho = results[0].labels.shape()[0], Wo = results[0].labels.shape()[1];
  tensor<std::int32_t, 3> out = tensor<std::int32_t, 3>::from_shape({results.size(), Ho, Wo});
  for (index_t b = 0; b < results.size(); ++b)
    std::copy(results[b].labels.begin(), results[b].labels.end(), out.data() + b * Ho * Wo);
  return out;
}

}  // namespace zss
