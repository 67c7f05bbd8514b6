// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/nn/upsample.hpp
 * Bilinear resizing of NHWC feature maps / score maps, forward and backward (DESIGN.md §3): used
 * to score the stride-4 predictions at image resolution.
 *
 * Legend: B images, h × w input grid, H × W output grid, C channels; tensors `B × h × w × C`.
 *
 * Matches PyTorch's `F.interpolate(mode="bilinear", align_corners=False)` with an output size
 * given (no antialias): per axis, scale = in/out, source coordinate
 * `s = max((o + 0.5)·scale − 0.5, 0)`, `i0 = ⌊s⌋`, `i1 = min(i0 + 1, in − 1)`, `λ = s − i0`,
 * `y = (1−λ)·x[i0] + λ·x[i1]` (separably in y and x). Works for any sizes (also downsampling,
 * without antialiasing). Backward scatters each output gradient to its four taps with the
 * same weights (the adjoint). Each call builds two small tap tables (H + W entries); images run
 * in parallel and results do not depend on the thread count.
 */
#include <algorithm>
#include <vector>

#include "zss/core/check.hpp"
#include "zss/core/parallel.hpp"
#include "zss/core/tensor.hpp"

namespace zss {

namespace detail {
template <real_scalar T>
struct bilinear_tap {
  index_t i0, i1;
  T l0, l1;  ///< weights of i0 and i1
};
/// The taps of every output coordinate along one axis (PyTorch's align_corners=False rule).
template <real_scalar T>
void bilinear_taps(std::vector<bilinear_tap<T>>& taps, index_t in, index_t out) {
  taps.resize(out);
  const T scale = T(in) / T(out);
  for (index_t o = 0; o < out; ++o) {
    const T s = std::max((T(o) + T(0.5)) * scale - T(0.5), T(0));
    const auto i0 = std::min(static_cast<index_t>(s), in - 1);
    const index_t i1 = i0 + (i0 + 1 < in ? 1 : 0);
    const T l1 = s - T(i0);
    taps[o] = {i0, i1, T(1) - l1, l1};
  }
}
template <real_scalar T>
void upsample_check(std::string_view where, const tensor<T, 4>& small, const tensor<T, 4>& large,
                    std::string_view small_name, std::string_view large_name) {
  require(small.shape()[0] == large.shape()[0] && small.shape()[3] == large.shape()[3],
          std::string(where) + ": " + std::string(small_name) + " has shape " +
              shape_string(small.shape()) + " and " + std::string(large_name) + " has shape " +
              shape_string(large.shape()) + "; batch and channel extents must agree");
  require(
      small.shape()[1] > 0 && small.shape()[2] > 0 && large.shape()[1] > 0 && large.shape()[2] > 0,
      std::string(where) + ": empty spatial grid (" + std::string(small_name) + " " +
          shape_string(small.shape()) + ", " + std::string(large_name) + " " +
          shape_string(large.shape()) + ")");
}
}  // namespace detail

/**
 * Forward: `out = bilinear(in)`.
 * @param out B × H × W × C (its H, W choose the output size).
 * @param in  B × h × w × C.
 * @param threads 0 = OpenMP default (images in parallel; results independent of it).
 * @throws std::invalid_argument when B or C differ or a grid is empty.
 */
template <real_scalar T>
void upsample_bilinear_forward(tensor<T, 4>& out, const tensor<T, 4>& in, int threads = 0) {
  detail::upsample_check("upsample_bilinear_forward", in, out, "in", "out");
  const index_t B = in.shape()[0], h = in.shape()[1], w = in.shape()[2], C = in.shape()[3];
  const index_t H = out.shape()[1], W = out.shape()[2];
  std::vector<detail::bilinear_tap<T>> ty, tx;
  detail::bilinear_taps(ty, h, H);
  detail::bilinear_taps(tx, w, W);
  parallel_for(B, threads, [&](index_t b, int) {
    const T* x = in.data() + b * h * w * C;
    T* y = out.data() + b * H * W * C;
    for (index_t oy = 0; oy < H; ++oy) {
      const auto& a = ty[oy];
      const T* r0 = x + a.i0 * w * C;
      const T* r1 = x + a.i1 * w * C;
      for (index_t ox = 0; ox < W; ++ox) {
        const auto& e = tx[ox];
        T* o = y + (oy * W + ox) * C;
        const T w00 = a.l0 * e.l0, w01 = a.l0 * e.l1, w10 = a.l1 * e.l0, w11 = a.l1 * e.l1;
        const T *p00 = r0 + e.i0 * C, *p01 = r0 + e.i1 * C, *p10 = r1 + e.i0 * C,
                *p11 = r1 + e.i1 * C;
        for (index_t c = 0; c < C; ++c)
          o[c] = w00 * p00[c] + w01 * p01[c] + w10 * p10[c] + w11 * p11[c];
      }
    }
  });
}

/**
 * Backward: **adds** `∂L/∂in` into `din` given `dout = ∂L/∂out`.
 * @param din  B × h × w × C (adds into).  @param dout B × H × W × C.
 */
template <real_scalar T>
void upsample_bilinear_backward(tensor<T, 4>& din, const tensor<T, 4>& dout, int threads = 0) {
  detail::upsample_check("upsample_bilinear_backward", din, dout, "din", "dout");
  const index_t B = din.shape()[0], h = din.shape()[1], w = din.shape()[2], C = din.shape()[3];
  const index_t H = dout.shape()[1], W = dout.shape()[2];
  std::vector<detail::bilinear_tap<T>> ty, tx;
  detail::bilinear_taps(ty, h, H);
  detail::bilinear_taps(tx, w, W);
  parallel_for(B, threads, [&](index_t b, int) {
    T* dx = din.data() + b * h * w * C;
    const T* dy = dout.data() + b * H * W * C;
    for (index_t oy = 0; oy < H; ++oy) {
      const auto& a = ty[oy];
      T* r0 = dx + a.i0 * w * C;
      T* r1 = dx + a.i1 * w * C;
      for (index_t ox = 0; ox < W; ++ox) {
        const auto& e = tx[ox];
        const T* g = dy + (oy * W + ox) * C;
        const T w00 = a.l0 * e.l0, w01 = a.l0 * e.l1, w10 = a.l1 * e.l0, w11 = a.l1 * e.l1;
        T *p00 = r0 + e.i0 * C, *p01 = r0 + e.i1 * C, *p10 = r1 + e.i0 * C, *p11 = r1 + e.i1 * C;
        for (index_t c = 0; c < C; ++c) {
          p00[c] += w00 * g[c];
          p01[c] += w01 * g[c];
          p10[c] += w10 * g[c];
          p11[c] += w11 * g[c];
        }
      }
    }
  });
}

}  // namespace zss
