// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/nn/detail/gemm_kernel.hpp
 * A register-blocked single-threaded GEMM for the convolution's thin shapes (issue #16):
 * `C (m × n) = A (m × k) · B (k × n)` or `C += A·B`, with an optional fused epilogue applied
 * while the tile is still in registers: `C = max(C + bias, 0)` / `C += bias` (the convolution),
 * or the row combination `C_i ← [C_i +] s_i·(A·B)_i + q_i·Y_i` (the fused losses' dX, see
 * `gemm_epilogue`).
 *
 * Operands (raw pointers, any alignment):
 *  - `A` is read as `A[i·rsa + p·csa]`, so one kernel serves `col · W` (rsa = K, csa = 1) and
 *    `colᵀ · dY` (rsa = 1, csa = K) without a transpose;
 *  - `B` is *packed* by `gemm_pack_b` (from any strides) into column panels of `NR` columns,
 *    each `k × NR` contiguous, so the micro-kernel streams it sequentially (unpacked rows of a
 *    128-wide B cost 25–30 % of the kernel's speed in L2 misses, measured on the encoder);
 *    the convolution packs its weights once per call and `dY` once per im2col tile;
 *  - `C` is row-major with leading dimension `ldc`.
 *
 * Micro-kernel: an `MR × NV` tile of SIMD accumulators (`NV` batches of `W` lanes per row),
 * updated by one broadcast of `A` and `NV` loads of `B` per step of the reduction; `MR × NV`
 * = 6 × 2 for 16-register ISAs (SSE2, AVX2: 12 accumulators + 2 B + 1 broadcast), 12 × 2 under
 * AVX-512 (32 registers). The reduction runs in blocks of `gemm_kc` steps so the `kc × NR`
 * panel of `B` stays in L1 while every `MR`-row block of `A` passes over it.
 *
 * Summation order: every element of `C` is `fma(a_p, b_p, c)` for p = 0, 1, …, k−1 in that
 * order, starting from 0 (or from C when accumulating), whatever the tiling; the bias is added
 * after the sum. With a hardware FMA (AVX2+FMA, AVX-512) the result is bitwise equal to
 * `gemm_reference` (scalar `std::fma` in the same order); SSE2 has no FMA and xsimd rounds the
 * product first there, so the two agree exactly on integer-valued inputs (every partial sum
 * exact), within rounding otherwise. The column tail (`n` not a multiple of `W`: 8 of the 40
 * classes of `BM_CosineCE` under AVX-512) runs as one more batch of a tile: its `kc × w` panel
 * is copied zero-padded to `W` columns once per reduction block (16 KB on the stack) and its
 * lanes of `C` are read and written by partial (masked) loads and stores, so the tail costs
 * what a full batch costs instead of a latency-bound scalar chain per element (that was 80 %
 * of `BM_CosineCE` on a Xeon with AVX-512, 42 ms → bench/README.md, stop 17). Since stop 19
 * that batch shares its tile with the one or two full batches before it (`gemm_micro_tail`).
 *
 * Why our own kernel rather than Eigen's GEMM (measured on the encoder, bench/README.md,
 * `BM_Conv*`): Eigen packs both operands on every call; the convolution calls it once per
 * im2col tile with the same weights, and its blocking targets large square products, not
 * m ≈ 100–500, n = 32–128, k = 27–1152. This kernel packs the weights once per layer call,
 * never packs the column matrix (read in place), and fuses bias + ReLU; see the measurements
 * quoted in conv2d.hpp.
 */
#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdint>

#include "zss/core/config.hpp"
#include "zss/core/simd.hpp"

namespace zss::detail {

/// Reduction steps per block (the `kc × NR` panel of B: 256 × 16 floats = 16 KB under AVX2).
inline constexpr index_t gemm_kc = 256;

/**
 * What the GEMM does to each finished element of C (after the last reduction block): the bias,
 * then ReLU; or else the *row combination* (`row_scale` set; no bias or ReLU with it)
 *
 *     C_i ← [C_i +] s_i·(A·B)_i + q_i·Y_i      as fma(q_i, Y_ij, fma(s_i, (A·B)_ij, C_ij or 0)),
 *
 * which writes a row-normalisation backward `dx = dx̂/‖x‖ + proj·x` straight from the product
 * `dx̂` (the fused losses, loss/cosine_ce.hpp) without storing `dx̂`. The row combination needs
 * the whole reduction in one block, `k ≤ gemm_kc`: C holds partial sums between blocks.
 */
struct gemm_epilogue {
  const void* bias = nullptr;       ///< n values added to every row (T*), or null
  bool relu = false;                ///< then max(·, 0)
  const void* row_scale = nullptr;  ///< m values s_i (T*), or null: no row combination
  const void* row_shift = nullptr;  ///< m values q_i (T*)
  const void* rows = nullptr;       ///< Y: m × n (T*), row stride `ldy`
  index_t ldy = 0;
  bool add = false;  ///< add the combination into C's previous contents (else write it)
};

/// The epilogue as the micro-kernels see it: pointers at the tile's first row and column.
template <class T>
struct gemm_tile_epilogue {
  const T* bias = nullptr;
  bool relu = false;
  const T* scale = nullptr;
  const T* shift = nullptr;
  const T* Y = nullptr;
  index_t ldy = 0;
  bool add = false;

  /// The same epilogue for the tile at row i, column j.
  gemm_tile_epilogue at(index_t i, index_t j) const noexcept {
    gemm_tile_epilogue e = *this;
    if (bias) e.bias = bias + j;
    if (scale) e.scale = scale + i, e.shift = shift + i, e.Y = Y + i * ldy + j;
    return e;
  }
};

/// Prefetches the line holding `p + i` (`Write`: for writing) into L1. The address is formed in
/// integers: the callers prefetch a tile ahead, which for the last tile lies past the array, and
/// a prefetch never faults, but pointer arithmetic beyond the array would be undefined.
template <bool Write, class T>
inline void prefetch_ahead(const T* p, index_t i) noexcept {
  const auto a = reinterpret_cast<std::uintptr_t>(p) + static_cast<std::uintptr_t>(i) * sizeof(T);
  __builtin_prefetch(reinterpret_cast<const void*>(a), Write ? 1 : 0, 3);
}

/// Rows of the register tile for scalar `T` on the default architecture.
template <class T>
inline constexpr index_t gemm_mr = simd::width<T> * sizeof(T) == 64 ? 12 : 6;
/// Batches per row of the register tile.
inline constexpr index_t gemm_nv = 2;

template <class T, index_t MR, index_t NV>
inline void gemm_micro(index_t k, const T* A, index_t rsa, index_t csa, const T* B, index_t ldb,
                       T* C, index_t ldc, bool load_c, const gemm_tile_epilogue<T>& e) noexcept {
  using b_t = simd::batch<T>;
  constexpr index_t W = b_t::size;
  b_t c[MR][NV];
  for (index_t r = 0; r < MR; ++r)
    for (index_t v = 0; v < NV; ++v)
      c[r][v] = load_c ? b_t::load_unaligned(C + r * ldc + v * W) : b_t(T(0));
  // The row combination reads or writes C in memory (the losses' dX, not in cache): the next
  // row block's lines of this panel are fetched now, a row block ahead of their epilogue (the
  // loads and ownership requests would otherwise stall it; 10–15 % of BM_CosineCE, EXPERIMENTS
  // stop 19). For the last row block the addresses lie past C (`prefetch_ahead`).
  if (e.scale)
    for (index_t r = 0; r < MR; ++r)
      for (index_t v = 0; v < NV; v += std::max<index_t>(1, 64 / index_t(sizeof(T)) / W))
        prefetch_ahead<true>(C, (MR + r) * ldc + v * W);
  for (index_t p = 0; p < k; ++p) {
    const T* bp = B + p * ldb;
    b_t b[NV];
    for (index_t v = 0; v < NV; ++v) b[v] = b_t::load_unaligned(bp + v * W);
    const T* ap = A + p * csa;
    for (index_t r = 0; r < MR; ++r) {
      const b_t a(ap[r * rsa]);
      for (index_t v = 0; v < NV; ++v) c[r][v] = simd::fma(a, b[v], c[r][v]);
    }
  }
  if (e.bias) {
    for (index_t v = 0; v < NV; ++v) {
      const b_t bv = b_t::load_unaligned(e.bias + v * W);
      for (index_t r = 0; r < MR; ++r) c[r][v] = c[r][v] + bv;
    }
  }
  if (e.relu) {
    const b_t zero(T(0));
    for (index_t r = 0; r < MR; ++r)
      for (index_t v = 0; v < NV; ++v) c[r][v] = xsimd::max(c[r][v], zero);
  }
  if (e.scale) {
    for (index_t r = 0; r < MR; ++r) {
      const b_t sv(e.scale[r]), qv(e.shift[r]);
      for (index_t v = 0; v < NV; ++v) {
        const b_t old = e.add ? b_t::load_unaligned(C + r * ldc + v * W) : b_t(T(0));
        c[r][v] = simd::fma(qv, b_t::load_unaligned(e.Y + r * e.ldy + v * W),
                            simd::fma(sv, c[r][v], old));
      }
    }
  }
  for (index_t r = 0; r < MR; ++r)
    for (index_t v = 0; v < NV; ++v) c[r][v].store_unaligned(C + r * ldc + v * W);
}

// One block of MR rows across all column panels of the packed B (reduction steps
// [p0, p0 + kc) of k), then the one-batch panel.
template <class T, index_t MR>
inline void gemm_row_block(index_t n_full, index_t n_vec, index_t k, index_t p0, index_t kc,
                           const T* A, index_t rsa, index_t csa, const T* Bp, T* C, index_t ldc,
                           bool load_c, const gemm_tile_epilogue<T>& e) noexcept {
  constexpr index_t W = simd::width<T>, NR = gemm_nv * W;
  for (index_t j = 0; j < n_full; j += NR)
    gemm_micro<T, MR, gemm_nv>(kc, A, rsa, csa, Bp + j * k + p0 * NR, NR, C + j, ldc, load_c,
                               e.at(0, j));
  for (index_t j = n_full; j < n_vec; j += W)
    gemm_micro<T, MR, 1>(kc, A, rsa, csa, Bp + j * k + p0 * W, W, C + j, ldc, load_c, e.at(0, j));
}

// Rows [0, m): MR rows at a time, then the row tail with smaller tiles.
template <class T, index_t MR>
inline void gemm_rows(index_t m, index_t n_full, index_t n_vec, index_t k, index_t p0, index_t kc,
                      const T* A, index_t rsa, index_t csa, const T* Bp, T* C, index_t ldc,
                      bool load_c, const gemm_tile_epilogue<T>& e) noexcept {
  index_t i = 0;
  for (; i + MR <= m; i += MR)
    gemm_row_block<T, MR>(n_full, n_vec, k, p0, kc, A + i * rsa, rsa, csa, Bp, C + i * ldc, ldc,
                          load_c, e.at(i, 0));
  if constexpr (MR > 1) {
    if (i < m)
      gemm_rows<T, (MR + 1) / 2>(m - i, n_full, n_vec, k, p0, kc, A + i * rsa, rsa, csa, Bp,
                                 C + i * ldc, ldc, load_c, e.at(i, 0));
  }
}

// The column tail, fused with the `NVF` full batches before it (0, 1 or 2; `NVF` + 1 batches in
// all): MR rows × (`NVF` batches of the packed panel `Bf`, row stride `ldf`) ++ (one batch of
// which the first `w` lanes are columns of C, from `Bw`: the tail's `kc × W` panel padded with
// zeros, row stride W). The tail batch's C and bias are read and written by partial loads and
// stores (`simd::load_partial`, masked under AVX-512), so nothing beyond column w is touched.
// Fusing the tail with the panel before it shares each broadcast of A among NVF + 1 batches:
// with 40 columns under AVX-512 (`BM_CosineCE`'s classes) an 8 × 3 tile instead of a 12 × 2 tile
// plus a 12 × 1 tail, 24 → 12 broadcasts per 36 FMAs; the logits' product 128 × 40 × 512 went
// from 143 to 147–158 GFLOP/s on one thread (EXPERIMENTS stop 19).
template <class T, index_t MR, index_t NVF>
inline void gemm_micro_tail(index_t kc, index_t w, const T* A, index_t rsa, index_t csa,
                            const T* Bf, index_t ldf, const T* Bw, T* C, index_t ldc, bool load_c,
                            const gemm_tile_epilogue<T>& e) noexcept {
  using b_t = simd::batch<T>;
  constexpr index_t W = b_t::size, NV = NVF + 1;
  b_t c[MR][NV];
  for (index_t r = 0; r < MR; ++r) {
    for (index_t v = 0; v < NVF; ++v)
      c[r][v] = load_c ? b_t::load_unaligned(C + r * ldc + v * W) : b_t(T(0));
    c[r][NVF] = load_c ? simd::load_partial(C + r * ldc + NVF * W, w) : b_t(T(0));
  }
  // Row-major A: the next tile's rows (this pass goes down the rows) are fetched into L1 ahead
  // of their broadcasts: the cosine CE's logits read X here for the first time (5 % of
  // BM_CosineCE, EXPERIMENTS stop 19). One prefetch per 64-byte line.
  if (csa == 1)
    for (index_t r = 0; r < MR; ++r)
      for (index_t p = 0; p < kc; p += std::max<index_t>(1, 64 / index_t(sizeof(T))))
        prefetch_ahead<false>(A, (MR + r) * rsa + p);
  for (index_t p = 0; p < kc; ++p) {
    b_t b[NV];
    for (index_t v = 0; v < NVF; ++v) b[v] = b_t::load_unaligned(Bf + p * ldf + v * W);
    b[NVF] = b_t::load_aligned(Bw + p * W);
    const T* ap = A + p * csa;
    for (index_t r = 0; r < MR; ++r) {
      const b_t a(ap[r * rsa]);
      for (index_t v = 0; v < NV; ++v) c[r][v] = simd::fma(a, b[v], c[r][v]);
    }
  }
  if (e.bias) {
    for (index_t v = 0; v < NVF; ++v) {
      const b_t bv = b_t::load_unaligned(e.bias + v * W);
      for (index_t r = 0; r < MR; ++r) c[r][v] = c[r][v] + bv;
    }
    const b_t bv = simd::load_partial(e.bias + NVF * W, w);
    for (index_t r = 0; r < MR; ++r) c[r][NVF] = c[r][NVF] + bv;
  }
  if (e.relu)
    for (index_t r = 0; r < MR; ++r)
      for (index_t v = 0; v < NV; ++v) c[r][v] = xsimd::max(c[r][v], b_t(T(0)));
  if (e.scale) {
    for (index_t r = 0; r < MR; ++r) {
      const b_t sv(e.scale[r]), qv(e.shift[r]);
      const T* y = e.Y + r * e.ldy;
      const T* o = C + r * ldc;
      for (index_t v = 0; v < NVF; ++v)
        c[r][v] =
            simd::fma(qv, b_t::load_unaligned(y + v * W),
                      simd::fma(sv, c[r][v], e.add ? b_t::load_unaligned(o + v * W) : b_t(T(0))));
      c[r][NVF] = simd::fma(
          qv, simd::load_partial(y + NVF * W, w),
          simd::fma(sv, c[r][NVF], e.add ? simd::load_partial(o + NVF * W, w) : b_t(T(0))));
    }
  }
  for (index_t r = 0; r < MR; ++r) {
    for (index_t v = 0; v < NVF; ++v) c[r][v].store_unaligned(C + r * ldc + v * W);
    simd::store_partial(c[r][NVF], C + r * ldc + NVF * W, w);
  }
}

template <class T, index_t MR, index_t NVF>
inline void gemm_tail_rows(index_t m, index_t kc, index_t w, const T* A, index_t rsa, index_t csa,
                           const T* Bf, index_t ldf, const T* Bw, T* C, index_t ldc, bool load_c,
                           const gemm_tile_epilogue<T>& e) noexcept {
  index_t i = 0;
  for (; i + MR <= m; i += MR)
    gemm_micro_tail<T, MR, NVF>(kc, w, A + i * rsa, rsa, csa, Bf, ldf, Bw, C + i * ldc, ldc, load_c,
                                e.at(i, 0));
  if constexpr (MR > 1) {
    if (i < m)
      gemm_tail_rows<T, (MR + 1) / 2, NVF>(m - i, kc, w, A + i * rsa, rsa, csa, Bf, ldf, Bw,
                                           C + i * ldc, ldc, load_c, e.at(i, 0));
  }
}

/// Rows of the fused tail tile with `NVF` full batches: as many as the registers hold
/// (MR·(NVF + 1) accumulators, NVF + 1 batches of B and one broadcast).
template <class T, index_t NVF>
inline constexpr index_t gemm_tail_mr = NVF < 2 ? gemm_mr<T> : gemm_mr<T> * 2 / 3;

/// Scalar reference: `C (=|+=) A·B` in the kernel's order (std::fma, p = 0…k−1), then the
/// epilogue in the kernel's order.
template <class T>
void gemm_reference(index_t m, index_t n, index_t k, const T* A, index_t rsa, index_t csa,
                    const T* B, index_t ldb, T* C, index_t ldc, bool accumulate,
                    gemm_epilogue epi = {}) noexcept {
  const T* bias = static_cast<const T*>(epi.bias);
  const T* scale = static_cast<const T*>(epi.row_scale);
  const T* shift = static_cast<const T*>(epi.row_shift);
  const T* Y = static_cast<const T*>(epi.rows);
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < n; ++j) {
      T c = accumulate ? C[i * ldc + j] : T(0);
      for (index_t p = 0; p < k; ++p) c = std::fma(A[i * rsa + p * csa], B[p * ldb + j], c);
      if (bias) c += bias[j];
      if (epi.relu) c = c > T(0) ? c : T(0);
      if (scale)
        c = std::fma(shift[i], Y[i * epi.ldy + j],
                     std::fma(scale[i], c, epi.add ? C[i * ldc + j] : T(0)));
      C[i * ldc + j] = c;
    }
}

/// Whether `gemm` suits `n` output columns: any `n` > 0, since the column tail runs the vector
/// tile too (before stop 17 it ran the scalar reference, whose `std::fma` is a slow software
/// routine in a portable SSE2 build, and callers used Eigen for such `n` there).
template <class T>
constexpr bool gemm_kernel_suits(index_t n) noexcept {
  return n > 0;
}

/// Elements of a packed `k × n` B (`gemm_pack_b`): exactly `k · n`.
constexpr index_t gemm_packed_size(index_t k, index_t n) noexcept {
  return k * n;
}

/**
 * Packs `B` (k × n, element (p, j) at `B[p·rsb + j·csb]`) for `gemm`: column panels of
 * `NR` = 2 batches, then one of one batch, then the scalar tail; the panel starting at column
 * `j0` of width `w` holds `Bp[j0·k + p·w + c]` = B(p, j0 + c).
 */
template <class T>
void gemm_pack_b(T* Bp, const T* B, index_t rsb, index_t csb, index_t k, index_t n) noexcept {
  constexpr index_t W = simd::width<T>, NR = gemm_nv * W;
  const index_t n_full = n - n % NR, n_vec = n - n % W;
  const auto panel = [&](index_t j0, index_t w) {
    T* dst = Bp + j0 * k;
    for (index_t p = 0; p < k; ++p)
      for (index_t c = 0; c < w; ++c) dst[p * w + c] = B[p * rsb + (j0 + c) * csb];
  };
  for (index_t j = 0; j < n_full; j += NR) panel(j, NR);
  for (index_t j = n_full; j < n_vec; j += W) panel(j, W);
  if (n_vec < n) panel(n_vec, n - n_vec);
}

/**
 * `C (m × n) = A·B` (`accumulate` false) or `C += A·B`, then the epilogue (bias, ReLU, or the
 * row combination), with `Bp` = `gemm_pack_b(B)`. Equal to `gemm_reference` on B (see the file
 * comment). Never allocates.
 * Preconditions of the row combination: `k ≤ gemm_kc`, `accumulate` false, no bias or ReLU.
 */
template <class T>
void gemm(index_t m, index_t n, index_t k, const T* A, index_t rsa, index_t csa, const T* Bp, T* C,
          index_t ldc, bool accumulate, gemm_epilogue epi = {}) noexcept {
  constexpr index_t W = simd::width<T>, NV = gemm_nv, NR = NV * W, MR = gemm_mr<T>;
  const T* bias = static_cast<const T*>(epi.bias);
  assert(!epi.row_scale || (k <= gemm_kc && !accumulate && !bias && !epi.relu));
  if (m == 0 || n == 0) return;
  if (k == 0) {  // only the epilogue
    gemm_reference(m, n, 0, A, rsa, csa, Bp, n, C, ldc, accumulate, epi);
    return;
  }
  const index_t n_full = n - n % NR, n_vec = n - n % W, w = n - n_vec;
  // The column tail runs fused with the one-batch panel before it, or else with the last full
  // panel where the registers hold an 8 × 3 tile (32-register ISAs); 0 = alone.
  const index_t nvf = w == 0 ? 0 : n_vec > n_full ? 1 : (n_full >= NR && gemm_mr<T> == 12) ? 2 : 0;
  const index_t j_fused = n_vec - nvf * W;  // first column of the fused panel
  for (index_t p0 = 0; p0 < k; p0 += gemm_kc) {
    const index_t kc = std::min(gemm_kc, k - p0);
    const bool load_c = accumulate || p0 > 0, last = p0 + kc == k;
    gemm_tile_epilogue<T> e;
    if (last) {
      e.bias = bias;
      e.relu = epi.relu;
      e.scale = static_cast<const T*>(epi.row_scale);
      e.shift = static_cast<const T*>(epi.row_shift);
      e.Y = static_cast<const T*>(epi.rows);
      e.ldy = epi.ldy;
      e.add = epi.add;
    }
    gemm_rows<T, MR>(m, nvf == 2 ? j_fused : n_full, w > 0 ? j_fused : n_vec, k, p0, kc,
                     A + p0 * csa, rsa, csa, Bp, C, ldc, load_c, e);
    if (w > 0) {
      const T* tail = Bp + n_vec * k + p0 * w;  // kc × w, row stride w
      alignas(simd_alignment) T Bw[gemm_kc * W];
      for (index_t p = 0; p < kc; ++p) {
        std::copy_n(tail + p * w, w, Bw + p * W);
        std::fill(Bw + p * W + w, Bw + (p + 1) * W, T(0));
      }
      const T* Bf = Bp + j_fused * k + p0 * nvf * W;  // the fused panel's rows, stride nvf·W
      const T* Ap = A + p0 * csa;
      T* Cf = C + j_fused;
      const auto ef = e.at(0, j_fused);
      if (nvf == 2)
        gemm_tail_rows<T, gemm_tail_mr<T, 2>, 2>(m, kc, w, Ap, rsa, csa, Bf, 2 * W, Bw, Cf, ldc,
                                                 load_c, ef);
      else if (nvf == 1)
        gemm_tail_rows<T, gemm_tail_mr<T, 1>, 1>(m, kc, w, Ap, rsa, csa, Bf, W, Bw, Cf, ldc, load_c,
                                                 ef);
      else
        gemm_tail_rows<T, gemm_tail_mr<T, 0>, 0>(m, kc, w, Ap, rsa, csa, Bf, 0, Bw, Cf, ldc, load_c,
                                                 ef);
    }
  }
}

}  // namespace zss::detail
