// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/nn/winograd.hpp
 * Winograd's minimal filtering F(2×2, 3×3) for stride-1, padding-1 3×3 convolutions (issue #16;
 * A. Lavin and S. Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016): the
 * encoder's forward and input gradient of such layers (nn/encoder.hpp).
 *
 * Legend: NHWC H × W × C input, C_out outputs (stride 1, padding 1: the output is H × W too);
 * a *tile* is 2 × 2 output pixels, read from the 4 × 4 input patch at (2ty − 1, 2tx − 1);
 * ⌈H/2⌉·⌈W/2⌉ tiles, ξ = 0…15 the positions of a transformed 4 × 4 tile.
 *
 * Per tile, with d the 4 × 4 input patch of channel c and g the 3 × 3 filter (c → o):
 *
 *     Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A,  summed over c,
 *     Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1],  G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1],
 *     Aᵀ = [1 1 1 0; 0 1 −1 −1].
 *
 * The sum over c of the element-wise product is, for each ξ, one GEMM: M_ξ (tiles × C_out) =
 * V_ξ (tiles × C) · U_ξ (C × C_out), V = Bᵀ d B and U = G g Gᵀ. That is 16·C·C_out multiply–adds
 * per tile where the direct convolution needs 4·9·C·C_out: 2.25× fewer, so the layer can run
 * below the direct form's roofline time; the transforms (additions only, vectorised over
 * channels) are the price.
 *
 * The image kernels (`detail::winograd_pack_weight`, `detail::winograd_conv_image`,
 * `detail::winograd_weight_grad_image`) take raw
 * pointers and check nothing, like conv2d.hpp's per-image kernels: the encoder, which checks its
 * shapes, is their caller; `winograd_suits` says which convolutions they compute.
 *
 * Schedule: `winograd_pack_weight` transforms and packs the 16 U_ξ once per layer call (for the
 * register-blocked GEMM, nn/detail/gemm_kernel.hpp); `winograd_conv_image` then walks an image in
 * blocks of tiles sized so V and M of a block fit `winograd_budget_bytes` (L2): input transform,
 * the 16 GEMMs, output transform with the epilogue (bias, ReLU) or accumulating into the output.
 *
 * The input gradient is the same kind of convolution: dX(y, x, c) = Σ dY(y − 1 + a, x − 1 + b, o)
 * · w(2 − a, 2 − b, c, o), i.e. of dY with the flipped, transposed filters (`flip` = true).
 * The weight gradient is the adjoint of the forward (`winograd_weight_grad_image`): the input
 * transform V as in the forward, the output gradient through A (dM = A e Aᵀ, e a tile's 2 × 2
 * output gradient), 16 GEMMs dU_ξ = Σ_tiles V_ξᵀ dM_ξ reducing over the tiles, and the filter
 * gradient through G (dg = Gᵀ dU G): the same 2.25× fewer multiply–adds.
 *
 * Numerics: exact in exact arithmetic; in floating point the transforms add roundings (the ½ are
 * exact, the sums are not), so the result equals the direct convolution to within a few units
 * of roundoff times the sum of |terms| — not bitwise. It is bitwise independent of the block
 * size and of the thread count (every output element is the same FMA chain over c; every dU
 * element the same chain over the tiles), and exact on integer data whose transformed values
 * stay integers (even filters; for the weight gradient any integers: its values are in ¼ℤ).
 */
#include <algorithm>
#include <array>
#include <cstddef>
#include <type_traits>

#include "zss/core/config.hpp"
#include "zss/core/simd.hpp"
#include "zss/nn/detail/gemm_kernel.hpp"
#include "zss/nn/im2col.hpp"

namespace zss {

/// Channels (in and out) below which a layer keeps the direct form: with few channels the
/// transforms cost as much as the products they save (the default net's layer 1 has C = 3).
inline constexpr index_t winograd_min_channels = 8;

/// L2 budget for one block's V and M (the register-blocked GEMM reads them from there).
inline constexpr std::size_t winograd_budget_bytes = std::size_t(512) << 10;

/// Whether `winograd_conv_image` runs the convolution `g` with `cout` outputs: 3 × 3, stride 1,
/// padding 1, at least `winograd_min_channels` in and out, and widths the GEMM runs at speed.
template <real_scalar T>
constexpr bool winograd_suits(const conv2d_geometry& g, index_t cout) noexcept {
  return g.kernel_h == 3 && g.kernel_w == 3 && g.stride_h == 1 && g.stride_w == 1 && g.pad_h == 1 &&
         g.pad_w == 1 && g.in_c >= winograd_min_channels && cout >= winograd_min_channels &&
         detail::gemm_kernel_suits<T>(cout) && detail::gemm_kernel_suits<T>(g.in_c);
}

/// Tiles of an image: ⌈H/2⌉ · ⌈W/2⌉.
inline index_t winograd_tiles(const conv2d_geometry& g) noexcept {
  return ((g.out_h() + 1) / 2) * ((g.out_w() + 1) / 2);
}

/// Tiles per block: as many as `budget` holds of V and M (16 · (C + C_out) values per tile),
/// balanced so the last block is not short.
template <real_scalar T>
index_t winograd_block_tiles(const conv2d_geometry& g, index_t cout,
                             std::size_t budget = winograd_budget_bytes) noexcept {
  const index_t tiles = winograd_tiles(g), per = 16 * (g.in_c + cout) * index_t(sizeof(T)),
                fit = std::max<index_t>(1, index_t(budget) / per);
  if (fit >= tiles) return tiles;
  const index_t blocks = (tiles + fit - 1) / fit;
  return (tiles + blocks - 1) / blocks;
}

/// The weight gradient's tile block: its GEMMs reduce over the tiles, so a block should be long
/// (k = tiles per block); V and dM of a block then live in L3, each ξ's slice in L2.
inline constexpr std::size_t winograd_weight_grad_budget_bytes = std::size_t(2) << 20;

/// Tiles per block of `winograd_weight_grad_image`: as many as `budget` holds of V and dM
/// (16 · (C + C_out) values per tile), balanced so the last block is not short.
template <real_scalar T>
index_t winograd_weight_grad_block_tiles(
    const conv2d_geometry& g, index_t cout,
    std::size_t budget = winograd_weight_grad_budget_bytes) noexcept {
  return winograd_block_tiles<T>(g, cout, budget);
}

/// Elements of the workspace `winograd_weight_grad_image` needs for `block` tiles: V, dM, one
/// packed dM_ξ, the 16 accumulated dU_ξ and one zero row of max(C, C_out).
inline index_t winograd_weight_grad_workspace_size(const conv2d_geometry& g, index_t cout,
                                                   index_t block) noexcept {
  return 16 * block * (g.in_c + cout) + block * cout + 16 * g.in_c * cout + std::max(g.in_c, cout);
}

/// Elements of the workspace `winograd_conv_image` needs for `block` tiles: V, M and one zero
/// row of C (the padding).
inline index_t winograd_workspace_size(const conv2d_geometry& g, index_t cout,
                                       index_t block) noexcept {
  return 16 * block * (g.in_c + cout) + g.in_c;
}

/// Elements of the packed transformed filters: 16 · C · C_out.
inline index_t winograd_weight_size(index_t c, index_t cout) noexcept {
  return 16 * c * cout;
}

namespace detail {

/**
 * Transforms the filters `w` (3 × 3 × C × C_out, the layout of conv2d's weights) into the 16
 * U_ξ = G g Gᵀ and packs each for the GEMM into `Up`. With `flip` the filters of the input
 * gradient instead: w′(a, b, o, c) = w(2 − a, 2 − b, c, o), so U_ξ is C_out × C. `U` is a scratch
 * of `winograd_weight_size(c, cout)` elements, as is `Up`.
 */
template <real_scalar T>
void winograd_pack_weight(T* Up, T* U, const T* w, index_t c, index_t cout, bool flip) noexcept {
  // U_ξ is built C × C_out in both cases, vectorised over C_out (contiguous in w and U); the
  // flipped (C_out × C) form is its transpose, which the packing reads with swapped strides.
  // (The first version transformed element by element in the output's order: 2 ms of serial
  // time per encoder step, forward and backward together; 0.5 ms now.)
  const index_t plane = c * cout;
  const T h = T(0.5);
  for (index_t i = 0; i < c; ++i) {
    const T* g[3][3];
    for (index_t a = 0; a < 3; ++a)
      for (index_t b = 0; b < 3; ++b)
        g[a][b] = w + ((flip ? (2 - a) * 3 + (2 - b) : a * 3 + b) * c + i) * cout;
    T* u = U + i * cout;
#pragma GCC ivdep
    for (index_t j = 0; j < cout; ++j) {
      T t[4][3];
      for (index_t b = 0; b < 3; ++b) {  // G g
        t[0][b] = g[0][b][j];
        t[1][b] = h * (g[0][b][j] + g[1][b][j] + g[2][b][j]);
        t[2][b] = h * (g[0][b][j] - g[1][b][j] + g[2][b][j]);
        t[3][b] = g[2][b][j];
      }
      for (index_t a = 0; a < 4; ++a) {  // (G g) Gᵀ
        T* ua = u + a * 4 * plane;
        ua[j] = t[a][0];
        ua[plane + j] = h * (t[a][0] + t[a][1] + t[a][2]);
        ua[2 * plane + j] = h * (t[a][0] - t[a][1] + t[a][2]);
        ua[3 * plane + j] = t[a][2];
      }
    }
  }
  for (index_t xi = 0; xi < 16; ++xi) {
    if (flip)
      gemm_pack_b(Up + xi * plane, U + xi * plane, 1, cout, cout, c);
    else
      gemm_pack_b(Up + xi * plane, U + xi * plane, cout, 1, c, cout);
  }
}

// One channel's load and store (the scalar tail and the odd-edge tiles of the transforms).
template <class T>
struct scalar_load {
  T operator()(const T* q) const noexcept { return *q; }
};
template <class T>
struct scalar_store {
  void operator()(T* q, T v) const noexcept { *q = v; }
};

// Runs `f(i, load, store)` for i = 0, W, 2W, … over whole batches of `n` channels (xsimd), then
// for each channel of the tail with scalar load and store: the transforms below are written once
// for both. Explicit batches rather than `#pragma GCC ivdep`: GCC 12 auto-vectorises such loops
// at 256 bits on AVX-512 targets whose tuning prefers it (`-march=native` on a Xeon here), and
// the input transform then took 10 % of the encoder step instead of 5.5 % (stop 17).
template <class T, class F>
inline void channel_batches(index_t n, F&& f) noexcept {
  using B = simd::batch<T>;
  constexpr index_t W = simd::width<T>;
  const index_t full = n - n % W;
  for (index_t i = 0; i < full; i += W)
    f(
        i, [](const T* q) { return B::load_unaligned(q); },
        [](T* q, const B& v) { v.store_unaligned(q); });
  for (index_t j = 0; j < n % W; ++j)  // fewer than W (a count GCC can bound)
    f(full + j, scalar_load<T>{}, scalar_store<T>{});
}

// V_ξ rows [0, nb) of tiles t0…t0+nb−1: Bᵀ d B per channel. One pass over the channels per
// tile reads the 16 input rows once and writes the 16 V rows (vectorised over C: no branch in
// the channel loop).
template <class T>
void winograd_input_transform(T* V, const T* in, const T* zeros, const conv2d_geometry& g,
                              index_t t0, index_t nb) noexcept {
  const index_t H = g.in_h, W = g.in_w, C = g.in_c, tw = (g.out_w() + 1) / 2, st = nb * C;
  for (index_t t = 0; t < nb; ++t) {
    const index_t ty = (t0 + t) / tw, tx = (t0 + t) % tw;
    const T* p[4][4];
    for (index_t a = 0; a < 4; ++a)
      for (index_t b = 0; b < 4; ++b) {
        const index_t y = 2 * ty + a, x = 2 * tx + b;  // input row y − 1, column x − 1
        p[a][b] = (y < 1 || x < 1 || y > H || x > W) ? zeros : in + ((y - 1) * W + (x - 1)) * C;
      }
    T* v = V + t * C;
    channel_batches<T>(C, [&](index_t ch, auto load, auto store) {
      using R = decltype(load(in));
      R r[4][4];  // Bᵀ d, column by column
      for (index_t b = 0; b < 4; ++b) {
        const R d0 = load(p[0][b] + ch), d1 = load(p[1][b] + ch), d2 = load(p[2][b] + ch),
                d3 = load(p[3][b] + ch);
        r[0][b] = d0 - d2;
        r[1][b] = d1 + d2;
        r[2][b] = d2 - d1;
        r[3][b] = d1 - d3;
      }
      for (index_t a = 0; a < 4; ++a) {  // times B
        T* va = v + a * 4 * st + ch;
        store(va, r[a][0] - r[a][2]);
        store(va + st, r[a][1] + r[a][2]);
        store(va + 2 * st, r[a][2] - r[a][1]);
        store(va + 3 * st, r[a][1] - r[a][3]);
      }
    });
  }
}

/// What the output transform does with each value y of the convolution.
enum class winograd_epilogue { store, bias, bias_relu, accumulate };

// Aᵀ M A of tiles t0…t0+nb−1 into the output (only the pixels inside it), with the epilogue E.
template <winograd_epilogue E, class T>
void winograd_output_transform(T* out, const T* M, const conv2d_geometry& g, index_t cout,
                               index_t t0, index_t nb, const T* bias) noexcept {
  const index_t oh = g.out_h(), ow = g.out_w(), tw = (ow + 1) / 2, st = nb * cout;
  // The epilogue on one value or one batch `v` of channels o….
  const auto put = [bias](T* dst, index_t o, auto v, auto load, auto store) {
    if constexpr (E == winograd_epilogue::accumulate) {
      store(dst + o, load(dst + o) + v);
    } else {
      using R = decltype(v);
      if constexpr (E != winograd_epilogue::store) v = v + load(bias + o);
      if constexpr (E == winograd_epilogue::bias_relu) {
        if constexpr (std::is_same_v<R, T>)
          v = v > T(0) ? v : T(0);
        else
          v = xsimd::max(v, R(T(0)));  // also 0 for −0 and NaN, as the scalar form
      }
      store(dst + o, v);
    }
  };
  for (index_t t = 0; t < nb; ++t) {
    const index_t y = 2 * ((t0 + t) / tw), x = 2 * ((t0 + t) % tw);
    const bool right = x + 1 < ow, below = y + 1 < oh;
    const T* m = M + t * cout;
    T* y00 = out + (y * ow + x) * cout;
    T* y01 = y00 + cout;
    T* y10 = y00 + ow * cout;
    T* y11 = y10 + cout;
    const auto values = [&](index_t o, auto load) {
      using R = decltype(load(m));
      const R m0 = load(m + o), m1 = load(m + st + o), m2 = load(m + 2 * st + o),
              m3 = load(m + 3 * st + o);
      R r0[4], r1[4];  // rows of Aᵀ M
      r0[0] = m0, r0[1] = m1, r0[2] = m2, r0[3] = m3;
      for (index_t b = 0; b < 4; ++b) {
        const R m4 = load(m + (4 + b) * st + o), m8 = load(m + (8 + b) * st + o),
                m12 = load(m + (12 + b) * st + o);
        r0[b] = r0[b] + m4 + m8;
        r1[b] = m4 - m8 - m12;
      }
      return std::array<R, 4>{r0[0] + r0[1] + r0[2], r0[1] - r0[2] - r0[3], r1[0] + r1[1] + r1[2],
                              r1[1] - r1[2] - r1[3]};
    };
    if (right && below) {  // every tile but those on an odd right or bottom edge
      channel_batches<T>(cout, [&](index_t o, auto load, auto store) {
        const auto v = values(o, load);
        put(y00, o, v[0], load, store);
        put(y01, o, v[1], load, store);
        put(y10, o, v[2], load, store);
        put(y11, o, v[3], load, store);
      });
      continue;
    }
    const scalar_load<T> load{};  // an odd edge: channel by channel
    const scalar_store<T> store{};
    for (index_t o = 0; o < cout; ++o) {
      const auto v = values(o, load);
      put(y00, o, v[0], load, store);
      if (right) put(y01, o, v[1], load, store);
      if (below) put(y10, o, v[2], load, store);
    }
  }
}

/**
 * One image of the convolution `g` (3 × 3, stride 1, padding 1; `winograd_suits`) by F(2×2, 3×3).
 * `out` H × W × C_out: `out = relu?(conv + bias)` (`bias` C_out or null), or with `accumulate`
 * `out += conv` (bias and ReLU ignored). `in` H × W × C; `Up` from `winograd_pack_weight`
 * (C × C_out per ξ); `ws` a workspace of `winograd_workspace_size(g, cout, block)` elements;
 * `block` tiles per block (`winograd_block_tiles`). Never allocates.
 */
template <real_scalar T>
void winograd_conv_image(T* out, const T* in, const T* Up, const conv2d_geometry& g, index_t cout,
                         const T* bias, bool relu, bool accumulate, T* ws, index_t block) noexcept {
  const index_t C = g.in_c, tiles = winograd_tiles(g);
  T* V = ws;
  T* M = V + 16 * block * C;
  T* zeros = M + 16 * block * cout;
  std::fill_n(zeros, C, T(0));
  for (index_t t0 = 0; t0 < tiles; t0 += block) {
    const index_t nb = std::min(block, tiles - t0);
    winograd_input_transform(V, in, static_cast<const T*>(zeros), g, t0, nb);
    for (index_t xi = 0; xi < 16; ++xi)
      gemm<T>(nb, cout, C, V + xi * nb * C, C, 1, Up + xi * C * cout, M + xi * nb * cout, cout,
              false);
    using E = winograd_epilogue;
    if (accumulate)
      winograd_output_transform<E::accumulate>(out, M, g, cout, t0, nb, bias);
    else if (!bias)
      winograd_output_transform<E::store>(out, M, g, cout, t0, nb, bias);
    else if (relu)
      winograd_output_transform<E::bias_relu>(out, M, g, cout, t0, nb, bias);
    else
      winograd_output_transform<E::bias>(out, M, g, cout, t0, nb, bias);
  }
}

// dM_ξ = (A e Aᵀ)_ξ of tiles t0…t0+nb−1, e the tile's 2 × 2 output gradient (pixels outside
// the output are 0): the adjoint of `winograd_output_transform`, vectorised over C_out.
template <class T>
void winograd_output_gradient_transform(T* dM, const T* dout, const T* zeros,
                                        const conv2d_geometry& g, index_t cout, index_t t0,
                                        index_t nb) noexcept {
  const index_t oh = g.out_h(), ow = g.out_w(), tw = (ow + 1) / 2, st = nb * cout;
  for (index_t t = 0; t < nb; ++t) {
    const index_t y = 2 * ((t0 + t) / tw), x = 2 * ((t0 + t) % tw);
    const bool right = x + 1 < ow, below = y + 1 < oh;
    const T* e00 = dout + (y * ow + x) * cout;
    const T* e01 = right ? e00 + cout : zeros;
    const T* e10 = below ? e00 + ow * cout : zeros;
    const T* e11 = right && below ? e00 + (ow + 1) * cout : zeros;
    T* m = dM + t * cout;
    channel_batches<T>(cout, [&](index_t o, auto load, auto store) {
      using R = decltype(load(e00));
      const R e[2][2] = {{load(e00 + o), load(e01 + o)}, {load(e10 + o), load(e11 + o)}};
      R r[4][2];  // rows of A e: (e0, e0 + e1, e0 − e1, −e1)
      for (index_t q = 0; q < 2; ++q) {
        r[0][q] = e[0][q];
        r[1][q] = e[0][q] + e[1][q];
        r[2][q] = e[0][q] - e[1][q];
        r[3][q] = -e[1][q];
      }
      for (index_t a = 0; a < 4; ++a) {  // times Aᵀ, the same combination along the row
        T* ma = m + a * 4 * st + o;
        store(ma, r[a][0]);
        store(ma + st, r[a][0] + r[a][1]);
        store(ma + 2 * st, r[a][0] - r[a][1]);
        store(ma + 3 * st, -r[a][1]);
      }
    });
  }
}

// dw (3 × 3 × C × C_out, conv2d's layout) += Gᵀ dU G per (c, o): the adjoint of the filter
// transform of `winograd_pack_weight`, vectorised over C_out.
template <class T>
void winograd_weight_gradient_transform(T* dw, const T* dU, index_t c, index_t cout) noexcept {
  const index_t plane = c * cout;
  const T h = T(0.5);
  for (index_t i = 0; i < c; ++i) {
    const T* u = dU + i * cout;
#pragma GCC ivdep
    for (index_t o = 0; o < cout; ++o) {
      T t[3][4];  // Gᵀ dU: rows (X0 + ½(X1 + X2), ½(X1 − X2), ½(X1 + X2) + X3)
      for (index_t j = 0; j < 4; ++j) {
        const T x0 = u[j * plane + o], x1 = u[(4 + j) * plane + o], x2 = u[(8 + j) * plane + o],
                x3 = u[(12 + j) * plane + o];
        t[0][j] = x0 + h * (x1 + x2);
        t[1][j] = h * (x1 - x2);
        t[2][j] = h * (x1 + x2) + x3;
      }
      for (index_t a = 0; a < 3; ++a) {  // (Gᵀ dU) G, the same combination along the row
        T* d = dw + (a * 3 * c + i) * cout + o;
        d[0] += t[a][0] + h * (t[a][1] + t[a][2]);
        d[plane] += h * (t[a][1] - t[a][2]);
        d[2 * plane] += h * (t[a][1] + t[a][2]) + t[a][3];
      }
    }
  }
}

/**
 * The transformed weight gradient of one image, dU_ξ (C × C_out) = Σ_tiles V_ξᵀ dM_ξ for the 16
 * ξ, written into `dU` (16 · C · C_out) or, with `accumulate`, **added** to what it holds —
 * so that a thread can sum the dU of all its images and transform once
 * (`winograd_weight_gradient_transform`). V = Bᵀ d B as in the forward, dM = A e Aᵀ per tile
 * (e the tile's 2 × 2 output gradient); `dout` is H × W × C_out (the gradient at the conv
 * output), `in` H × W × C. Each element of dU is one FMA chain over the tiles in order,
 * continued across calls. `ws`: `winograd_weight_grad_workspace_size(g, cout, block)` elements
 * (its dU part unused); `block` from `winograd_weight_grad_block_tiles`. Never allocates.
 */
template <real_scalar T>
void winograd_weight_grad_accumulate(T* dU, const T* dout, const T* in, const conv2d_geometry& g,
                                     index_t cout, T* ws, index_t block, bool accumulate) noexcept {
  const index_t C = g.in_c, tiles = winograd_tiles(g);
  T* V = ws;
  T* dM = V + 16 * block * C;
  T* dMp = dM + 16 * block * cout;
  T* zeros = dMp + block * cout + 16 * C * cout;
  std::fill_n(zeros, std::max(C, cout), T(0));
  for (index_t t0 = 0; t0 < tiles; t0 += block) {
    const index_t nb = std::min(block, tiles - t0);
    winograd_input_transform(V, in, static_cast<const T*>(zeros), g, t0, nb);
    winograd_output_gradient_transform(dM, dout, static_cast<const T*>(zeros), g, cout, t0, nb);
    for (index_t xi = 0; xi < 16; ++xi) {
      gemm_pack_b(dMp, dM + xi * nb * cout, cout, 1, nb, cout);
      gemm<T>(C, cout, nb, V + xi * nb * C, 1, C, dMp, dU + xi * C * cout, cout,
              accumulate || t0 > 0);
    }
  }
}

/**
 * One image's weight gradient of the convolution `g` (`winograd_suits`) through F(2×2, 3×3):
 * **adds** into `dw` (3 × 3 × C × C_out, conv2d's layout) the gradient given `dout` (H × W ×
 * C_out, the gradient at the conv output) and `in` (H × W × C). It is the adjoint of the
 * forward, so exact in exact arithmetic: dU from `winograd_weight_grad_accumulate` (16 GEMMs
 * reducing over the tiles, 2.25× fewer multiply–adds than im2col's colᵀ·dY), then
 * dw += Gᵀ dU G. `ws`: `winograd_weight_grad_workspace_size(g, cout, block)` elements; `block`
 * from `winograd_weight_grad_block_tiles`. Never allocates.
 */
template <real_scalar T>
void winograd_weight_grad_image(T* dw, const T* dout, const T* in, const conv2d_geometry& g,
                                index_t cout, T* ws, index_t block) noexcept {
  const index_t C = g.in_c;
  T* dU = ws + 16 * block * C + 16 * block * cout + block * cout;
  winograd_weight_grad_accumulate(dU, dout, in, g, cout, ws, block, false);
  winograd_weight_gradient_transform(dw, static_cast<const T*>(dU), C, cout);
}

}  // namespace detail

}  // namespace zss
