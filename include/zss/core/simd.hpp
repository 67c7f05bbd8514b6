// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/core/simd.hpp
 * The xsimd 8.1 compatibility layer and the core vector kernels, each with a scalar reference.
 *
 * Debian 12 ships xsimd 8.1, whose horizontal sum is `xsimd::hadd` (renamed `reduce_add` in
 * 9.0) and which has no `reduce_min`/`reduce_max`; `reduce_add`, `reduce_min` and `reduce_max`
 * below hide the difference. Kernels use the default architecture of the translation unit
 * (`xsimd::default_arch`: AVX-512 under `-march=native` on this machine, SSE2 in a portable
 * build), so the same code is tested at both widths.
 *
 * Kernels take raw pointers and a length `n`; any alignment is accepted. Reductions keep four
 * independent accumulators (FMA latency) and reduce them in a fixed order, so a result depends
 * only on `n` and the data, never on threads. Every kernel has a plain loop in `zss::simd::ref`
 * that the tests compare against: exactly on integer-valued inputs (every partial sum exact),
 * within a few ulps per element on random ones.
 *
 * NaN: kernels do not look for NaN; `argmin`/`argmax` on data with NaN return an unspecified
 * index. Public entry points check finiteness when asked (`check_finite`).
 */
#include <array>
#include <cmath>
#include <cstddef>
#include <string>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "zss/core/config.hpp"

namespace zss::simd {

/// The batch type used by zss kernels for scalar `T` (default architecture).
template <class T>
using batch = xsimd::batch<T>;

/// Lanes in one batch of `T` (16 floats under AVX-512).
template <class T>
inline constexpr index_t width = batch<T>::size;

/// Name of the SIMD architecture kernels are compiled for ("avx512bw", "sse2", ...).
inline std::string arch_name() {
  return xsimd::default_arch::name();
}

/// The xsimd version the headers were compiled against, "8.1.0".
inline std::string xsimd_version() {
  return std::to_string(XSIMD_VERSION_MAJOR) + "." + std::to_string(XSIMD_VERSION_MINOR) + "." +
         std::to_string(XSIMD_VERSION_PATCH);
}

/// Horizontal sum of a batch (`hadd` in xsimd < 9, `reduce_add` from 9).
template <class T, class A>
inline T reduce_add(const xsimd::batch<T, A>& b) noexcept {
#if XSIMD_VERSION_MAJOR < 9
  return xsimd::hadd(b);
#else
  return xsimd::reduce_add(b);
#endif
}

/// Horizontal minimum of a batch (xsimd < 9 has none: store and scan).
template <class T, class A>
inline T reduce_min(const xsimd::batch<T, A>& b) noexcept {
#if XSIMD_VERSION_MAJOR < 9
  alignas(simd_alignment) std::array<T, xsimd::batch<T, A>::size> lane;
  b.store_aligned(lane.data());
  T m = lane[0];
  for (std::size_t i = 1; i < lane.size(); ++i) m = lane[i] < m ? lane[i] : m;
  return m;
#else
  return xsimd::reduce_min(b);
#endif
}

/// Horizontal maximum of a batch.
template <class T, class A>
inline T reduce_max(const xsimd::batch<T, A>& b) noexcept {
#if XSIMD_VERSION_MAJOR < 9
  alignas(simd_alignment) std::array<T, xsimd::batch<T, A>::size> lane;
  b.store_aligned(lane.data());
  T m = lane[0];
  for (std::size_t i = 1; i < lane.size(); ++i) m = lane[i] > m ? lane[i] : m;
  return m;
#else
  return xsimd::reduce_max(b);
#endif
}

/// out[a] = the sum of the lanes of acc[a], for W = width batches: W horizontal sums at once.
/// Under AVX-512 (float) a transposing tree, four levels of lane shuffles and adds (30 shuffles
/// and 15 adds for all 16 sums, against 16 separate reductions of 4 shuffles and 4 adds each);
/// elsewhere `reduce_add` per batch. Each sum is a fixed tree over its batch's lanes, so it
/// depends on neither the caller's tiling nor its thread count (the order differs from
/// `reduce_add`'s).
template <class T, class A>
inline void reduce_add_each(const xsimd::batch<T, A>* acc, T* out) noexcept {
  constexpr int W = static_cast<int>(xsimd::batch<T, A>::size);
#if defined(__AVX512F__) && XSIMD_VERSION_MAJOR < 9
  if constexpr (std::is_base_of_v<xsimd::avx512f, A> && std::is_same_v<T, float>) {
    // The tree leaves the sum of input p[j] in lane j, p = the 4 × 4 transpose of lane indices,
    // its own inverse: feeding input j = acc[p[j]] puts acc[j]'s sum in lane j.
    constexpr int p[16] = {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15};
    __m512 u[8], w[4], x[2];
    for (int i = 0; i < 8; ++i) {  // 128-bit halves: each 256-bit half now holds one input
      const __m512 a = acc[p[2 * i]], b = acc[p[2 * i + 1]];
      u[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
    }
    for (int i = 0; i < 4; ++i)  // each 128-bit lane holds one input's 4 partial sums
      w[i] = _mm512_add_ps(_mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], 0x88),
                           _mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], 0xDD));
    for (int i = 0; i < 2; ++i)  // 2 partial sums of 2 inputs per 128-bit lane
      x[i] = _mm512_add_ps(_mm512_shuffle_ps(w[2 * i], w[2 * i + 1], 0x44),
                           _mm512_shuffle_ps(w[2 * i], w[2 * i + 1], 0xEE));
    _mm512_storeu_ps(out, _mm512_add_ps(_mm512_shuffle_ps(x[0], x[1], 0x88),
                                        _mm512_shuffle_ps(x[0], x[1], 0xDD)));
    return;
  }
#endif
  for (int a = 0; a < W; ++a) out[a] = reduce_add(acc[a]);
}

/// The first `w` elements at `p` (0 ≤ w ≤ W) in the low lanes, zeros above; nothing beyond
/// `p + w` is read. Under AVX-512 a masked load; elsewhere through a W-element buffer.
template <class T>
inline batch<T> load_partial(const T* p, index_t w) noexcept {
#if defined(__AVX512F__) && XSIMD_VERSION_MAJOR < 9
  if constexpr (std::is_base_of_v<xsimd::avx512f, xsimd::default_arch> && std::is_same_v<T, float>)
    return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << w) - 1u), p);
  else if constexpr (std::is_base_of_v<xsimd::avx512f, xsimd::default_arch> &&
                     std::is_same_v<T, double>)
    return _mm512_maskz_loadu_pd(static_cast<__mmask8>((1u << w) - 1u), p);
  else
#endif
  {
    alignas(simd_alignment) T buf[width<T>] = {};
    for (index_t i = 0; i < w; ++i) buf[i] = p[i];
    return batch<T>::load_aligned(buf);
  }
}

/// Stores the low `w` lanes of `v` to `p` (0 ≤ w ≤ W); nothing beyond `p + w` is written.
template <class T>
inline void store_partial(const batch<T>& v, T* p, index_t w) noexcept {
#if defined(__AVX512F__) && XSIMD_VERSION_MAJOR < 9
  if constexpr (std::is_base_of_v<xsimd::avx512f, xsimd::default_arch> && std::is_same_v<T, float>)
    _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << w) - 1u), v);
  else if constexpr (std::is_base_of_v<xsimd::avx512f, xsimd::default_arch> &&
                     std::is_same_v<T, double>)
    _mm512_mask_storeu_pd(p, static_cast<__mmask8>((1u << w) - 1u), v);
  else
#endif
  {
    alignas(simd_alignment) T buf[width<T>];
    v.store_aligned(buf);
    for (index_t i = 0; i < w; ++i) p[i] = buf[i];
  }
}

/// a·b + c with one rounding. xsimd 8.1 has no AVX-512 `fma` of its own: its generic `x * y + z`
/// is fused only where the compiler contracts it (GCC at -O2 and above, not at the sanitizer
/// build's -O1, found in stop 17), so under AVX-512 this calls the intrinsic. Elsewhere it is
/// xsimd's: FMA3 intrinsics on AVX2, a product then a sum on SSE2 (no FMA there).
template <class T, class A>
inline xsimd::batch<T, A> fma(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& b,
                              const xsimd::batch<T, A>& c) noexcept {
#if defined(__AVX512F__) && XSIMD_VERSION_MAJOR < 9
  if constexpr (std::is_base_of_v<xsimd::avx512f, A> && std::is_same_v<T, float>)
    return _mm512_fmadd_ps(a, b, c);
  else if constexpr (std::is_base_of_v<xsimd::avx512f, A> && std::is_same_v<T, double>)
    return _mm512_fmadd_pd(a, b, c);
  else
#endif
    return xsimd::fma(a, b, c);
}

namespace detail {
/// Sum of f(i) over batches with four accumulators, then a scalar tail; fixed order.
template <class T, class VecF, class ScalarF>
inline T accumulate4(index_t n, VecF&& vec, ScalarF&& scalar) noexcept {
  constexpr index_t W = width<T>;
  batch<T> a0(T(0)), a1(T(0)), a2(T(0)), a3(T(0));
  index_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    a0 = vec(i, a0);
    a1 = vec(i + W, a1);
    a2 = vec(i + 2 * W, a2);
    a3 = vec(i + 3 * W, a3);
  }
  for (; i + W <= n; i += W) a0 = vec(i, a0);
  T s = reduce_add((a0 + a1) + (a2 + a3));
  for (; i < n; ++i) s = scalar(i, s);
  return s;
}
}  // namespace detail

/// ⟨a, b⟩ over `n` elements.
template <real_scalar T>
inline T dot(const T* a, const T* b, index_t n) noexcept {
  return detail::accumulate4<T>(
      n,
      [&](index_t i, batch<T> acc) {
        return simd::fma(batch<T>::load_unaligned(a + i), batch<T>::load_unaligned(b + i), acc);
      },
      [&](index_t i, T s) { return s + a[i] * b[i]; });
}

/// ‖a‖² over `n` elements.
template <real_scalar T>
inline T squared_norm(const T* a, index_t n) noexcept {
  return detail::accumulate4<T>(
      n,
      [&](index_t i, batch<T> acc) {
        auto x = batch<T>::load_unaligned(a + i);
        return simd::fma(x, x, acc);
      },
      [&](index_t i, T s) { return s + a[i] * a[i]; });
}

/// ‖a − b‖² over `n` elements.
template <real_scalar T>
inline T squared_distance(const T* a, const T* b, index_t n) noexcept {
  return detail::accumulate4<T>(
      n,
      [&](index_t i, batch<T> acc) {
        auto d = batch<T>::load_unaligned(a + i) - batch<T>::load_unaligned(b + i);
        return simd::fma(d, d, acc);
      },
      [&](index_t i, T s) {
        T d = a[i] - b[i];
        return s + d * d;
      });
}

/// y ← y + alpha·x over `n` elements.
template <real_scalar T>
inline void axpy(T alpha, const T* x, T* y, index_t n) noexcept {
  constexpr index_t W = width<T>;
  const batch<T> va(alpha);
  index_t i = 0;
  for (; i + W <= n; i += W)
    simd::fma(va, batch<T>::load_unaligned(x + i), batch<T>::load_unaligned(y + i))
        .store_unaligned(y + i);
  for (; i < n; ++i) y[i] += alpha * x[i];
}

/// y ← alpha·y over `n` elements.
template <real_scalar T>
inline void scale(T alpha, T* y, index_t n) noexcept {
  constexpr index_t W = width<T>;
  const batch<T> va(alpha);
  index_t i = 0;
  for (; i + W <= n; i += W) (va * batch<T>::load_unaligned(y + i)).store_unaligned(y + i);
  for (; i < n; ++i) y[i] *= alpha;
}

namespace detail {
/// Index of the first element of `x[0..n)` that is better than all before it under `better`
/// (strict), i.e. ties go to the lowest index. Vector blocks are skipped unless one lane can
/// improve the current best, so random data costs one compare per element.
template <class T, class VecBetter, class Better>
inline index_t arg_best(const T* x, index_t n, VecBetter&& vbetter, Better&& better) noexcept {
  if (n == 0) return 0;
  constexpr index_t W = width<T>;
  index_t best_i = 0;
  T best = x[0];
  index_t i = 1;
  // Scalar up to the first full batch boundary keeps the vector loop simple.
  for (; i < n && i < W; ++i)
    if (better(x[i], best)) best = x[i], best_i = i;
  for (; i + W <= n; i += W) {
    const auto v = batch<T>::load_unaligned(x + i);
    if (xsimd::any(vbetter(v, batch<T>(best)))) {
      for (index_t j = i; j < i + W; ++j)
        if (better(x[j], best)) best = x[j], best_i = j;
    }
  }
  for (; i < n; ++i)
    if (better(x[i], best)) best = x[i], best_i = i;
  return best_i;
}
}  // namespace detail

/// Index of the smallest of `x[0..n)`, ties to the lowest index; 0 when `n` is 0.
template <real_scalar T>
inline index_t argmin(const T* x, index_t n) noexcept {
  return detail::arg_best(
      x, n, [](const batch<T>& a, const batch<T>& b) { return a < b; },
      [](T a, T b) { return a < b; });
}

/// Index of the largest of `x[0..n)`, ties to the lowest index; 0 when `n` is 0.
template <real_scalar T>
inline index_t argmax(const T* x, index_t n) noexcept {
  return detail::arg_best(
      x, n, [](const batch<T>& a, const batch<T>& b) { return a > b; },
      [](T a, T b) { return a > b; });
}

/// max of `x[0..n)` (`n` ≥ 1).
template <real_scalar T>
inline T max_value(const T* x, index_t n) noexcept {
  constexpr index_t W = width<T>;
  index_t i = 0;
  T m = x[0];
  if (n >= W) {
    batch<T> vm = batch<T>::load_unaligned(x);
    for (i = W; i + W <= n; i += W) vm = xsimd::max(vm, batch<T>::load_unaligned(x + i));
    m = reduce_max(vm);
  }
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

/// Plain loops: the references the SIMD kernels are tested against.
namespace ref {
template <real_scalar T>
T dot(const T* a, const T* b, index_t n) noexcept {
  T s = 0;
  for (index_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}
template <real_scalar T>
T squared_norm(const T* a, index_t n) noexcept {
  return dot(a, a, n);
}
template <real_scalar T>
T squared_distance(const T* a, const T* b, index_t n) noexcept {
  T s = 0;
  for (index_t i = 0; i < n; ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
  return s;
}
template <real_scalar T>
void axpy(T alpha, const T* x, T* y, index_t n) noexcept {
  for (index_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}
template <real_scalar T>
void scale(T alpha, T* y, index_t n) noexcept {
  for (index_t i = 0; i < n; ++i) y[i] *= alpha;
}
template <real_scalar T>
index_t argmin(const T* x, index_t n) noexcept {
  index_t b = 0;
  for (index_t i = 1; i < n; ++i)
    if (x[i] < x[b]) b = i;
  return b;
}
template <real_scalar T>
index_t argmax(const T* x, index_t n) noexcept {
  index_t b = 0;
  for (index_t i = 1; i < n; ++i)
    if (x[i] > x[b]) b = i;
  return b;
}
template <real_scalar T>
T max_value(const T* x, index_t n) noexcept {
  return x[argmax(x, n)];
}
}  // namespace ref

}  // namespace zss::simd
