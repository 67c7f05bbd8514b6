// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/eval/predict.hpp
 * Inference with the student alone (DESIGN.md §1, §2.5): cosine scores of the features against
 * any set of text embeddings, optional calibration, bilinear upsampling to image resolution,
 * argmax. No teacher, no extra module.
 *
 * Legend: B images, H × W pixels, h × w feature grid, P = h·w, D width, K classes scored.
 *
 *     score_bpk = ⟨n(r_bp), n(t_k)⟩ − γ·[k is seen]        (h × w, then bilinear to H × W)
 *     label_b(y, x) = class_ids[argmax_k score_b(y, x, k)]   (ties to the lower k)
 *
 * Calibration (GZSL practice): γ ≥ 0 subtracted from the seen classes' scores trades seen
 * accuracy for unseen recall; 0 disables it. Scores are upsampled before the argmax (as
 * segmentation heads do), not the labels.
 */
#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "zss/core/check.hpp"
#include "zss/core/eigen_map.hpp"
#include "zss/core/tensor.hpp"
#include "zss/nn/encoder.hpp"
#include "zss/nn/normalize.hpp"
#include "zss/nn/upsample.hpp"

namespace zss::eval {

/// Options of `predict`.
struct predict_options {
  double calibration = 0;  ///< γ subtracted from seen classes' cosine scores
  int threads = 0;         ///< 0 = OpenMP default
};

/// Reusable buffers of `predict` (no allocation per batch after the first).
template <real_scalar T>
struct predict_cache {
  encoder_cache<T> enc;
  tensor<T, 3> features;
  tensor<T, 4> scores, scores_up;
  aligned_vector<T> text_hat;
};

/**
 * Labels of a batch of images.
 * @param labels    B × H × W output (class ids from `class_ids`).
 * @param cache     reusable buffers.
 * @param images    B × H × W × C.
 * @param net       the trained student.
 * @param text      K × D text embeddings of the classes to score (e.g. all classes, seen + unseen).
 * @param class_ids K ids written for column k (e.g. the dataset's class ids).
 * @param seen      K flags: calibration applies to the seen ones (may be empty when γ = 0).
 * @throws std::invalid_argument on mismatched shapes or widths.
 */
template <real_scalar T>
void predict(tensor<std::int32_t, 3>& labels, predict_cache<T>& cache, const tensor<T, 4>& images,
             const encoder<T>& net, const tensor<T, 2>& text,
             std::span<const std::int32_t> class_ids, std::span<const bool> seen,
             const predict_options& p = {}) {
  constexpr const char* where = "eval::predict";
  const index_t B = images.shape()[0], H = images.shape()[1], W = images.shape()[2];
  const index_t K = text.shape()[0], D = text.shape()[1];
  require(K > 0, std::string(where) + ": no classes to score");
  check_extent(where, "text width", D, "encoder embed_dim", net.config.embed_dim);
  check_extent(where, "class ids", class_ids.size(), "rows of text", K);
  require(p.calibration == 0 || seen.size() == K,
          std::string(where) + ": calibration needs one seen flag per class");
  check_shape(where, "labels", labels, {B, H, W});
  const auto [h, w] = net.output_grid(H, W);
  const index_t P = h * w;
  const int threads = resolve_threads(p.threads);
  if (cache.features.shape() != std::array<std::size_t, 3>{B, P, D})
    cache.features = tensor<T, 3>::from_shape({B, P, D});
  encoder_forward(cache.features, cache.enc, images, net, threads);
  // Normalise rows and text, scores = n(R) n(T)ᵀ − γ·seen.
  cache.text_hat.resize(K * D);
  normalize_cache<T> tn, fn;
  normalize_rows_forward(matrix_ref<T>(cache.text_hat.data(), K, D), tn,
                         matrix_ref<const T>(text.data(), K, D), normalize_eps<T>, 1);
  const matrix_ref<T> F(cache.features.data(), B * P, D);
  normalize_rows_forward(F, fn, matrix_ref<const T>(F), normalize_eps<T>, threads);
  if (cache.scores.shape() != std::array<std::size_t, 4>{B, h, w, K})
    cache.scores = tensor<T, 4>::from_shape({B, h, w, K});
  if (cache.scores_up.shape() != std::array<std::size_t, 4>{B, H, W, K})
    cache.scores_up = tensor<T, 4>::from_shape({B, H, W, K});
  {
    eigen_single_thread_guard guard;
    const const_matrix_map<T> Th(cache.text_hat.data(), Eigen::Index(K), Eigen::Index(D),
                                 Eigen::OuterStride<>(D));
    parallel_for(B, threads, [&](index_t b, int) {
      const const_matrix_map<T> Fb(F.data + b * P * D, Eigen::Index(P), Eigen::Index(D),
                                   Eigen::OuterStride<>(D));
      matrix_map<T> Sb(cache.scores.data() + b * P * K, Eigen::Index(P), Eigen::Index(K),
                       Eigen::OuterStride<>(K));
      Sb.noalias() = Fb * Th.transpose();
      if (p.calibration != 0)
        for (index_t k = 0; k < K; ++k)
          if (seen[k]) Sb.col(Eigen::Index(k)).array() -= T(p.calibration);
    });
  }
  upsample_bilinear_forward(cache.scores_up, cache.scores, threads);
  parallel_for(B, threads, [&](index_t b, int) {
    const T* s = cache.scores_up.data() + b * H * W * K;
    std::int32_t* out = labels.data() + b * H * W;
    for (index_t i = 0; i < H * W; ++i) {
      const T* r = s + i * K;
      out[i] = class_ids[index_t(std::max_element(r, r + K) - r)];
    }
  });
}

}  // namespace zss::eval
