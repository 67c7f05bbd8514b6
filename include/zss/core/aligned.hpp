// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/core/aligned.hpp
 * Aligned storage and padding helpers.
 *
 * Every buffer zss allocates is 64-byte aligned (`simd_alignment`): one cache line and one
 * AVX-512 register. Matrices whose rows are read by SIMD kernels may be *padded*: the row stride
 * is rounded up to a multiple of the SIMD lane count so that every row starts aligned and the
 * kernels need no scalar tail. Padding values are zero unless a kernel documents otherwise.
 */
#include <algorithm>
#include <cstddef>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "zss/core/check.hpp"
#include "zss/core/config.hpp"

namespace zss {

/// A `std::vector` whose data is 64-byte aligned.
template <class T>
using aligned_vector = std::vector<T, xsimd::aligned_allocator<T, simd_alignment>>;

/// Smallest multiple of `multiple` that is ≥ `n` (`multiple` > 0).
constexpr index_t round_up(index_t n, index_t multiple) noexcept {
  return (n + multiple - 1) / multiple * multiple;
}

/// Elements of `T` in one aligned block (16 floats, 8 doubles).
template <class T>
inline constexpr index_t lanes_per_line = simd_alignment / sizeof(T);

/// Row stride for a row of `cols` elements padded to whole 64-byte lines.
template <class T>
constexpr index_t padded_cols(index_t cols) noexcept {
  return round_up(cols, lanes_per_line<T>);
}

/**
 * A row-major `rows × cols` matrix with rows padded to `stride = padded_cols<T>(cols)`, so every
 * row is 64-byte aligned. The padding is zero-filled on construction and by `assign`.
 * @tparam T float or double.
 */
template <real_scalar T>
class padded_matrix {
 public:
  padded_matrix() = default;
  padded_matrix(index_t rows, index_t cols)
      : rows_(rows), cols_(cols), stride_(padded_cols<T>(cols)), data_(rows * stride_, T(0)) {}

  /// Resizes (contents zeroed, no shrink of capacity).
  void resize(index_t rows, index_t cols) {
    rows_ = rows;
    cols_ = cols;
    stride_ = padded_cols<T>(cols);
    data_.assign(rows * stride_, T(0));
  }

  /// Copies a dense row-major `rows × cols` block with row stride `src_stride`; pads with zeros.
  void assign(const T* src, index_t rows, index_t cols, index_t src_stride) {
    require(src_stride >= cols, "padded_matrix::assign: source stride (" +
                                    std::to_string(src_stride) + ") is smaller than cols (" +
                                    std::to_string(cols) + ")");
    resize(rows, cols);
    for (index_t i = 0; i < rows; ++i) std::copy_n(src + i * src_stride, cols, row(i));
  }

  T* row(index_t i) noexcept { return data_.data() + i * stride_; }
  const T* row(index_t i) const noexcept { return data_.data() + i * stride_; }
  T* data() noexcept { return data_.data(); }
  const T* data() const noexcept { return data_.data(); }
  index_t rows() const noexcept { return rows_; }
  index_t cols() const noexcept { return cols_; }
  index_t stride() const noexcept { return stride_; }

 private:
  index_t rows_ = 0, cols_ = 0, stride_ = 0;
  aligned_vector<T> data_;
};

}  // namespace zss
