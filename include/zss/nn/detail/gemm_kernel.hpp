// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/nn/detail/gemm_kernel.hpp
 * A register-blocked single-threaded GEMM for the convolution's thin shapes (issue #16):
 * `C (m × n) = A (m × k) · B (k × n)` or `C += A·B`, with an optional fused epilogue
 * `C = max(C + bias, 0)` / `C += bias` applied while the tile is still in registers.
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
 * classes of `BM_CosineCE` under AVX-512) runs the same tile on one batch: its `kc × w` panel
 * is copied zero-padded to `W` columns once per reduction block (16 KB on the stack) and each
 * row of `C` goes through a `W`-element buffer, so the tail costs what a full batch costs
 * instead of a latency-bound scalar chain per element (that was 80 % of `BM_CosineCE` on a
 * Xeon with AVX-512, 42 ms → bench/README.md, stop 17).
 *
 * Why our own kernel rather than Eigen's GEMM (measured on the encoder, bench/README.md,
 * `BM_Conv*`): Eigen packs both operands on every call; the convolution calls it once per
 * im2col tile with the same weights, and its blocking targets large square products, not
 * m ≈ 100–500, n = 32–128, k = 27–1152. This kernel packs the weights once per layer call,
 * never packs the column matrix (read in place), and fuses bias + ReLU; see the measurements
 * quoted in conv2d.hpp.
 */
#include <algorithm>
#include <cmath>

#include "zss/core/config.hpp"
#include "zss/core/simd.hpp"

namespace zss::detail {

/// Reduction steps per block (the `kc × NR` panel of B: 256 × 16 floats = 16 KB under AVX2).
inline constexpr index_t gemm_kc = 256;

/// What the GEMM does to each finished element of C (after the last reduction block).
struct gemm_epilogue {
  const void* bias = nullptr;  ///< n values added to every row (T*), or null
  bool relu = false;           ///< then max(·, 0)
};

/// Rows of the register tile for scalar `T` on the default architecture.
template <class T>
inline constexpr index_t gemm_mr = simd::width<T> * sizeof(T) == 64 ? 12 : 6;
/// Batches per row of the register tile.
inline constexpr index_t gemm_nv = 2;

template <class T, index_t MR, index_t NV>
inline void gemm_micro(index_t k, const T* A, index_t rsa, index_t csa, const T* B, index_t ldb,
                       T* C, index_t ldc, bool load_c, const T* bias, bool relu) noexcept {
  using b_t = simd::batch<T>;
  constexpr index_t W = b_t::size;
  b_t c[MR][NV];
  for (index_t r = 0; r < MR; ++r)
    for (index_t v = 0; v < NV; ++v)
      c[r][v] = load_c ? b_t::load_unaligned(C + r * ldc + v * W) : b_t(T(0));
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
  if (bias) {
    for (index_t v = 0; v < NV; ++v) {
      const b_t bv = b_t::load_unaligned(bias + v * W);
      for (index_t r = 0; r < MR; ++r) c[r][v] = c[r][v] + bv;
    }
  }
  if (relu) {
    const b_t zero(T(0));
    for (index_t r = 0; r < MR; ++r)
      for (index_t v = 0; v < NV; ++v) c[r][v] = xsimd::max(c[r][v], zero);
  }
  for (index_t r = 0; r < MR; ++r)
    for (index_t v = 0; v < NV; ++v) c[r][v].store_unaligned(C + r * ldc + v * W);
}

// One block of MR rows across all column panels of the packed B (reduction steps
// [p0, p0 + kc) of k), then the one-batch panel.
template <class T, index_t MR>
inline void gemm_row_block(index_t n_full, index_t n_vec, index_t k, index_t p0, index_t kc,
                           const T* A, index_t rsa, index_t csa, const T* Bp, T* C, index_t ldc,
                           bool load_c, const T* bias, bool relu) noexcept {
  constexpr index_t W = simd::width<T>, NR = gemm_nv * W;
  for (index_t j = 0; j < n_full; j += NR)
    gemm_micro<T, MR, gemm_nv>(kc, A, rsa, csa, Bp + j * k + p0 * NR, NR, C + j, ldc, load_c,
                               bias ? bias + j : nullptr, relu);
  for (index_t j = n_full; j < n_vec; j += W)
    gemm_micro<T, MR, 1>(kc, A, rsa, csa, Bp + j * k + p0 * W, W, C + j, ldc, load_c,
                         bias ? bias + j : nullptr, relu);
}

// Rows [0, m): MR rows at a time, then the row tail with smaller tiles.
template <class T, index_t MR>
inline void gemm_rows(index_t m, index_t n_full, index_t n_vec, index_t k, index_t p0, index_t kc,
                      const T* A, index_t rsa, index_t csa, const T* Bp, T* C, index_t ldc,
                      bool load_c, const T* bias, bool relu) noexcept {
  index_t i = 0;
  for (; i + MR <= m; i += MR)
    gemm_row_block<T, MR>(n_full, n_vec, k, p0, kc, A + i * rsa, rsa, csa, Bp, C + i * ldc, ldc,
                          load_c, bias, relu);
  if constexpr (MR > 1) {
    if (i < m)
      gemm_rows<T, (MR + 1) / 2>(m - i, n_full, n_vec, k, p0, kc, A + i * rsa, rsa, csa, Bp,
                                 C + i * ldc, ldc, load_c, bias, relu);
  }
}

// The column tail: MR rows × one batch of which the first `w` lanes are columns of C. `Bw` is
// the tail's `kc × W` panel padded with zeros (row stride W); C and the bias pass through
// W-element buffers, so nothing beyond column w is read or written.
template <class T, index_t MR>
inline void gemm_micro_tail(index_t kc, index_t w, const T* A, index_t rsa, index_t csa,
                            const T* Bw, T* C, index_t ldc, bool load_c, const T* bias,
                            bool relu) noexcept {
  using b_t = simd::batch<T>;
  constexpr index_t W = b_t::size;
  alignas(simd_alignment) T buf[W] = {};
  b_t c[MR];
  for (index_t r = 0; r < MR; ++r) {
    if (load_c) std::copy_n(C + r * ldc, w, buf);
    c[r] = load_c ? b_t::load_aligned(buf) : b_t(T(0));
  }
  for (index_t p = 0; p < kc; ++p) {
    const b_t b = b_t::load_aligned(Bw + p * W);
    const T* ap = A + p * csa;
    for (index_t r = 0; r < MR; ++r) c[r] = simd::fma(b_t(ap[r * rsa]), b, c[r]);
  }
  if (bias) {
    std::copy_n(bias, w, buf);
    const b_t bv = b_t::load_aligned(buf);
    for (index_t r = 0; r < MR; ++r) c[r] = c[r] + bv;
  }
  if (relu)
    for (index_t r = 0; r < MR; ++r) c[r] = xsimd::max(c[r], b_t(T(0)));
  for (index_t r = 0; r < MR; ++r) {
    c[r].store_aligned(buf);
    std::copy_n(buf, w, C + r * ldc);
  }
}

template <class T, index_t MR>
inline void gemm_tail_rows(index_t m, index_t kc, index_t w, const T* A, index_t rsa, index_t csa,
                           const T* Bw, T* C, index_t ldc, bool load_c, const T* bias,
                           bool relu) noexcept {
  index_t i = 0;
  for (; i + MR <= m; i += MR)
    gemm_micro_tail<T, MR>(kc, w, A + i * rsa, rsa, csa, Bw, C + i * ldc, ldc, load_c, bias, relu);
  if constexpr (MR > 1) {
    if (i < m)
      gemm_tail_rows<T, (MR + 1) / 2>(m - i, kc, w, A + i * rsa, rsa, csa, Bw, C + i * ldc, ldc,
                                      load_c, bias, relu);
  }
}

/// Scalar reference: `C (=|+=) A·B` in the kernel's order (std::fma, p = 0…k−1).
template <class T>
void gemm_reference(index_t m, index_t n, index_t k, const T* A, index_t rsa, index_t csa,
                    const T* B, index_t ldb, T* C, index_t ldc, bool accumulate,
                    gemm_epilogue epi = {}) noexcept {
  const T* bias = static_cast<const T*>(epi.bias);
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < n; ++j) {
      T c = accumulate ? C[i * ldc + j] : T(0);
      for (index_t p = 0; p < k; ++p) c = std::fma(A[i * rsa + p * csa], B[p * ldb + j], c);
      if (bias) c += bias[j];
      if (epi.relu) c = c > T(0) ? c : T(0);
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
 * `C (m × n) = A·B` (`accumulate` false) or `C += A·B`, then the epilogue (bias, ReLU), with
 * `Bp` = `gemm_pack_b(B)`. Equal to `gemm_reference` on B (see the file comment). Never
 * allocates.
 */
template <class T>
void gemm(index_t m, index_t n, index_t k, const T* A, index_t rsa, index_t csa, const T* Bp, T* C,
          index_t ldc, bool accumulate, gemm_epilogue epi = {}) noexcept {
  constexpr index_t W = simd::width<T>, NV = gemm_nv, NR = NV * W, MR = gemm_mr<T>;
  const T* bias = static_cast<const T*>(epi.bias);
  if (m == 0 || n == 0) return;
  if (k == 0) {  // only the epilogue
    gemm_reference(m, n, 0, A, rsa, csa, Bp, n, C, ldc, accumulate, epi);
    return;
  }
  const index_t n_full = n - n % NR, n_vec = n - n % W;
  for (index_t p0 = 0; p0 < k; p0 += gemm_kc) {
    const index_t kc = std::min(gemm_kc, k - p0);
    const bool load_c = accumulate || p0 > 0, last = p0 + kc == k;
    gemm_rows<T, MR>(m, n_full, n_vec, k, p0, kc, A + p0 * csa, rsa, csa, Bp, C, ldc, load_c,
                     last ? bias : nullptr, last && epi.relu);
    if (n_vec < n) {
      const index_t w = n - n_vec;
      const T* tail = Bp + n_vec * k + p0 * w;  // kc × w, row stride w
      alignas(simd_alignment) T Bw[gemm_kc * W];
      for (index_t p = 0; p < kc; ++p) {
        std::copy_n(tail + p * w, w, Bw + p * W);
        std::fill(Bw + p * W + w, Bw + (p + 1) * W, T(0));
      }
      gemm_tail_rows<T, MR>(m, kc, w, A + p0 * csa, rsa, csa, Bw, C + n_vec, ldc, load_c,
                            last && bias ? bias + n_vec : nullptr, last && epi.relu);
    }
  }
}

}  // namespace zss::detail
