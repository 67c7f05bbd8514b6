// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/loss/bce.hpp
 * Binary cross-entropy on logits, mean over elements, forward and backward (DESIGN.md §2.1).
 *
 * Legend: N rows, K columns; Z logits, Y targets in [0, 1] (soft targets allowed).
 *
 *     ℓ(z, y) = max(z, 0) − z·y + log(1 + exp(−|z|))     (= −y log σ(z) − (1−y) log(1−σ(z)))
 *     L = (1 / NK) Σ ℓ(z_ij, y_ij),    ∂L/∂z_ij = (σ(z_ij) − y_ij) / NK
 *
 * The stable form never evaluates exp of a positive number, so |z| = 1e30 gives a finite loss
 * and gradient (no overflow, no NaN). σ is evaluated as 1/(1+e^{−z}) for z ≥ 0 and
 * e^{z}/(1+e^{z}) otherwise. The loss is summed in double. No cache: the backward recomputes σ.
 */
#include <algorithm>
#include <cmath>
#include <string_view>

#include "zss/core/check.hpp"
#include "zss/core/tensor.hpp"

namespace zss {

/// ℓ(z, y) = max(z, 0) − z·y + log1p(exp(−|z|)), stable for every finite z.
template <real_scalar T>
inline T bce_with_logits(T z, T y) noexcept {
  return std::max(z, T(0)) - z * y + std::log1p(std::exp(-std::abs(z)));
}

/// σ(z), stable for every finite z.
template <real_scalar T>
inline T sigmoid(T z) noexcept {
  if (z >= T(0)) return T(1) / (T(1) + std::exp(-z));
  const T e = std::exp(z);
  return e / (T(1) + e);
}

namespace detail {
template <class T>
void check_bce(std::string_view where, matrix_ref<const T> Z, matrix_ref<const T> Y) {
  check_shape(where, "Y (targets)", Y, Z.rows, Z.cols);
}
}  // namespace detail

/**
 * Forward: `loss = mean_ij ℓ(Z_ij, Y_ij)`; 0 when Z is empty.
 * @param loss  output scalar.
 * @param Z     N × K logits.
 * @param Y     N × K targets in [0, 1].
 * @throws std::invalid_argument when the shapes disagree.
 */
template <real_scalar T>
void bce_with_logits_forward(T& loss, const_matrix_ref<T> Z, const_matrix_ref<T> Y) {
  detail::check_bce("bce_with_logits_forward", Z, Y);
  double s = 0;
  for (index_t i = 0; i < Z.rows; ++i)
    for (index_t j = 0; j < Z.cols; ++j) s += double(bce_with_logits(Z(i, j), Y(i, j)));
  const index_t count = Z.rows * Z.cols;
  loss = count == 0 ? T(0) : T(s / double(count));
}

/**
 * Backward (DESIGN §2.1): **adds** `dloss · (σ(Z) − Y) / NK` into `dZ`.
 * @param dZ    N × K gradient accumulator (adds into).
 * @param dloss upstream gradient of the scalar loss (1 for a top-level loss).
 * @param Z, Y  as in the forward.
 */
template <real_scalar T>
void bce_with_logits_backward(matrix_ref<T> dZ, T dloss, const_matrix_ref<T> Z,
                              const_matrix_ref<T> Y) {
  detail::check_bce("bce_with_logits_backward", Z, Y);
  check_shape("bce_with_logits_backward", "dZ", dZ, Z.rows, Z.cols);
  const index_t count = Z.rows * Z.cols;
  if (count == 0) return;
  const T g = dloss / T(count);
  for (index_t i = 0; i < Z.rows; ++i)
    for (index_t j = 0; j < Z.cols; ++j) dZ(i, j) += g * (sigmoid(Z(i, j)) - Y(i, j));
}

}  // namespace zss
