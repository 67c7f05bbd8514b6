// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/nn/linear.hpp
 * Fully connected layer `Y = X Wᵀ + b`, forward and backward (DESIGN.md §2.1, used by the
 * synthesizer of §2.4).
 *
 * Legend: N rows, I input width, O output width.
 *
 * Convention: `W` is O × I (one row per output feature), PyTorch's `nn.Linear` layout, so a
 * `state_dict` weight loads without a transpose. Both products run through `Eigen::Map` on the
 * caller's memory (no copies), split into fixed 64-column panels
 * (`zss/nn/detail/panel_gemm.hpp`): results are bitwise identical for every `threads` as long as
 * Eigen itself is single-threaded (`zss::eigen_single_thread_guard`).
 *
 * Backward: `dX += dY W`, `dW += dYᵀ X`, `db += Σ_rows dY`. No cache: backward needs only `X`.
 */
#include "zss/core/check.hpp"
#include "zss/core/eigen_map.hpp"
#include "zss/core/simd.hpp"
#include "zss/core/tensor.hpp"
#include "zss/nn/detail/panel_gemm.hpp"

namespace zss {

/// Read-only views of a linear layer's parameters.
template <real_scalar T>
struct linear_params {
  matrix_ref<const T> W;  ///< O × I
  const T* b = nullptr;   ///< O values, or nullptr for no bias
};

/// Gradient accumulators of a linear layer; a null `dW.data` / `db` skips that gradient.
template <real_scalar T>
struct linear_grads {
  matrix_ref<T> dW;  ///< O × I (adds into)
  T* db = nullptr;   ///< O values (adds into)
};

/**
 * Forward: `Y = X Wᵀ + b`.
 * @param Y       N × O output (overwritten; must not alias X).
 * @param X       N × I input.
 * @param params  W (O × I), b (O or nullptr).
 * @param threads 0 = OpenMP default; results do not depend on it (see file comment).
 * @throws std::invalid_argument when the shapes disagree.
 */
template <real_scalar T>
void linear_forward(matrix_ref<T> Y, const_matrix_ref<T> X, const linear_params<T>& params,
                    int threads = 0) {
  const auto& W = params.W;
  require(W.data != nullptr || W.rows * W.cols == 0, "linear_forward: W has no data");
  check_extent("linear_forward", "columns of X", X.cols, "columns of W " + shape_string(W.shape()),
               W.cols);
  check_shape("linear_forward", "Y", Y, X.rows, W.rows);
  detail::panel_gemm(eigen_map(Y), eigen_map(X), eigen_map(W).transpose(), false, threads);
  if (params.b)
    for (index_t i = 0; i < Y.rows; ++i) simd::axpy(T(1), params.b, Y.row(i), Y.cols);
}

/**
 * Backward (DESIGN §2.1): **adds** `dY W` into `dX`, `dYᵀ X` into `dW` and the column sums of
 * `dY` into `db`.
 * @param dX     N × I input gradient (adds into), or a view with null data to skip it.
 * @param grads  dW (O × I, adds into; null data skips), db (O, adds into; nullptr skips).
 * @param dY     N × O upstream gradient.
 * @param X      N × I forward input.
 * @param params the forward's parameters.
 * @throws std::invalid_argument when the shapes disagree.
 */
template <real_scalar T>
void linear_backward(matrix_ref<T> dX, const linear_grads<T>& grads, const_matrix_ref<T> dY,
                     const_matrix_ref<T> X, const linear_params<T>& params, int threads = 0) {
  const auto& W = params.W;
  check_extent("linear_backward", "columns of X", X.cols, "columns of W " + shape_string(W.shape()),
               W.cols);
  check_shape("linear_backward", "dY", dY, X.rows, W.rows);
  if (dX.data) {
    check_shape("linear_backward", "dX", dX, X.rows, X.cols);
    detail::panel_gemm(eigen_map(dX), eigen_map(dY), eigen_map(W), true, threads);
  }
  if (grads.dW.data) {
    check_shape("linear_backward", "dW", grads.dW, W.rows, W.cols);
    // dWᵀ += Xᵀ dY: panels over the columns of dWᵀ, i.e. over output features.
    detail::panel_gemm(eigen_map(grads.dW).transpose(), eigen_map(X).transpose(), eigen_map(dY),
                       true, threads);
  }
  if (grads.db)
    for (index_t i = 0; i < dY.rows; ++i) simd::axpy(T(1), dY.row(i), grads.db, dY.cols);
}

}  // namespace zss
