// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/nn/relu.hpp
 * ReLU, forward and backward, elementwise over N values (any layout) (DESIGN.md §3).
 *
 * `y = max(x, 0)`. Backward uses the *output*: `y > 0 ⇔ x > 0`, so the cache is the output
 * itself and the input need not be kept (the encoder stores post-ReLU activations only). At
 * x = 0 the derivative is taken as 0 (PyTorch's convention). The encoder fuses the forward into
 * the convolution's epilogue (`conv2d_epilogue::bias_relu`) and the backward mask into its pass.
 */
#include <span>
#include <string>

#include "zss/core/check.hpp"
#include "zss/core/config.hpp"

namespace zss {

/**
 * Forward: `out[i] = max(in[i], 0)`. `out` may be the same memory as `in`.
 * @throws std::invalid_argument when the sizes differ.
 */
template <real_scalar T>
void relu_forward(std::span<T> out, std::span<const T> in) {
  check_extent("relu_forward", "out size", out.size(), "in size", in.size());
  const index_t n = in.size();
  T* o = out.data();
  const T* x = in.data();
  for (index_t i = 0; i < n; ++i) o[i] = x[i] > T(0) ? x[i] : T(0);
}

/**
 * Backward: **adds** `dout[i]` into `din[i]` where `out[i] > 0`.
 * @param din  N (adds into).  @param dout N.  @param out N, the forward's output.
 */
template <real_scalar T>
void relu_backward(std::span<T> din, std::span<const T> dout, std::span<const T> out) {
  check_extent("relu_backward", "din size", din.size(), "dout size", dout.size());
  check_extent("relu_backward", "out size", out.size(), "dout size", dout.size());
  const index_t n = dout.size();
  T* d = din.data();
  const T* g = dout.data();
  const T* y = out.data();
  for (index_t i = 0; i < n; ++i) d[i] += y[i] > T(0) ? g[i] : T(0);
}

namespace detail {
/// In place: `g[i] = out[i] > 0 ? g[i] : 0` (the encoder's backward mask, no accumulation).
template <real_scalar T>
inline void relu_mask_inplace(T* g, const T* out, index_t n) noexcept {
  for (index_t i = 0; i < n; ++i) g[i] = out[i] > T(0) ? g[i] : T(0);
}
}  // namespace detail

}  // namespace zss
