// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/nn/layer_norm.hpp
 * Layer normalisation over the feature axis with an affine map, forward and backward
 * (DESIGN.md §2.1, used by the synthesizer of §2.4).
 *
 * Legend: N rows, D width.
 *
 *     μ_i = mean_j x_ij,  σ²_i = mean_j (x_ij − μ_i)²  (biased, as PyTorch),
 *     x̂_ij = (x_ij − μ_i) / sqrt(σ²_i + ε),  y_ij = γ_j x̂_ij + β_j.
 *
 * Backward: with `g = dy ⊙ γ`, `dx = rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂))`,
 * `dγ += Σ_i dy ⊙ x̂`, `dβ += Σ_i dy`. The cache keeps μ and rstd = 1/sqrt(σ² + ε) per row
 * (llm.c); x̂ is recomputed in backward. Rows are independent (threads never change a value);
 * dγ and dβ are summed over rows in row order on the calling thread.
 * A constant row has σ² = 0: x̂ = 0, y = β, and a finite gradient (ε > 0 is required).
 */
#include <cmath>
#include <string>

#include "zss/core/aligned.hpp"
#include "zss/core/check.hpp"
#include "zss/core/parallel.hpp"
#include "zss/core/tensor.hpp"

namespace zss {

/// Default ε of the layer norm (PyTorch's).
template <real_scalar T>
inline constexpr T layer_norm_eps = T(1e-5);

/// Read-only views of the affine parameters.
template <real_scalar T>
struct layer_norm_params {
  const T* gamma = nullptr;  ///< D scales γ
  const T* beta = nullptr;   ///< D shifts β
};

/// Gradient accumulators of γ and β (adds into; nullptr skips).
template <real_scalar T>
struct layer_norm_grads {
  T* dgamma = nullptr;  ///< D
  T* dbeta = nullptr;   ///< D
};

/// What the backward needs from the forward.
template <real_scalar T>
struct layer_norm_cache {
  aligned_vector<T> mean;  ///< N row means μ
  aligned_vector<T> rstd;  ///< N values 1/sqrt(σ² + ε)
};

/**
 * Forward: `Y = γ ⊙ x̂ + β` row-wise.
 * @param Y      N × D output (may be the same memory as X).
 * @param cache  filled with N means and reciprocal standard deviations (resized).
 * @param X      N × D input.
 * @param params γ, β (D each, both required).
 * @param eps    ε > 0 added to the variance.
 * @throws std::invalid_argument on mismatched shapes, missing γ/β or ε ≤ 0.
 */
template <real_scalar T>
void layer_norm_forward(matrix_ref<T> Y, layer_norm_cache<T>& cache, const_matrix_ref<T> X,
                        const layer_norm_params<T>& params, T eps = layer_norm_eps<T>,
                        int threads = 0) {
  check_shape("layer_norm_forward", "Y", Y, X.rows, X.cols);
  require(params.gamma != nullptr && params.beta != nullptr,
          "layer_norm_forward: gamma and beta are required");
  require(eps > T(0), "layer_norm_forward: eps must be > 0, got " + std::to_string(eps));
  require(X.cols > 0 || X.rows == 0,
          "layer_norm_forward: X has shape " + shape_string(X.shape()) + ", needs D >= 1");
  cache.mean.resize(X.rows);
  cache.rstd.resize(X.rows);
  const index_t d = X.cols;
  const T* g = params.gamma;
  const T* b = params.beta;
  parallel_for(X.rows, threads, [&](index_t i, int) {
    const T* x = X.row(i);
    T* y = Y.row(i);
    T s = 0;
    for (index_t j = 0; j < d; ++j) s += x[j];
    const T mu = s / T(d);
    T v = 0;
    for (index_t j = 0; j < d; ++j) v += (x[j] - mu) * (x[j] - mu);
    const T rstd = T(1) / std::sqrt(v / T(d) + eps);
    cache.mean[i] = mu;
    cache.rstd[i] = rstd;
    for (index_t j = 0; j < d; ++j) y[j] = g[j] * ((x[j] - mu) * rstd) + b[j];
  });
}

/**
 * Backward (DESIGN §2.1): **adds** `∂L/∂X` into `dX`, `∂L/∂γ` into `dgamma`, `∂L/∂β` into `dbeta`.
 * @param dX     N × D (adds into), or null data to skip.
 * @param grads  dγ, dβ (D each, adds into; nullptr skips).
 * @param dY     N × D upstream gradient.
 * @param cache  from the forward.
 * @param X      N × D forward input.
 * @param params the forward's γ, β.
 */
template <real_scalar T>
void layer_norm_backward(matrix_ref<T> dX, const layer_norm_grads<T>& grads, const_matrix_ref<T> dY,
                         const layer_norm_cache<T>& cache, const_matrix_ref<T> X,
                         const layer_norm_params<T>& params, int threads = 0) {
  check_shape("layer_norm_backward", "dY", dY, X.rows, X.cols);
  check_extent("layer_norm_backward", "cache rows", cache.rstd.size(), "rows of X", X.rows);
  const index_t d = X.cols;
  const T* g = params.gamma;
  if (dX.data) {
    check_shape("layer_norm_backward", "dX", dX, X.rows, X.cols);
    parallel_for(X.rows, threads, [&](index_t i, int) {
      const T* x = X.row(i);
      const T* dy = dY.row(i);
      T* dx = dX.row(i);
      const T mu = cache.mean[i], rstd = cache.rstd[i];
      T sum_g = 0, sum_gx = 0;
      for (index_t j = 0; j < d; ++j) {
        const T gj = dy[j] * g[j];
        sum_g += gj;
        sum_gx += gj * ((x[j] - mu) * rstd);
      }
      const T mean_g = sum_g / T(d), mean_gx = sum_gx / T(d);
      for (index_t j = 0; j < d; ++j) {
        const T xhat = (x[j] - mu) * rstd;
        dx[j] += rstd * (dy[j] * g[j] - mean_g - xhat * mean_gx);
      }
    });
  }
  for (index_t i = 0; i < X.rows; ++i) {
    const T* x = X.row(i);
    const T* dy = dY.row(i);
    const T mu = cache.mean[i], rstd = cache.rstd[i];
    if (grads.dgamma)
      for (index_t j = 0; j < d; ++j) grads.dgamma[j] += dy[j] * ((x[j] - mu) * rstd);
    if (grads.dbeta)
      for (index_t j = 0; j < d; ++j) grads.dbeta[j] += dy[j];
  }
}

}  // namespace zss
