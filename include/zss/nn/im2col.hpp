// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/nn/im2col.hpp
 * Convolution geometry and the NHWC im2col / col2im pair that turns a convolution into a GEMM
 * (DESIGN.md §3, PERFORMANCE.md §3.3).
 *
 * Legend: H × W input pixels, C input channels, kh × kw kernel, s stride, p zero padding,
 * OH × OW output pixels, P = OH·OW, K = kh·kw·C (one patch).
 *
 * Layout: one image is `H × W × C` row-major (NHWC, channels fastest), the layout of the toy
 * world's images and of the library's `P × D` feature rows. A column matrix row is one output
 * pixel's patch ordered `(ky, kx, c)`, so with weights stored `(kh, kw, C, C_out)` = `K × C_out`
 * row-major, `out (P × C_out) = col (P × K) · W (K × C_out)`. In NHWC every `(ky)` run of a patch
 * is `kw·C` contiguous input values, so im2col copies whole runs and handles padding once per
 * run, not per pixel (PERFORMANCE §3.1: Darknet's per-pixel bounds check is the slow way).
 *
 * Both functions work on a half-open range of output pixels `[pixel_begin, pixel_end)` (a tile)
 * so the column buffer can stay in L2; they never allocate.
 */
#include <algorithm>
#include <sstream>
#include <string_view>

#include "zss/core/check.hpp"
#include "zss/core/config.hpp"
#include "zss/core/tensor.hpp"

namespace zss {

/// Shape of one 2-D convolution on one NHWC image (every number a user sets, no defaults hidden).
struct conv2d_geometry {
  index_t in_h = 0, in_w = 0, in_c = 0;  ///< input image H × W × C
  index_t kernel_h = 1, kernel_w = 1;    ///< kh × kw
  index_t stride_h = 1, stride_w = 1;    ///< s (≥ 1)
  index_t pad_h = 0, pad_w = 0;          ///< zero padding on each side

  /// Square kernel `k`, stride `s`, padding `p` on an `h × w × c` image.
  static conv2d_geometry square(index_t h, index_t w, index_t c, index_t k, index_t s, index_t p) {
    return {h, w, c, k, k, s, s, p, p};
  }

  index_t out_h() const noexcept { return (in_h + 2 * pad_h - kernel_h) / stride_h + 1; }
  index_t out_w() const noexcept { return (in_w + 2 * pad_w - kernel_w) / stride_w + 1; }
  index_t out_pixels() const noexcept { return out_h() * out_w(); }
  index_t in_pixels() const noexcept { return in_h * in_w; }
  /// K = kh·kw·C, the length of one patch (a row of the column matrix).
  index_t patch() const noexcept { return kernel_h * kernel_w * in_c; }
  /// 1×1, stride 1, no padding: the input *is* the column matrix (no im2col).
  bool pointwise() const noexcept {
    return kernel_h == 1 && kernel_w == 1 && stride_h == 1 && stride_w == 1 && pad_h == 0 &&
           pad_w == 0;
  }

  /// Throws `std::invalid_argument` naming the geometry when it is not a valid convolution.
  void validate(std::string_view where) const {
    std::ostringstream os;
    os << where << ": invalid convolution geometry: input " << in_h << "x" << in_w << "x" << in_c
       << ", kernel " << kernel_h << "x" << kernel_w << ", stride " << stride_h << "x" << stride_w
       << ", padding " << pad_h << "x" << pad_w;
    const bool ok = in_h > 0 && in_w > 0 && in_c > 0 && kernel_h > 0 && kernel_w > 0 &&
                    stride_h > 0 && stride_w > 0 && in_h + 2 * pad_h >= kernel_h &&
                    in_w + 2 * pad_w >= kernel_w;
    if (!ok) {
      os << " (need positive sizes and a padded input at least as large as the kernel)";
      throw std::invalid_argument(os.str());
    }
  }
};

/**
 * Writes the patches of output pixels `[pixel_begin, pixel_end)` of `image` into `col`.
 * @param col   (pixel_end − pixel_begin) × K, row-major, contiguous (overwritten).
 * @param image H × W × C (NHWC, one image).
 * Padding positions are written as zeros. No checks (callers validate the geometry).
 */
template <real_scalar T>
void im2col(T* col, const T* image, const conv2d_geometry& g, index_t pixel_begin,
            index_t pixel_end) noexcept {
  const index_t ow = g.out_w(), C = g.in_c, K = g.patch(), run = g.kernel_w * C;
  const auto H = static_cast<std::ptrdiff_t>(g.in_h), W = static_cast<std::ptrdiff_t>(g.in_w);
  for (index_t p = pixel_begin; p < pixel_end; ++p) {
    const auto oy = static_cast<std::ptrdiff_t>(p / ow), ox = static_cast<std::ptrdiff_t>(p % ow);
    T* row = col + (p - pixel_begin) * K;
    const std::ptrdiff_t ix0 = ox * std::ptrdiff_t(g.stride_w) - std::ptrdiff_t(g.pad_w);
    const bool inside_x = ix0 >= 0 && ix0 + std::ptrdiff_t(g.kernel_w) <= W;
    for (index_t ky = 0; ky < g.kernel_h; ++ky, row += run) {
      const std::ptrdiff_t iy =
          oy * std::ptrdiff_t(g.stride_h) - std::ptrdiff_t(g.pad_h) + std::ptrdiff_t(ky);
      if (iy < 0 || iy >= H) {
        std::fill_n(row, run, T(0));
        continue;
      }
      const T* src = image + (iy * W) * std::ptrdiff_t(C);
      if (inside_x) {
        std::copy_n(src + ix0 * std::ptrdiff_t(C), run, row);
        continue;
      }
      for (index_t kx = 0; kx < g.kernel_w; ++kx) {
        const std::ptrdiff_t ix = ix0 + std::ptrdiff_t(kx);
        if (ix < 0 || ix >= W)
          std::fill_n(row + kx * C, C, T(0));
        else
          std::copy_n(src + ix * std::ptrdiff_t(C), C, row + kx * C);
      }
    }
  }
}

/**
 * The adjoint of `im2col`: **adds** every patch value of `dcol` back into the pixel it came
 * from (padding positions are dropped).
 * @param dimage H × W × C gradient of one image (adds into).
 * @param dcol   (pixel_end − pixel_begin) × K.
 */
template <real_scalar T>
void col2im_add(T* dimage, const T* dcol, const conv2d_geometry& g, index_t pixel_begin,
                index_t pixel_end) noexcept {
  const index_t ow = g.out_w(), C = g.in_c, K = g.patch(), run = g.kernel_w * C;
  const auto H = static_cast<std::ptrdiff_t>(g.in_h), W = static_cast<std::ptrdiff_t>(g.in_w);
  for (index_t p = pixel_begin; p < pixel_end; ++p) {
    const auto oy = static_cast<std::ptrdiff_t>(p / ow), ox = static_cast<std::ptrdiff_t>(p % ow);
    const T* row = dcol + (p - pixel_begin) * K;
    const std::ptrdiff_t ix0 = ox * std::ptrdiff_t(g.stride_w) - std::ptrdiff_t(g.pad_w);
    for (index_t ky = 0; ky < g.kernel_h; ++ky, row += run) {
      const std::ptrdiff_t iy =
          oy * std::ptrdiff_t(g.stride_h) - std::ptrdiff_t(g.pad_h) + std::ptrdiff_t(ky);
      if (iy < 0 || iy >= H) continue;
      T* dst = dimage + (iy * W) * std::ptrdiff_t(C);
      for (index_t kx = 0; kx < g.kernel_w; ++kx) {
        const std::ptrdiff_t ix = ix0 + std::ptrdiff_t(kx);
        if (ix < 0 || ix >= W) continue;
        T* d = dst + ix * std::ptrdiff_t(C);
        const T* s = row + kx * C;
        for (index_t c = 0; c < C; ++c) d[c] += s[c];
      }
    }
  }
}

/**
 * Checked convenience: the full `P × K` column matrix of one `H × W × C` image.
 * @throws std::invalid_argument when `image` does not have shape (H, W, C) of `g`.
 */
template <real_scalar T>
tensor<T, 2> im2col(const tensor<T, 3>& image, const conv2d_geometry& g) {
  g.validate("im2col");
  check_shape("im2col", "image", image, {g.in_h, g.in_w, g.in_c});
  tensor<T, 2> col = tensor<T, 2>::from_shape({g.out_pixels(), g.patch()});
  im2col(col.data(), image.data(), g, 0, g.out_pixels());
  return col;
}

}  // namespace zss
