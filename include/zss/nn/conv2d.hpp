// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/nn/conv2d.hpp
 * 2-D convolution with fused bias, forward and backward, as im2col + GEMM (DESIGN.md §3,
 * PERFORMANCE.md §3).
 *
 * Legend: B images, H × W input pixels, C input channels, C_out output channels, kh × kw
 * kernel, OH × OW output pixels, P = OH·OW, K = kh·kw·C.
 *
 * Layout and why (NHWC): images are `B × H × W × C`, weights `(kh, kw, C, C_out)` = a `K × C_out`
 * row-major matrix, bias `C_out`. Per image `out (P × C_out) = col (P × K) · W + 1·bᵀ`, so
 *  - a 1×1 convolution (stride 1, no padding) is a plain GEMM on the input, no im2col;
 *  - the output of every layer is already `P × C` row-major: the encoder's last layer gives the
 *    per-image `P × D` feature rows the losses take, with no transpose;
 *  - im2col copies contiguous `kw·C` runs (see im2col.hpp).
 * (PERFORMANCE §3.3 suggested CHW; NHWC gives the same GEMM shapes transposed and matches the
 * rest of the library, which is row-major `P × D` per image.)
 *
 * Work: images run in parallel (`parallel_for` over B), each GEMM single-threaded through a
 * row-major `Eigen::Map` (one thread pool, PERFORMANCE §5). The column matrix is built one tile
 * of output pixels at a time (`conv2d_tile_rows`, at most 512 KB, balanced tiles, so it stays in
 * the 1 MB L2; 192 KB and 2 MB measured slower on the encoder) into a
 * per-thread workspace; backward *recomputes* the columns instead of storing them.
 *
 * Backward (adds into every gradient):
 *   db += Σ_p dY_p;   dW += colᵀ · dY;   dcol = dY · Wᵀ, then col2im adds dcol into dX.
 * Weight and bias gradients are accumulated per thread and added in thread order: the result is
 * deterministic for a fixed thread count; it may differ in the last bits between thread counts.
 * Forward outputs and input gradients are per image and bitwise independent of the thread count.
 */
#include <algorithm>
#include <vector>

#include <Eigen/Core>

#include "zss/core/aligned.hpp"
#include "zss/core/check.hpp"
#include "zss/core/eigen_map.hpp"
#include "zss/core/parallel.hpp"
#include "zss/core/tensor.hpp"
#include "zss/nn/detail/gemm_kernel.hpp"
#include "zss/nn/im2col.hpp"

namespace zss {

/// What runs over an output tile right after its GEMM, while it is in cache.
enum class conv2d_epilogue {
  bias,      ///< out = col·W + b
  bias_relu  ///< out = max(col·W + b, 0) (the encoder's fused conv + ReLU)
};

#ifndef ZSS_CONV2D_TILE_BYTES
#define ZSS_CONV2D_TILE_BYTES (512 * 1024)
#endif
/// Target size of one column tile (per thread): a good fraction of the 1 MB L2 of this machine
/// (override with `-DZSS_CONV2D_TILE_BYTES=…` to tune for another cache).
inline constexpr std::size_t conv2d_tile_bytes = ZSS_CONV2D_TILE_BYTES;

/// Output pixels per im2col tile of at most `tile_bytes` (all pixels for a pointwise convolution).
template <real_scalar T>
index_t conv2d_tile_rows(const conv2d_geometry& g,
                         std::size_t tile_bytes = conv2d_tile_bytes) noexcept {
  const index_t P = g.out_pixels();
  if (g.pointwise()) return P;
  const index_t rows = std::max<index_t>(1, tile_bytes / (sizeof(T) * g.patch()));
  if (rows >= P) return P;
  const index_t tiles = (P + rows - 1) / rows;  // balanced: no short last tile
  return (P + tiles - 1) / tiles;
}

/// Elements of one per-thread column workspace (0 for pointwise convolutions).
template <real_scalar T>
index_t conv2d_workspace_size(const conv2d_geometry& g,
                              std::size_t tile_bytes = conv2d_tile_bytes) noexcept {
  return g.pointwise() ? 0 : conv2d_tile_rows<T>(g, tile_bytes) * g.patch();
}

namespace detail {

template <class T>
using dense_map = Eigen::Map<row_major_matrix<T>>;
template <class T>
using const_dense_map = Eigen::Map<const row_major_matrix<T>>;

template <real_scalar T>
inline void conv2d_epilogue_rows(T* out, index_t rows, index_t cout, const T* bias,
                                 conv2d_epilogue epi) noexcept {
  for (index_t i = 0; i < rows; ++i) {
    T* o = out + i * cout;
    if (bias)
      for (index_t c = 0; c < cout; ++c) o[c] += bias[c];
    if (epi == conv2d_epilogue::bias_relu)
      for (index_t c = 0; c < cout; ++c) o[c] = o[c] > T(0) ? o[c] : T(0);
  }
}

/// Whether `detail::gemm` (the register-blocked kernel) runs a product with `n` output columns:
/// when `n` fills whole SIMD batches; otherwise Eigen's GEMM (odd widths, rare).
template <real_scalar T>
constexpr bool conv2d_use_kernel(index_t n) noexcept {
  return n > 0 && n % simd::width<T> == 0;
}

/// `W` (K × C_out) packed for the forward's `col · W` (`gemm_pack_b`, K · C_out elements).
template <real_scalar T>
void conv2d_pack_weight(T* wp, const T* w, index_t K, index_t cout) noexcept {
  gemm_pack_b(wp, w, cout, 1, K, cout);
}

/// `Wᵀ` (C_out × K) packed for the input gradient's `dY · Wᵀ` (K · C_out elements).
template <real_scalar T>
void conv2d_pack_weight_t(T* wtp, const T* w, index_t K, index_t cout) noexcept {
  gemm_pack_b(wtp, w, 1, cout, cout, K);
}

/// Elements of the per-thread buffer the backward packs one tile of `dY` into.
template <real_scalar T>
index_t conv2d_dy_pack_size(const conv2d_geometry& g, index_t cout,
                            std::size_t tile_bytes) noexcept {
  return (g.pointwise() ? g.out_pixels() : conv2d_tile_rows<T>(g, tile_bytes)) * cout;
}

/**
 * One image forward. `out` P × C_out, `in` H × W × C, `w` K × C_out, `bias` C_out or null,
 * `col` a workspace of `tile · K` elements (`tile` = `conv2d_tile_rows`). `wp`: `w` packed by
 * `conv2d_pack_weight` (the register-blocked kernel then runs the products), or null (Eigen).
 * Eigen must be single-threaded.
 */
template <real_scalar T>
void conv2d_forward_image(T* out, const T* in, const T* w, const T* bias, const conv2d_geometry& g,
                          index_t cout, conv2d_epilogue epi, T* col, index_t tile,
                          const T* wp = nullptr) noexcept {
  const auto P = Eigen::Index(g.out_pixels()), K = Eigen::Index(g.patch()), Co = Eigen::Index(cout);
  const bool kernel = wp != nullptr && conv2d_use_kernel<T>(cout);
  const gemm_epilogue ge{bias, epi == conv2d_epilogue::bias_relu};
  const_dense_map<T> W(w, K, Co);
  if (g.pointwise()) {
    if (kernel) {
      gemm<T>(index_t(P), cout, index_t(K), in, index_t(K), 1, wp, out, cout, false, ge);
      return;
    }
    dense_map<T>(out, P, Co).noalias() = const_dense_map<T>(in, P, K) * W;
    conv2d_epilogue_rows(out, index_t(P), cout, bias, epi);
    return;
  }
  for (index_t p0 = 0; p0 < index_t(P); p0 += tile) {
    const index_t p1 = std::min(index_t(P), p0 + tile);
    const auto m = Eigen::Index(p1 - p0);
    im2col(col, in, g, p0, p1);
    if (kernel) {
      gemm<T>(index_t(m), cout, index_t(K), col, index_t(K), 1, wp, out + p0 * cout, cout, false,
              ge);
      continue;
    }
    dense_map<T>(out + p0 * cout, m, Co).noalias() = const_dense_map<T>(col, m, K) * W;
    conv2d_epilogue_rows(out + p0 * cout, p1 - p0, cout, bias, epi);
  }
}

/// db (C_out) += the column sums of `dout` (P × C_out): the bias gradient of one image.
template <real_scalar T>
void conv2d_bias_grad(T* db, const T* dout, index_t P, index_t cout) noexcept {
  for (index_t p = 0; p < P; ++p) {
    const T* r = dout + p * cout;
    for (index_t c = 0; c < cout; ++c) db[c] += r[c];
  }
}

/**
 * One image backward, **adds into** `din` (H × W × C, may be null: no input gradient), `dw`
 * (K × C_out) and `db` (C_out, may be null). `dout` P × C_out is the gradient at the conv output
 * (after any ReLU mask). `col`, `dcol`: workspaces of `tile · K` elements. With `wtp` (`Wᵀ`
 * packed by `conv2d_pack_weight_t`) the input gradient, and with `dy_pack` (a workspace of
 * `conv2d_dy_pack_size` elements) the weight gradient run the register-blocked kernel; null
 * pointers select Eigen for that product.
 */
template <real_scalar T>
void conv2d_backward_image(T* din, T* dw, T* db, const T* dout, const T* in, const T* w,
                           const conv2d_geometry& g, index_t cout, T* col, T* dcol, index_t tile,
                           const T* wtp = nullptr, T* dy_pack = nullptr) noexcept {
  const auto P = Eigen::Index(g.out_pixels()), K = Eigen::Index(g.patch()), Co = Eigen::Index(cout);
  const bool kernel_dw = dy_pack != nullptr && conv2d_use_kernel<T>(cout),
             kernel_dx = wtp != nullptr && conv2d_use_kernel<T>(index_t(K));
  if (db) conv2d_bias_grad(db, dout, index_t(P), cout);
  const_dense_map<T> W(w, K, Co);
  dense_map<T> dW(dw, K, Co);
  // dW += colᵀ·dY reads col column-wise (rsa = 1, csa = K) and dY packed; dcol = dY·Wᵀ reads
  // dY row-wise and Wᵀ packed.
  const auto grad_w = [&](const T* c, const T* dy, index_t m) {
    if (kernel_dw) {
      gemm_pack_b(dy_pack, dy, cout, 1, m, cout);
      gemm<T>(index_t(K), cout, m, c, 1, index_t(K), dy_pack, dw, cout, true);
    } else
      dW.noalias() += const_dense_map<T>(c, Eigen::Index(m), K).transpose() *
                      const_dense_map<T>(dy, Eigen::Index(m), Co);
  };
  const auto grad_x = [&](T* dx, const T* dy, index_t m, bool accumulate) {
    if (kernel_dx) {
      gemm<T>(m, index_t(K), cout, dy, cout, 1, wtp, dx, index_t(K), accumulate);
    } else {
      dense_map<T> DX(dx, Eigen::Index(m), K);
      const_dense_map<T> DY(dy, Eigen::Index(m), Co);
      if (accumulate)
        DX.noalias() += DY * W.transpose();
      else
        DX.noalias() = DY * W.transpose();
    }
  };
  if (g.pointwise()) {
    grad_w(in, dout, index_t(P));
    if (din) grad_x(din, dout, index_t(P), true);
    return;
  }
  for (index_t p0 = 0; p0 < index_t(P); p0 += tile) {
    const index_t p1 = std::min(index_t(P), p0 + tile);
    im2col(col, in, g, p0, p1);
    grad_w(col, dout + p0 * cout, p1 - p0);
    if (din) {
      grad_x(dcol, dout + p0 * cout, p1 - p0, false);
      col2im_add(din, dcol, g, p0, p1);
    }
  }
}

}  // namespace detail

/**
 * Workspaces of the batch convolution (sized once, reused: no allocation per step once warm).
 * The convolution itself needs nothing from its forward but the input, which backward takes as
 * an argument (columns are recomputed).
 */
template <real_scalar T>
struct conv2d_cache {
  std::vector<aligned_vector<T>> col, dcol;  ///< per thread: conv2d_workspace_size elements
  per_thread<T> dparams;                     ///< per thread: K·C_out weight + C_out bias gradients
  std::vector<aligned_vector<T>> dy_pack;    ///< per thread: one packed tile of dY (backward)
  aligned_vector<T> wp, wtp;                 ///< W and Wᵀ packed for the kernel (per call)
  std::size_t tile_bytes = conv2d_tile_bytes;  ///< tuning knob: size of one column tile

  /// Makes room for `threads` threads on geometry `g` (no-op when already large enough).
  void reserve(const conv2d_geometry& g, index_t cout, int threads) {
    const index_t ws = conv2d_workspace_size<T>(g, tile_bytes), np = g.patch() * cout + cout;
    const index_t dyp = detail::conv2d_dy_pack_size<T>(g, cout, tile_bytes);
    if (col.size() < std::size_t(threads)) {
      col.resize(std::size_t(threads));
      dcol.resize(std::size_t(threads));
      dy_pack.resize(std::size_t(threads));
    }
    for (std::size_t t = 0; t < std::size_t(threads); ++t) {
      if (col[t].size() < ws) col[t].resize(ws);
      if (dcol[t].size() < ws) dcol[t].resize(ws);
      if (dy_pack[t].size() < dyp) dy_pack[t].resize(dyp);
    }
    if (dparams.threads() != threads || dparams.size() != np) dparams.reset(threads, np);
    if (wp.size() < std::size_t(g.patch() * cout)) {
      wp.resize(std::size_t(g.patch() * cout));
      wtp.resize(std::size_t(g.patch() * cout));
    }
  }
};

namespace detail {
template <real_scalar T>
void conv2d_check(std::string_view where, const tensor<T, 4>& in, const_matrix_ref<T> weight,
                  const conv2d_geometry& g) {
  g.validate(where);
  check_extent(where, "in.shape[1] (H)", in.shape()[1], "geometry in_h", g.in_h);
  check_extent(where, "in.shape[2] (W)", in.shape()[2], "geometry in_w", g.in_w);
  check_extent(where, "in.shape[3] (C)", in.shape()[3], "geometry in_c", g.in_c);
  check_extent(where, "weight rows", weight.rows, "kh*kw*C", g.patch());
  require(weight.stride == weight.cols,
          std::string(where) + ": weight must be contiguous (stride " +
              std::to_string(weight.stride) + ", cols " + std::to_string(weight.cols) + ")");
}
}  // namespace detail

/**
 * Forward: `out_b = im2col(in_b) · W + b` for every image b.
 * @param out     B × OH × OW × C_out (shape checked).
 * @param cache   workspaces (grown on first use).
 * @param in      B × H × W × C (NHWC).
 * @param weight  K × C_out, contiguous (a `(kh, kw, C, C_out)` tensor).
 * @param bias    C_out values, or null for no bias.
 * @param g       geometry (its in_h, in_w, in_c must match `in`).
 * @param threads 0 = OpenMP default; results do not depend on it.
 * @throws std::invalid_argument on any shape mismatch, naming the shapes.
 */
template <real_scalar T>
void conv2d_forward(tensor<T, 4>& out, conv2d_cache<T>& cache, const tensor<T, 4>& in,
                    const_matrix_ref<T> weight, const T* bias, const conv2d_geometry& g,
                    int threads = 0) {
  detail::conv2d_check("conv2d_forward", in, weight, g);
  const index_t B = in.shape()[0], cout = weight.cols;
  check_shape("conv2d_forward", "out", out, {B, g.out_h(), g.out_w(), cout});
  threads = resolve_threads(threads);
  cache.reserve(g, cout, threads);
  detail::conv2d_pack_weight(cache.wp.data(), weight.data, g.patch(), cout);
  eigen_single_thread_guard guard;
  const index_t in_size = g.in_pixels() * g.in_c, out_size = g.out_pixels() * cout;
  parallel_for(B, threads, [&](index_t b, int t) {
    detail::conv2d_forward_image(out.data() + b * out_size, in.data() + b * in_size, weight.data,
                                 bias, g, cout, conv2d_epilogue::bias,
                                 cache.col[std::size_t(t)].data(),
                                 conv2d_tile_rows<T>(g, cache.tile_bytes), cache.wp.data());
  });
}

/**
 * Backward: **adds** the gradients of the loss into `din`, `dweight` and `dbias` given
 * `dout = ∂L/∂out` (DESIGN.md §3). Columns are recomputed from `in`.
 * @param din     B × H × W × C, or null when the input needs no gradient (first layer).
 * @param dweight K × C_out, contiguous (adds into).
 * @param dbias   C_out (adds into), or null.
 * @param dout    B × OH × OW × C_out.
 * @param cache   the workspaces (the same cache object as forward or another one).
 * @param in, weight, g as in the forward.
 * @param threads 0 = OpenMP default. `din` is independent of it; `dweight`/`dbias` are reduced in
 *                thread order (deterministic for a fixed thread count).
 */
template <real_scalar T>
void conv2d_backward(tensor<T, 4>* din, matrix_ref<T> dweight, T* dbias, const tensor<T, 4>& dout,
                     conv2d_cache<T>& cache, const tensor<T, 4>& in, const_matrix_ref<T> weight,
                     const conv2d_geometry& g, int threads = 0) {
  detail::conv2d_check("conv2d_backward", in, weight, g);
  const index_t B = in.shape()[0], cout = weight.cols, K = g.patch();
  check_shape("conv2d_backward", "dout", dout, {B, g.out_h(), g.out_w(), cout});
  check_shape("conv2d_backward", "dweight", dweight, K, cout);
  require(dweight.stride == dweight.cols, "conv2d_backward: dweight must be contiguous");
  if (din) check_shape("conv2d_backward", "din", *din, {B, g.in_h, g.in_w, g.in_c});
  threads = resolve_threads(threads);
  cache.reserve(g, cout, threads);
  cache.dparams.zero();
  if (din) detail::conv2d_pack_weight_t(cache.wtp.data(), weight.data, K, cout);
  eigen_single_thread_guard guard;
  const index_t in_size = g.in_pixels() * g.in_c, out_size = g.out_pixels() * cout;
  parallel_for(B, threads, [&](index_t b, int t) {
    T* acc = cache.dparams[t];
    detail::conv2d_backward_image(
        din ? din->data() + b * in_size : nullptr, acc, acc + K * cout, dout.data() + b * out_size,
        in.data() + b * in_size, weight.data, g, cout, cache.col[std::size_t(t)].data(),
        cache.dcol[std::size_t(t)].data(), conv2d_tile_rows<T>(g, cache.tile_bytes),
        cache.wtp.data(), cache.dy_pack[std::size_t(t)].data());
  });
  for (int t = 0; t < cache.dparams.threads(); ++t) {
    const T* acc = cache.dparams[t];
    for (index_t i = 0; i < K * cout; ++i) dweight.data[i] += acc[i];
    if (dbias)
      for (index_t c = 0; c < cout; ++c) dbias[c] += acc[K * cout + c];
  }
}

}  // namespace zss
