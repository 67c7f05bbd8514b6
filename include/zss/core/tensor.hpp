// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/core/tensor.hpp
 * Tensor aliases over xtensor and non-owning views over caller memory.
 *
 * The public API takes and returns `xt::xtensor<T, N>` (row-major). Kernels work on raw pointers
 * through `matrix_ref<T>` — a pointer, two extents and a row stride — which is what a Python
 * binding (a NumPy buffer) or an MPI receive buffer hands over without a copy.
 */
#include <array>
#include <cstddef>
#include <type_traits>

#include <xtensor/xadapt.hpp>
#include <xtensor/xtensor.hpp>

#include "zss/core/aligned.hpp"
#include "zss/core/check.hpp"
#include "zss/core/config.hpp"

namespace zss {

/// Row-major owning tensor of rank `N` (the API type).
template <class T, std::size_t N>
using tensor = xt::xtensor<T, N, xt::layout_type::row_major>;

/// Row-major owning tensor of rank `N` whose storage is 64-byte aligned.
template <class T, std::size_t N>
using aligned_tensor =
    xt::xtensor_container<xt::uvector<T, xsimd::aligned_allocator<T, simd_alignment>>, N,
                          xt::layout_type::row_major>;

/**
 * A non-owning row-major matrix view: `rows × cols` elements, row `i` at `data + i * stride`.
 * `T` may be const-qualified. Cheap to copy; the caller keeps the memory alive.
 */
template <class T>
struct matrix_ref {
  T* data = nullptr;
  index_t rows = 0;
  index_t cols = 0;
  index_t stride = 0;  ///< elements between row starts (≥ cols)

  matrix_ref() = default;
  matrix_ref(T* d, index_t r, index_t c) : data(d), rows(r), cols(c), stride(c) {}
  matrix_ref(T* d, index_t r, index_t c, index_t s) : data(d), rows(r), cols(c), stride(s) {}
  /// A mutable view converts to a const view.
  operator matrix_ref<const T>() const { return {data, rows, cols, stride}; }

  T* row(index_t i) const noexcept { return data + i * stride; }
  T& operator()(index_t i, index_t j) const noexcept { return data[i * stride + j]; }
  std::array<index_t, 2> shape() const noexcept { return {rows, cols}; }
  index_t dimension() const noexcept { return 2; }
};

/**
 * A read-only view parameter that does not take part in template argument deduction: functions
 * whose `T` is fixed by another argument (an output view, a cache, a loss) take their inputs as
 * `const_matrix_ref<T>`, so a mutable view (`as_matrix(X)` of a non-const tensor) converts
 * without `std::as_const`.
 */
template <class T>
using const_matrix_ref = std::type_identity_t<matrix_ref<const T>>;

/// View of a rank-2 row-major xtensor container (`tensor` or `aligned_tensor`), no copy.
template <class A>
matrix_ref<typename A::value_type> as_matrix(
    xt::xtensor_container<A, 2, xt::layout_type::row_major>& m) {
  return {m.data(), m.shape()[0], m.shape()[1]};
}
template <class A>
matrix_ref<const typename A::value_type> as_matrix(
    const xt::xtensor_container<A, 2, xt::layout_type::row_major>& m) {
  return {m.data(), m.shape()[0], m.shape()[1]};
}
/// View of a padded matrix (its logical columns only).
template <real_scalar T>
matrix_ref<T> as_matrix(padded_matrix<T>& m) {
  return {m.data(), m.rows(), m.cols(), m.stride()};
}
template <real_scalar T>
matrix_ref<const T> as_matrix(const padded_matrix<T>& m) {
  return {m.data(), m.rows(), m.cols(), m.stride()};
}

/**
 * An xtensor view of caller memory of shape `shape` (row-major, contiguous, no ownership):
 * lets the xtensor API (`xt::view`, `xt::dump_npy`, printing) read a buffer without a copy.
 */
template <class T, std::size_t N>
auto adapt(T* data, const std::array<index_t, N>& shape) {
  index_t size = 1;
  for (auto e : shape) size *= e;
  return xt::adapt(data, size, xt::no_ownership(), shape);
}

/// Checks that a view has shape `(rows, cols)`.
template <class T>
void check_shape(std::string_view where, std::string_view name, const matrix_ref<T>& m,
                 index_t rows, index_t cols) {
  check_shape(where, name, m, {rows, cols});
}

}  // namespace zss
