// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/clip/contrastive_loss.hpp
 * CLIP's symmetric InfoNCE with a learnable, log-parametrised temperature and optional queues
 * of negatives, forward and backward (DESIGN.md §4, the learned teacher).
 *
 * Legend: B image–text pairs, D width, Mt queued text embeddings, Mi queued image embeddings.
 * Inputs are unit rows (the encoders normalise); `θ` is the log of the logit scale `s = e^θ`
 * (CLIP: θ₀ = ln(1/0.07); the clamp at ln 100 is applied to θ after each optimiser step, as
 * CLIP's training code does, so the loss itself is smooth in θ).
 *
 *     z_ij  = s ⟨I_i, T_j⟩           j ∈ batch, then s ⟨I_i, Qt_m⟩ for the text queue
 *     z'_ji = s ⟨T_j, I_i⟩           i ∈ batch, then s ⟨T_j, Qi_m⟩ for the image queue
 *     L = ( Σ_i [lse(z_i) − z_ii] + Σ_j [lse(z'_j) − z'_jj] ) / (2B)
 *
 * Backward (adds into every gradient), with p = softmax(z), p' = softmax(z'):
 *     dz_ij = (p_ij − [i = j]) / (2B),   dz'_ji likewise,
 *     dI_i += s (Σ_j dz_ij T_j + Σ_m dz_im Qt_m) + s Σ_j dz'_ji T_j,
 *     dT_j += s Σ_i dz_ij I_i + s (Σ_i dz'_ji I_i + Σ_m dz'_jm Qi_m),
 *     dθ   += Σ dz·z + Σ dz'·z'      (∂s/∂θ = s).
 * Queued rows are constants (no gradient), MoCo-style. The sizes are tiny (B ≤ a few hundred):
 * plain loops on one thread, deterministic.
 */
#include <cmath>
#include <string>

#include "zss/core/aligned.hpp"
#include "zss/core/check.hpp"
#include "zss/core/simd.hpp"
#include "zss/core/tensor.hpp"
#include "zss/nn/softmax.hpp"

namespace zss::clip {

/// What the backward needs (the probabilities and logits of both directions) and statistics.
template <real_scalar T>
struct contrastive_cache {
  aligned_vector<T> z_it, p_it;  ///< B × (B + Mt) logits and probabilities, image → text
  aligned_vector<T> z_ti, p_ti;  ///< B × (B + Mi), text → image
  index_t batch = 0, text_queue = 0, image_queue = 0;
  double accuracy_it = 0, accuracy_ti = 0;  ///< top-1 of the matching pair, in [0, 1]
};

namespace detail {
template <real_scalar T>
void contrastive_check(std::string_view where, const_matrix_ref<T> I, const_matrix_ref<T> Tx,
                       const_matrix_ref<T> Qt, const_matrix_ref<T> Qi) {
  require(I.rows > 0, std::string(where) + ": no pairs");
  check_shape(where, "text embeddings", Tx, I.rows, I.cols);
  if (Qt.rows > 0) check_extent(where, "width of the text queue", Qt.cols, "D", I.cols);
  if (Qi.rows > 0) check_extent(where, "width of the image queue", Qi.cols, "D", I.cols);
}

/// Logits of `A` (n × D) against `[Bm ; Qm]`, softmax, the loss of the diagonal; returns the
/// summed loss and the number of rows whose diagonal wins.
template <real_scalar T>
std::pair<double, index_t> contrastive_direction(T* z, T* p, const_matrix_ref<T> A,
                                                 const_matrix_ref<T> Bm, const_matrix_ref<T> Qm,
                                                 T s) {
  const index_t n = A.rows, m = Bm.rows + Qm.rows, D = A.cols;
  double sum = 0;
  index_t hits = 0;
  for (index_t i = 0; i < n; ++i) {
    T* zi = z + i * m;
    for (index_t j = 0; j < Bm.rows; ++j) zi[j] = s * simd::dot(A.row(i), Bm.row(j), D);
    for (index_t j = 0; j < Qm.rows; ++j) zi[Bm.rows + j] = s * simd::dot(A.row(i), Qm.row(j), D);
    index_t best = 0;
    for (index_t j = 1; j < m; ++j)
      if (zi[j] > zi[best]) best = j;
    hits += best == i;
    const T lse = softmax_row(p + i * m, zi, m);
    sum += double(lse) - double(zi[i]);
  }
  return {sum, hits};
}

template <real_scalar T>
void contrastive_direction_backward(matrix_ref<T> dA, matrix_ref<T> dB, T& dtheta, const T* z,
                                    const T* p, const_matrix_ref<T> A, const_matrix_ref<T> Bm,
                                    const_matrix_ref<T> Qm, T s, T c) {
  const index_t n = A.rows, m = Bm.rows + Qm.rows, D = A.cols;
  for (index_t i = 0; i < n; ++i)
    for (index_t j = 0; j < m; ++j) {
      const T dz = c * (p[i * m + j] - (i == j ? T(1) : T(0)));
      dtheta += dz * z[i * m + j];
      const T g = s * dz;
      if (j < Bm.rows) {
        simd::axpy(g, Bm.row(j), dA.row(i), D);
        simd::axpy(g, A.row(i), dB.row(j), D);
      } else {
        simd::axpy(g, Qm.row(j - Bm.rows), dA.row(i), D);
      }
    }
}
}  // namespace detail

/**
 * Forward (see the file comment).
 * @param loss   the symmetric InfoNCE.
 * @param cache  logits and probabilities for backward; top-1 accuracies.
 * @param I      B × D image embeddings (unit rows).
 * @param Tx     B × D text embeddings (unit rows), pair i = (I_i, Tx_i).
 * @param theta  log logit scale θ.
 * @param Qt     Mt × D queued text embeddings (extra negatives of image → text), may be empty.
 * @param Qi     Mi × D queued image embeddings (extra negatives of text → image), may be empty.
 * @throws std::invalid_argument on mismatched shapes or an empty batch.
 */
template <real_scalar T>
void contrastive_forward(T& loss, contrastive_cache<T>& cache, const_matrix_ref<T> I,
                         const_matrix_ref<T> Tx, T theta, const_matrix_ref<T> Qt = {},
                         const_matrix_ref<T> Qi = {}) {
  detail::contrastive_check<T>("clip::contrastive_forward", I, Tx, Qt, Qi);
  const index_t B = I.rows;
  cache.batch = B, cache.text_queue = Qt.rows, cache.image_queue = Qi.rows;
  cache.z_it.resize(B * (B + Qt.rows));
  cache.p_it.resize(B * (B + Qt.rows));
  cache.z_ti.resize(B * (B + Qi.rows));
  cache.p_ti.resize(B * (B + Qi.rows));
  const T s = std::exp(theta);
  const auto [l1, h1] =
      detail::contrastive_direction(cache.z_it.data(), cache.p_it.data(), I, Tx, Qt, s);
  const auto [l2, h2] =
      detail::contrastive_direction(cache.z_ti.data(), cache.p_ti.data(), Tx, I, Qi, s);
  cache.accuracy_it = double(h1) / double(B);
  cache.accuracy_ti = double(h2) / double(B);
  loss = T((l1 + l2) / (2.0 * double(B)));
}

/**
 * Backward: **adds** `dloss·∂L/∂I` into `dI`, `dloss·∂L/∂Tx` into `dT` and `dloss·∂L/∂θ` into
 * `dtheta` (see the file comment; the queues receive nothing).
 */
template <real_scalar T>
void contrastive_backward(matrix_ref<T> dI, matrix_ref<T> dT, T& dtheta, T dloss,
                          const contrastive_cache<T>& cache, const_matrix_ref<T> I,
                          const_matrix_ref<T> Tx, T theta, const_matrix_ref<T> Qt = {},
                          const_matrix_ref<T> Qi = {}) {
  constexpr const char* where = "clip::contrastive_backward";
  detail::contrastive_check<T>(where, I, Tx, Qt, Qi);
  const index_t B = I.rows;
  check_extent(where, "cached pairs", cache.batch, "pairs", B);
  check_extent(where, "cached text queue", cache.text_queue, "rows of Qt", Qt.rows);
  check_extent(where, "cached image queue", cache.image_queue, "rows of Qi", Qi.rows);
  check_shape(where, "dI", dI, B, I.cols);
  check_shape(where, "dT", dT, B, I.cols);
  const T s = std::exp(theta), c = dloss / T(2 * B);
  detail::contrastive_direction_backward(dI, dT, dtheta, cache.z_it.data(), cache.p_it.data(), I,
                                         Tx, Qt, s, c);
  detail::contrastive_direction_backward(dT, dI, dtheta, cache.z_ti.data(), cache.p_ti.data(), Tx,
                                         I, Qi, s, c);
}

}  // namespace zss::clip
