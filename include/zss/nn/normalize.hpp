// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/nn/normalize.hpp
 * Row L2 normalisation, forward and backward (DESIGN.md §2.1).
 *
 * Legend: N rows, D width. `y = n(x) = x / max(‖x‖₂, ε)` row-wise.
 *
 * Backward (DESIGN §2.1): `dx = (dy − y⟨y, dy⟩) / max(‖x‖, ε)` when ‖x‖ ≥ ε. When ‖x‖ < ε the
 * forward is the linear map `y = x/ε`, whose exact derivative is `dx = dy/ε`; zss uses that
 * (the DESIGN formula would add a spurious −y⟨y,dy⟩/ε term there). The cache records which rows
 * were clamped, so backward is the exact derivative of forward everywhere except on the
 * measure-zero sphere ‖x‖ = ε. A zero row gives y = 0 and a finite gradient dy/ε — never NaN.
 */
#include <algorithm>
#include <cmath>
#include <vector>

#include "zss/core/aligned.hpp"
#include "zss/core/check.hpp"
#include "zss/core/parallel.hpp"
#include "zss/core/simd.hpp"
#include "zss/core/tensor.hpp"

namespace zss {

/// Default ε of the normalisation (the same for float and double).
template <real_scalar T>
inline constexpr T normalize_eps = T(1e-12);

/// What `normalize_rows_backward` needs from the forward: per row `max(‖x‖, ε)` and the clamp flag.
template <real_scalar T>
struct normalize_cache {
  aligned_vector<T> norm;              ///< N: max(‖x_i‖, ε)
  std::vector<unsigned char> clamped;  ///< N: 1 when ‖x_i‖ < ε
};

/// Normalises one row: `y = x / max(‖x‖, ε)`; returns `max(‖x‖, ε)`. `y` may equal `x`.
template <real_scalar T>
inline T normalize_row(T* y, const T* x, index_t d, T eps = normalize_eps<T>) noexcept {
  const T norm = std::max(std::sqrt(simd::squared_norm(x, d)), eps);
  const T inv = T(1) / norm;
  if (y != x) std::copy_n(x, d, y);
  simd::scale(inv, y, d);
  return norm;
}

/**
 * Forward: `Y = n(X)` row-wise.
 * @param Y      N × D output (may be the same memory as X).
 * @param cache  filled with N norms and clamp flags (resized; reuse it to avoid allocation).
 * @param X      N × D input.
 * @param eps    ε > 0.
 * @param threads 0 = OpenMP default. Rows are independent: results do not depend on it.
 * @throws std::invalid_argument on mismatched shapes or ε ≤ 0.
 */
template <real_scalar T>
void normalize_rows_forward(matrix_ref<T> Y, normalize_cache<T>& cache, const_matrix_ref<T> X,
                            T eps = normalize_eps<T>, int threads = 0) {
  check_shape("normalize_rows_forward", "Y", Y, X.rows, X.cols);
  require(eps > T(0), "normalize_rows_forward: eps must be > 0, got " + std::to_string(eps));
  cache.norm.resize(X.rows);
  cache.clamped.resize(X.rows);
  parallel_for(X.rows, threads, [&](index_t i, int) {
    const T raw = std::sqrt(simd::squared_norm(X.row(i), X.cols));
    cache.clamped[i] = raw < eps;
    cache.norm[i] = normalize_row(Y.row(i), X.row(i), X.cols, eps);
  });
}

/**
 * Backward: **adds** `∂L/∂X` into `dX` given `dY = ∂L/∂Y` (DESIGN §2.1).
 * @param dX    N × D gradient accumulator (adds into).
 * @param dY    N × D upstream gradient.
 * @param cache from the forward that produced `Y`.
 * @param Y     N × D forward output.
 */
template <real_scalar T>
void normalize_rows_backward(matrix_ref<T> dX, const_matrix_ref<T> dY,
                             const normalize_cache<T>& cache, const_matrix_ref<T> Y,
                             int threads = 0) {
  check_shape("normalize_rows_backward", "dY", dY, Y.rows, Y.cols);
  check_shape("normalize_rows_backward", "dX", dX, Y.rows, Y.cols);
  check_extent("normalize_rows_backward", "cache rows", cache.norm.size(), "rows of Y", Y.rows);
  parallel_for(Y.rows, threads, [&](index_t i, int) {
    const T inv = T(1) / cache.norm[i];
    simd::axpy(inv, dY.row(i), dX.row(i), Y.cols);
    if (!cache.clamped[i]) {
      const T yd = simd::dot(Y.row(i), dY.row(i), Y.cols);
      simd::axpy(-yd * inv, Y.row(i), dX.row(i), Y.cols);
    }
  });
}

/// Convenience: returns `n(X)` for a rank-2 tensor (allocates; not for hot loops).
template <real_scalar T>
tensor<T, 2> normalize_rows(const tensor<T, 2>& X, T eps = normalize_eps<T>, int threads = 0) {
  tensor<T, 2> Y = tensor<T, 2>::from_shape(X.shape());
  normalize_cache<T> cache;
  normalize_rows_forward(as_matrix(Y), cache, as_matrix(X), eps, threads);
  return Y;
}

}  // namespace zss
