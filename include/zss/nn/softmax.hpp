// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/nn/softmax.hpp
 * Row softmax and log-sum-exp, numerically stable (max subtracted), with xsimd's `exp`.
 *
 * Legend: N rows, K columns (classes). Rows with −∞ entries are fine (exp → 0) as long as one
 * entry per row is finite. The vector `exp` is xsimd's (≤ 1–2 ulp from `std::exp`), so results
 * match the scalar references in `zss::ref` to a few ulps, not bitwise.
 */
#include <algorithm>
#include <cmath>
#include <limits>

#include "zss/core/check.hpp"
#include "zss/core/parallel.hpp"
#include "zss/core/simd.hpp"
#include "zss/core/tensor.hpp"

namespace zss {

namespace detail {
/// The last `n` < W values of a row as one batch, padded with −∞.
template <real_scalar T>
inline simd::batch<T> load_tail(const T* x, index_t n) noexcept {
  alignas(simd_alignment) T buf[simd::width<T>];
  std::fill_n(buf, simd::width<T>, -std::numeric_limits<T>::infinity());
  std::copy_n(x, n, buf);
  return simd::batch<T>::load_aligned(buf);
}
}  // namespace detail

/**
 * `y = softmax(x)` over `k` entries; returns `lse(x) = log Σ exp(x)`. `y` may equal `x`.
 */
template <real_scalar T>
inline T softmax_row(T* y, const T* x, index_t k) noexcept {
  using B = simd::batch<T>;
  constexpr index_t W = simd::width<T>;
  const T m = simd::max_value(x, k);
  const B vm(m);
  B acc(T(0));
  index_t j = 0;
  for (; j + W <= k; j += W) {
    const B e = xsimd::exp(B::load_unaligned(x + j) - vm);
    e.store_unaligned(y + j);
    acc += e;
  }
  if (j < k) {  // tail: one padded batch (exp(−∞) = 0) instead of scalar std::exp calls
    const B e = xsimd::exp(detail::load_tail(x + j, k - j) - vm);
    alignas(simd_alignment) T buf[W];
    e.store_aligned(buf);
    std::copy_n(buf, k - j, y + j);
    acc += e;
  }
  const T s = simd::reduce_add(acc);
  simd::scale(T(1) / s, y, k);
  return m + std::log(s);
}

/// `log Σ_j exp(x_j)` over `k` entries (`k` ≥ 1).
template <real_scalar T>
inline T logsumexp_row(const T* x, index_t k) noexcept {
  using B = simd::batch<T>;
  constexpr index_t W = simd::width<T>;
  const T m = simd::max_value(x, k);
  const B vm(m);
  B acc(T(0));
  index_t j = 0;
  for (; j + W <= k; j += W) acc += xsimd::exp(B::load_unaligned(x + j) - vm);
  if (j < k) acc += xsimd::exp(detail::load_tail(x + j, k - j) - vm);
  return m + std::log(simd::reduce_add(acc));
}

/**
 * Row softmax of an N × K matrix. `Y` may be the same memory as `X`.
 * @throws std::invalid_argument on mismatched shapes or K = 0.
 */
template <real_scalar T>
void softmax_rows(matrix_ref<T> Y, const_matrix_ref<T> X, int threads = 0) {
  check_shape("softmax_rows", "Y", Y, X.rows, X.cols);
  require(X.cols > 0, "softmax_rows: X has shape " + shape_string(X.shape()) + ", needs K >= 1");
  parallel_for(X.rows, threads, [&](index_t i, int) { softmax_row(Y.row(i), X.row(i), X.cols); });
}

/**
 * Row log-sum-exp of an N × K matrix into `out` (N values).
 * @throws std::invalid_argument when K = 0.
 */
template <real_scalar T>
void logsumexp_rows(T* out, const_matrix_ref<T> X, int threads = 0) {
  require(X.cols > 0, "logsumexp_rows: X has shape " + shape_string(X.shape()) + ", needs K >= 1");
  parallel_for(X.rows, threads, [&](index_t i, int) { out[i] = logsumexp_row(X.row(i), X.cols); });
}

namespace ref {
/// Plain-loop softmax (reference for tests); returns lse.
template <real_scalar T>
T softmax_row(T* y, const T* x, index_t k) {
  T m = x[0];
  for (index_t j = 1; j < k; ++j) m = std::max(m, x[j]);
  T s = 0;
  for (index_t j = 0; j < k; ++j) s += (y[j] = std::exp(x[j] - m));
  for (index_t j = 0; j < k; ++j) y[j] /= s;
  return m + std::log(s);
}
template <real_scalar T>
T logsumexp_row(const T* x, index_t k) {
  T m = x[0];
  for (index_t j = 1; j < k; ++j) m = std::max(m, x[j]);
  T s = 0;
  for (index_t j = 0; j < k; ++j) s += std::exp(x[j] - m);
  return m + std::log(s);
}
}  // namespace ref

}  // namespace zss
