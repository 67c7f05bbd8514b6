// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/cluster/centroid_panel.hpp
 * The packed centroid panel and the register-tiled distance kernel behind Lloyd's step and
 * k-means++ (PERFORMANCE.md §1.5, DESIGN.md §6).
 *
 * Legend: N points (rows of X), D width, K centroids, W SIMD lanes, Kp = K rounded up to W.
 *
 * Distances use ‖x − c‖² = ‖x‖² + (‖c‖² − 2⟨x, c⟩); the kernel computes the bracket only (‖x‖²
 * does not change an argmin). The centroids are packed once per step as a D × Kp panel of
 * −2·c (column k = centroid k, padding columns 0) plus a Kp vector of ‖c‖² (padding +∞, so a
 * padding column never wins). A tile of R rows × CB batches of centroids keeps R·CB
 * accumulators in registers (24 of AVX-512's 32, 12 of AVX2's 16) and walks d = 0..D−1 once: per d,
 * CB aligned panel loads shared by R rows and R broadcasts of x. Each distance is one FMA chain in
 * d order, so its value does not depend on the tiling or on the thread count. The argmin runs in
 * registers (lane-wise select, then one horizontal min), ties to the lowest index.
 *
 * Small K (K rounded up to a power of two, Kc, at most W/2): lanes over centroids would sit
 * mostly idle, so the centroids are instead kept as Kc zero-padded rows and a tile of R = W/Kc
 * points × Kc centroids accumulates W vertical dot products over D, each reduced horizontally
 * once at the end. Per point that is K·D/W FMAs instead of D. A
 * distance is then a fixed sum over D's lanes, again independent of tiling and threads.
 */
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "zss/core/aligned.hpp"
#include "zss/core/simd.hpp"
#include "zss/core/tensor.hpp"

namespace zss {

/**
 * K centroids packed for the distance kernel: a D × Kp panel of −2·c and Kp squared norms.
 * `pack` reuses its storage when it is large enough: no allocation per Lloyd step.
 * @tparam T float or double.
 */
template <real_scalar T>
class centroid_panel {
 public:
  static constexpr index_t W = simd::width<T>;

  /// Packs `C` (K × D, any row stride). K ≥ 1.
  void pack(matrix_ref<const T> C) {
    k_ = C.rows;
    d_ = C.cols;
    kp_ = round_up(std::max<index_t>(k_, 1), W);
    kc_ = 1;
    while (kc_ < k_) kc_ *= 2;
    small_ = kc_ <= W / 2;
    norms_.assign(kp_, std::numeric_limits<T>::infinity());
    for (index_t k = 0; k < k_; ++k) norms_[k] = simd::squared_norm(C.row(k), d_);
    if (small_) {
      dp_ = round_up(std::max<index_t>(d_, 1), W);
      rows_.assign(kc_ * dp_, T(0));
      for (index_t k = 0; k < k_; ++k) std::copy_n(C.row(k), d_, rows_.data() + k * dp_);
    } else {
      panel_.assign(d_ * kp_, T(0));
      for (index_t k = 0; k < k_; ++k) {
        const T* c = C.row(k);
        for (index_t j = 0; j < d_; ++j) panel_[j * kp_ + k] = T(-2) * c[j];
      }
    }
  }

  index_t k() const noexcept { return k_; }
  index_t d() const noexcept { return d_; }
  index_t kp() const noexcept { return kp_; }
  const T* panel() const noexcept {
    return panel_.data();
  }  ///< D × Kp, row j = −2·(c_0[j], …, c_{K−1}[j], 0…)
  const T* norms() const noexcept { return norms_.data(); }  ///< Kp: ‖c_k‖², +∞ in the padding
  bool small() const noexcept { return small_; }  ///< the small-K layout (rows) is in use
  index_t kc() const noexcept { return kc_; }     ///< K rounded up to a power of two
  index_t dp() const noexcept { return dp_; }     ///< row stride of `rows()` (D rounded up to W)
  const T* rows() const noexcept {
    return rows_.data();
  }  ///< small K: Kc × Dp centroids, zero-padded

 private:
  index_t k_ = 0, d_ = 0, kp_ = 0, kc_ = 1, dp_ = 0;
  bool small_ = false;
  aligned_vector<T> panel_, norms_, rows_;
};

namespace detail {

/// out[i − b] = ‖x_i‖² for rows b … e − 1 of X, as `simd::squared_norm` computes them: the one
/// definition the distance kernels' callers (k-means++, the Lloyd workspace, kmeans_batch)
/// share, so norms computed by one of them are bitwise those another would compute.
template <real_scalar T>
inline void row_squared_norms(matrix_ref<const T> X, index_t b, index_t e, T* out) noexcept {
  for (index_t i = b; i < e; ++i) out[i - b] = simd::squared_norm(X.row(i), X.cols);
}

/// Register budget of the tile: R rows × CB batches of accumulators. AVX2: 6 × 2 accumulators,
/// 2 panel loads and one broadcast fill 15 of the 16 registers; 4 × 2 (the first choice) ran
/// 1.3–1.5× slower on Zen 3 (docs/EXPERIMENTS.md, stop 16), too few FMA chains to hide latency.
template <class T>
struct tile_shape {
  static constexpr index_t W = simd::width<T>;
  static constexpr bool wide = W * sizeof(T) == 64;  // AVX-512: 32 vector registers, else 16
  static constexpr int max_cb = wide ? 4 : 2;
  static constexpr int budget = wide ? 24 : 12;
  static constexpr int rows_for(int cb) noexcept { return std::min(12, budget / cb); }
};

/// acc[r][c] = ‖c‖² − 2⟨x_r, c⟩ for the CB batches of centroids at `panel`/`norms` (offset
/// applied).
template <class T, int R, int CB>
inline void tile_distances(simd::batch<T> (&acc)[R][CB], const T* const (&x)[R], const T* panel,
                           index_t kp, index_t d, const T* norms) noexcept {
  using B = simd::batch<T>;
  constexpr index_t W = simd::width<T>;
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int c = 0; c < CB; ++c) acc[r][c] = B::load_aligned(norms + c * W);
  for (index_t j = 0; j < d; ++j) {
    const T* p = panel + j * kp;
    B pc[CB];
#pragma GCC unroll 4
    for (int c = 0; c < CB; ++c) pc[c] = B::load_aligned(p + c * W);
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      const B xb(x[r][j]);
#pragma GCC unroll 4
      for (int c = 0; c < CB; ++c) acc[r][c] = simd::fma(xb, pc[c], acc[r][c]);
    }
  }
}

/// Lane indices 0, 1, …, W−1 as T.
template <class T>
inline simd::batch<T> lane_iota() noexcept {
  alignas(simd_alignment) std::array<T, simd::width<T>> v;
  for (index_t i = 0; i < v.size(); ++i) v[i] = static_cast<T>(i);
  return simd::batch<T>::load_aligned(v.data());
}

/// Argmin over CB batches (value, index within the block), ties to the lowest index.
template <class T, int CB>
inline void block_argmin(const simd::batch<T> (&acc)[CB], const simd::batch<T>& iota, T& value,
                         index_t& index) noexcept {
  using B = simd::batch<T>;
  constexpr index_t W = simd::width<T>;
  B bv = acc[0], bi = iota;
#pragma GCC unroll 4
  for (int c = 1; c < CB; ++c) {
    const auto m = acc[c] < bv;  // strict: an equal later lane keeps the earlier index
    bv = xsimd::select(m, acc[c], bv);
    bi = xsimd::select(m, iota + B(static_cast<T>(c * W)), bi);
  }
  value = simd::reduce_min(bv);
  const T i = simd::reduce_min(xsimd::select(bv == B(value), bi, B(static_cast<T>(CB * W))));
  index = i < static_cast<T>(CB * W) ? static_cast<index_t>(i) : 0;  // NaN rows: any valid index
}

/// Rows [b, e) of X in tiles of R; per row calls `sink(i, k, v)` with the nearest centroid `k`
/// and `v` = ‖c_k‖² − 2⟨x_i, c_k⟩ (StoreAll = false), or `sink(i, const T* dist)` with all Kp
/// values of the row (StoreAll = true; `scratch` holds R·Kp values).
template <class T, int R, bool StoreAll, class Sink>
void panel_rows(const centroid_panel<T>& P, const_matrix_ref<T> X, index_t b, index_t e, T* scratch,
                Sink& sink) {
  constexpr index_t W = simd::width<T>;
  constexpr int max_cb = tile_shape<T>::max_cb;
  const index_t kp = P.kp(), d = P.d(), nb = kp / W;
  const auto iota = lane_iota<T>();
  for (index_t r0 = b; r0 < e; r0 += R) {
    const T* x[R];
    for (int r = 0; r < R; ++r)
      x[r] = X.row(std::min<index_t>(r0 + static_cast<index_t>(r), e - 1));
    T best_v[R];
    index_t best_k[R];
    for (index_t c0 = 0; c0 < nb; c0 += max_cb) {
      const int cb = static_cast<int>(std::min<index_t>(max_cb, nb - c0));
      const index_t col0 = c0 * W;
      auto run = [&](auto cb_tag) {
        constexpr int CB = decltype(cb_tag)::value;
        simd::batch<T> acc[R][CB];
        tile_distances<T, R, CB>(acc, x, P.panel() + col0, kp, d, P.norms() + col0);
        for (int r = 0; r < R; ++r) {
          if constexpr (StoreAll) {
            for (int c = 0; c < CB; ++c) acc[r][c].store_aligned(scratch + r * kp + col0 + c * W);
          } else {
            T v;
            index_t k;
            block_argmin<T, CB>(acc[r], iota, v, k);
            if (c0 == 0 || v < best_v[r]) best_v[r] = v, best_k[r] = col0 + k;
          }
        }
      };
      if constexpr (max_cb == 4) {
        switch (cb) {
          case 4:
            run(std::integral_constant<int, 4>{});
            break;
          case 3:
            run(std::integral_constant<int, 3>{});
            break;
          case 2:
            run(std::integral_constant<int, 2>{});
            break;
          default:
            run(std::integral_constant<int, 1>{});
            break;
        }
      } else {
        if (cb == 2)
          run(std::integral_constant<int, 2>{});
        else
          run(std::integral_constant<int, 1>{});
      }
    }
    const index_t rows = std::min<index_t>(R, e - r0);
    for (index_t r = 0; r < rows; ++r) {
      if constexpr (StoreAll)
        sink(r0 + r, static_cast<const T*>(scratch + r * kp));
      else
        sink(r0 + r, std::min(best_k[r], P.k() - 1), best_v[r]);
    }
  }
}

/// Small K: tiles of R = W/KC points × KC centroids, W vertical dot products, each reduced once.
template <class T, int KC, bool StoreAll, class Sink>
void small_k_rows(const centroid_panel<T>& P, const_matrix_ref<T> X, index_t b, index_t e,
                  T* scratch, Sink& sink) {
  using B = simd::batch<T>;
  constexpr int W = static_cast<int>(simd::width<T>);
  constexpr int R = W / KC;
  const index_t d = P.d(), dp = P.dp(), dfull = d / W * W, k = P.k();
  const T* crow = P.rows();
  const T* cn = P.norms();
  alignas(simd_alignment) T tail[R][W];
  T dots[W];
  for (index_t r0 = b; r0 < e; r0 += R) {
    const T* x[R];
    for (int r = 0; r < R; ++r)
      x[r] = X.row(std::min<index_t>(r0 + static_cast<index_t>(r), e - 1));
    B acc[W];
#pragma GCC unroll 16
    for (int a = 0; a < W; ++a) acc[a] = B(T(0));
    for (index_t j = 0; j < dfull; j += W) {
      B cv[KC];
#pragma GCC unroll 8
      for (int c = 0; c < KC; ++c) cv[c] = B::load_aligned(crow + c * dp + j);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const B xv = B::load_unaligned(x[r] + j);
#pragma GCC unroll 8
        for (int c = 0; c < KC; ++c) acc[r * KC + c] = simd::fma(xv, cv[c], acc[r * KC + c]);
      }
    }
    if (dfull < d) {  // the last partial batch of D, through a zero-padded copy of each row
      B cv[KC];
      for (int c = 0; c < KC; ++c) cv[c] = B::load_aligned(crow + c * dp + dfull);
      for (int r = 0; r < R; ++r) {
        std::fill(tail[r], tail[r] + W, T(0));
        std::copy(x[r] + dfull, x[r] + d, tail[r]);
        const B xv = B::load_aligned(tail[r]);
        for (int c = 0; c < KC; ++c) acc[r * KC + c] = simd::fma(xv, cv[c], acc[r * KC + c]);
      }
    }
    // dots[r·KC + c] = ⟨x_r, c⟩, all W sums at once (a transposing tree under AVX-512; xsimd
    // 8.1's own haddp returns its AVX-512 float sums in permuted lanes and trips GCC 12's
    // -Wuninitialized in the intrinsics).
    simd::reduce_add_each(acc, dots);
    const index_t rows = std::min<index_t>(R, e - r0);
    for (index_t r = 0; r < rows; ++r) {
      const T* dr = dots + r * KC;
      if constexpr (StoreAll) {
        for (index_t c = 0; c < P.kp(); ++c) scratch[c] = c < k ? cn[c] - T(2) * dr[c] : cn[c];
        sink(r0 + r, static_cast<const T*>(scratch));
      } else {
        index_t best = 0;
        T best_v = cn[0] - T(2) * dr[0];
        for (index_t c = 1; c < k; ++c) {
          const T v = cn[c] - T(2) * dr[c];
          if (v < best_v) best_v = v, best = c;
        }
        sink(r0 + r, best, best_v);
      }
    }
  }
}

/// Picks the row tile R from the number of centroid batches and runs `panel_rows` (or the small-K
/// kernel).
template <class T, bool StoreAll, class Sink>
void panel_dispatch(const centroid_panel<T>& P, const_matrix_ref<T> X, index_t b, index_t e,
                    T* scratch, Sink& sink) {
  if (P.small()) {
    constexpr index_t W = simd::width<T>;
    switch (P.kc()) {
      case 1:
        small_k_rows<T, 1, StoreAll>(P, X, b, e, scratch, sink);
        return;
      case 2:
        if constexpr (W >= 4) small_k_rows<T, 2, StoreAll>(P, X, b, e, scratch, sink);
        return;
      case 4:
        if constexpr (W >= 8) small_k_rows<T, 4, StoreAll>(P, X, b, e, scratch, sink);
        return;
      default:
        if constexpr (W >= 16) small_k_rows<T, 8, StoreAll>(P, X, b, e, scratch, sink);
        return;
    }
  }
  using S = tile_shape<T>;
  const int cb = static_cast<int>(std::min<index_t>(S::max_cb, P.kp() / simd::width<T>));
  constexpr int r1 = S::rows_for(1), r2 = S::rows_for(2), r3 = S::rows_for(S::max_cb > 2 ? 3 : 2),
                r4 = S::rows_for(S::max_cb);
  switch (cb) {
    case 1:
      panel_rows<T, r1, StoreAll>(P, X, b, e, scratch, sink);
      break;
    case 2:
      panel_rows<T, r2, StoreAll>(P, X, b, e, scratch, sink);
      break;
    case 3:
      panel_rows<T, r3, StoreAll>(P, X, b, e, scratch, sink);
      break;
    default:
      panel_rows<T, r4, StoreAll>(P, X, b, e, scratch, sink);
      break;
  }
}

/// Rows of `scratch` (Kp values each) the StoreAll kernels may use.
template <class T>
inline constexpr index_t max_tile_rows = 12;

}  // namespace detail

/**
 * For each row i in [b, e) of X (N × D): the nearest centroid of `P` and
 * v = ‖c‖² − 2⟨x_i, c⟩ (add ‖x_i‖² for the squared distance); calls `sink(i, k, v)` in row order.
 * Ties go to the lowest index. Single-threaded; no allocation.
 */
template <real_scalar T, class Sink>
void panel_argmin(const centroid_panel<T>& P, const_matrix_ref<T> X, index_t b, index_t e,
                  Sink&& sink) {
  if (b >= e) return;
  detail::panel_dispatch<T, false>(P, X, b, e, nullptr, sink);
}

/**
 * For each row i in [b, e): all Kp values ‖c_k‖² − 2⟨x_i, c_k⟩ (+∞ in the padding); calls
 * `sink(i, const T* values)` in row order. `scratch` must hold 12·Kp aligned values
 * (`detail::max_tile_rows<T>` rows).
 */
template <real_scalar T, class Sink>
void panel_distances(const centroid_panel<T>& P, const_matrix_ref<T> X, index_t b, index_t e,
                     T* scratch, Sink&& sink) {
  if (b >= e) return;
  detail::panel_dispatch<T, true>(P, X, b, e, scratch, sink);
}

}  // namespace zss
