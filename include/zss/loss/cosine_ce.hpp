// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/loss/cosine_ce.hpp
 * Cosine logits with per-image class sets fused with softmax cross-entropy (DESIGN.md §2.1):
 * ignore label −1, optional row weights, gradients computed in the same pass, one row block at
 * a time — the N × K logits or probabilities are never stored.
 *
 * Legend (as in cosine_logits.hpp): B images, N rows, D width, Ks seen classes `T`, M_b pseudo
 * classes `P_b` of image b, K_b = Ks + M_b, labels `y_i ∈ [−1, K_b)` (−1 = ignored).
 *
 *     S_i  = [α⟨n(x_i), n(t_k)⟩]_k ++ [β⟨n(x_i), n(p_m)⟩]_m          (row i of image b)
 *     L    = Σ_i w_i (lse(S_i) − S_i,y_i) / Σ_i w_i                  (over rows with y_i ≠ −1)
 *     dS_i = dL · w_i (softmax(S_i) − onehot(y_i)) / Σw              (DESIGN §2.1)
 *
 * then through the logits' product and both normalisations into `dX` and, optionally, `dT`,
 * `dP` (the pseudo prototypes receive gradient by default in the method, DESIGN §2.4).
 * When no row takes part (all ignored, or Σw = 0) the loss is 0 and no gradient is added.
 *
 * A shard of a batch (data parallelism, zss/dist): pass the whole batch's Σw as
 * `batch_weight_sum`; the loss and gradients are then this shard's part of the batch's mean
 * (`Σ_{i in shard} w_i ℓ_i / Σw_batch`), so the shards' results add up to the batch's.
 *
 * Three entry points:
 *  - `cosine_ce_forward` — loss only (one pass over X);
 *  - `cosine_ce_backward` — recomputes the logits block by block and adds the gradients
 *    (the pair follows the library's forward/backward convention);
 *  - `cosine_ce_forward_backward` — the fast path: loss and gradients in one pass (Liger-style,
 *    PERFORMANCE §2.3); this is what a trainer and the benchmark call.
 *
 * Schedule (PERFORMANCE §2.3): the class weights are normalised once into the cache. Rows are cut
 * into fixed *groups* (≤ 16, sized from N only) run in parallel; a group walks row blocks of
 * `block_rows` rows that never cross an image. Per block: logits by single-threaded GEMMs
 * against `n(T)` (the register-blocked kernel) and `n(P_b)` (Eigen) with the row norms applied
 * afterwards, row softmax with xsimd's exp (`softmax_row`), `G = dS·scale` in place, the
 * row-normalisation backward's projection `−⟨x, dx̂⟩/‖x‖³` from the logits, then
 * `dX̂ = G Ŵ_b` (GEMM) and `dx = dx̂/‖x‖ + proj·x` into `dX` — for a block without pseudo
 * classes in the GEMM's epilogue, so dX̂ is never stored — and `dŴ_group += (G/‖x‖)ᵀ X_block`
 * while the block is in cache.
 * Group partials are added in group order, so **loss and gradients are bitwise identical for
 * every thread count** (for a fixed `block_rows`).
 */
#include <algorithm>
#include <cmath>
#include <span>
#include <vector>

#include "zss/core/aligned.hpp"
#include "zss/core/check.hpp"
#include "zss/core/eigen_map.hpp"
#include "zss/core/parallel.hpp"
#include "zss/core/simd.hpp"
#include "zss/core/tensor.hpp"
#include "zss/loss/cosine_logits.hpp"
#include "zss/nn/detail/gemm_kernel.hpp"
#include "zss/nn/normalize.hpp"
#include "zss/nn/softmax.hpp"

namespace zss {

/// Options of the fused cosine cross-entropy.
struct cosine_ce_options {
  double alpha = 1 / 0.07;    ///< scale of the seen block (1/τ); used as T(alpha)
  double beta = 1 / 0.07;     ///< scale of the pseudo block (1/τ); used as T(beta)
  double eps = 1e-12;         ///< ε of the normalisations (normalize_eps); used as T(eps)
  int threads = 0;            ///< 0 = OpenMP default
  index_t block_rows = 128;   ///< rows per block (fits L2 with D = 512); changes rounding, not math
  bool check_finite = false;  ///< check X and the class weights for NaN/Inf first (one extra pass)
  /// true: the backward adds into dX; false: it writes every row of dX (=), rows without a label
  /// get 0, and dX is never read, so the caller need not zero it first. (The kernel itself is
  /// no faster: a written cache line is still fetched for ownership; bench/README.md.) The
  /// class-weight gradients dT, dP are added into either way.
  bool accumulate = true;
};

namespace detail {

/// out ← out + a·x + b·y over `n` elements (one read-modify-write of `out` instead of two);
/// `Add = false`: out ← a·x + b·y, `out` never read, bitwise what adding into zeros gives.
template <bool Add = true, real_scalar T>
inline void axpy2(T a, const T* x, T b, const T* y, T* out, index_t n) noexcept {
  using V = simd::batch<T>;
  constexpr index_t W = simd::width<T>;
  const V va(a), vb(b);
  index_t i = 0;
  for (; i + W <= n; i += W) {
    const V o = Add ? V::load_unaligned(out + i) : V(T(0));
    simd::fma(vb, V::load_unaligned(y + i), simd::fma(va, V::load_unaligned(x + i), o))
        .store_unaligned(out + i);
  }
  for (; i < n; ++i) out[i] = (Add ? out[i] : T(0)) + (a * x[i] + b * y[i]);
}

/// Per-thread scratch of the fused kernel (reused across calls: no allocation per step).
template <real_scalar T>
struct cosine_ce_scratch {
  aligned_vector<T> S;     ///< block × Kp: logits, then G = dS·scale
  aligned_vector<T> G2;    ///< block × Kp: G / ‖x‖ (for dŴ)
  aligned_vector<T> dXh;   ///< block × D: dX̂
  aligned_vector<T> inv;   ///< block: 1 / max(‖x‖, ε)
  aligned_vector<T> proj;  ///< block: the rows' −⟨x, dx̂⟩/‖x‖³ (the fused dX epilogue)
  aligned_vector<unsigned char> clamped;
  aligned_vector<T> prob;  ///< Kp: one row's probabilities
  /// Thread 0's scratch only (shared read-only by all threads during a pass): `n(T)ᵀ` and `n(T)`
  /// packed for the register-blocked GEMM (nn/detail/gemm_kernel.hpp).
  aligned_vector<T> seen_pack_t, seen_pack;
};

/// The shared fused kernel (used by cosine_ce and by GLM's dense variant).
template <real_scalar T>
struct cosine_ce_kernel {
  // Inputs.
  matrix_ref<const T> X;
  std::span<const index_t> row_offsets;  ///< class-set images (B + 1)
  matrix_ref<const T> seen_hat;          ///< Ks × D normalised (dense)
  matrix_ref<const T> pseudo_hat;        ///< ΣM × D normalised (dense)
  std::span<const index_t> pseudo_offsets;
  T alpha = 1, beta = 1, eps = normalize_eps<T>;
  index_t block_rows = 128;
  // Outputs (optional).
  matrix_ref<T> dX;          ///< adds into (or, with `dx_assign`, writes every row of)
  bool dx_assign = false;    ///< write dX (=) instead of adding into it; zero rows included
  bool grad_seen = false;    ///< accumulate dŴ for the seen block into `dseen_hat`
  bool grad_pseudo = false;  ///< accumulate dŴ for the pseudo block into `dpseudo_hat`
  T* dseen_hat = nullptr;    ///< Ks × D, written (=) with the sum over groups
  T* dpseudo_hat = nullptr;  ///< ΣM × D, written (=)

  index_t pseudo_count(index_t b) const noexcept {
    return pseudo_offsets.empty() ? 0 : pseudo_offsets[b + 1] - pseudo_offsets[b];
  }
  index_t pseudo_begin(index_t b) const noexcept {
    return pseudo_offsets.empty() ? 0 : pseudo_offsets[b];
  }

  /**
   * One pass. `label(i)` ∈ [−1, K_b), `weight(i)` ≥ 0; `coef` = dL/Σw (0 = no gradients).
   * Returns Σ_i w_i ℓ_i in double (summed per group in row order, groups in order).
   */
  template <class LabelF, class WeightF>
  double run(LabelF&& label, WeightF&& weight, T coef, bool want_grad, int threads,
             std::vector<cosine_ce_scratch<T>>& scratch, aligned_vector<T>& group_dw) const {
    const index_t N = X.rows, D = X.cols, Ks = seen_hat.rows, B = row_offsets.size() - 1;
    index_t Kmax = Ks;
    for (index_t b = 0; b < B; ++b) Kmax = std::max(Kmax, Ks + pseudo_count(b));
    const index_t Kp = padded_cols<T>(std::max<index_t>(Kmax, 1));
    const index_t blk = std::max<index_t>(1, block_rows);
    // Fixed groups: ≤ 16, a multiple of the block size, from N only.
    const index_t group_rows = std::max(blk, round_up((N + 15) / 16, blk));
    const index_t groups = N == 0 ? 0 : (N + group_rows - 1) / group_rows;
    const bool gx = want_grad && dX.data != nullptr;
    const bool gs = want_grad && grad_seen && Ks > 0;
    const bool gp = want_grad && grad_pseudo && pseudo_hat.rows > 0;
    // Per group: the seen block and the pseudo rows of the images it touches.
    std::vector<index_t> g_off(groups + 1, 0), g_p0(groups, 0), g_p1(groups, 0);
    auto image_of =
        [&](index_t row) {  // image owning `row` (last image with offset ≤ row that has rows)
          return index_t(std::upper_bound(row_offsets.begin(), row_offsets.end(), row) -
                         row_offsets.begin()) -
                 1;
        };
    for (index_t g = 0; g < groups; ++g) {
      const index_t r0 = g * group_rows, r1 = std::min(N, r0 + group_rows);
      index_t size = gs ? Ks * D : 0;
      if (gp) {
        g_p0[g] = pseudo_begin(image_of(r0));
        g_p1[g] = pseudo_begin(image_of(r1 - 1)) + pseudo_count(image_of(r1 - 1));
        size += (g_p1[g] - g_p0[g]) * D;
      }
      g_off[g + 1] = g_off[g] + size;
    }
    if (gs || gp) group_dw.assign(g_off[groups], T(0));
    threads = std::max(1, std::min<int>(threads, static_cast<int>(std::max<index_t>(groups, 1))));
    if (scratch.size() < static_cast<std::size_t>(threads))
      scratch.resize(static_cast<std::size_t>(threads));
    for (int t = 0; t < threads; ++t) {
      auto& s = scratch[static_cast<std::size_t>(t)];
      s.S.resize(blk * Kp);
      s.G2.resize(blk * Kp);
      s.dXh.resize(blk * D);
      s.inv.resize(blk);
      s.proj.resize(blk);
      s.clamped.resize(blk);
      s.prob.resize(Kp);
    }
    std::vector<double> group_loss(groups, 0.0);
    const const_matrix_map<T> Th(seen_hat.data, Eigen::Index(Ks), Eigen::Index(D),
                                 Eigen::OuterStride<>(D));
    // The seen block's two products (logits X̂·n(T)ᵀ and dX̂ = G·n(T)) run the register-blocked
    // kernel on n(T) packed once per pass: on the thin shapes here (K = 16…64) it is 1.3–1.5×
    // Eigen's GEMM, which repacks n(T) for every row block (bench/README.md, BM_CosineCE). The
    // per-image pseudo blocks (a few rows each) stay with Eigen.
    const bool kernel_logits = Ks > 0 && gemm_kernel_suits<T>(Ks),
               kernel_dx = Ks > 0 && gemm_kernel_suits<T>(D),
               fused_dx = kernel_dx && Ks <= gemm_kc;  // the epilogue needs one reduction block
    auto& packs = scratch[0];
    if (kernel_logits) {
      packs.seen_pack_t.resize(gemm_packed_size(D, Ks));
      gemm_pack_b(packs.seen_pack_t.data(), seen_hat.data, 1, D, D, Ks);
    }
    if (kernel_dx && gx) {
      packs.seen_pack.resize(gemm_packed_size(Ks, D));
      gemm_pack_b(packs.seen_pack.data(), seen_hat.data, D, 1, Ks, D);
    }
    parallel_for(groups, threads, [&](index_t g, int t) {
      auto& s = scratch[static_cast<std::size_t>(t)];
      const index_t gr0 = g * group_rows, gr1 = std::min(N, gr0 + group_rows);
      T* dTg = gs ? group_dw.data() + g_off[g] : nullptr;
      T* dPg = gp ? group_dw.data() + g_off[g] + (gs ? Ks * D : 0) : nullptr;
      double loss = 0;
      index_t r0 = gr0;
      while (r0 < gr1) {
        const index_t b = image_of(r0);
        const index_t r1 = std::min({gr1, r0 + blk, row_offsets[b + 1]});
        const index_t nb = r1 - r0, Mb = pseudo_count(b), Kb = Ks + Mb;
        const const_matrix_map<T> Xb(X.row(r0), Eigen::Index(nb), Eigen::Index(D),
                                     Eigen::OuterStride<>(Eigen::Index(X.stride)));
        matrix_map<T> S(s.S.data(), Eigen::Index(nb), Eigen::Index(Kb),
                        Eigen::OuterStride<>(Eigen::Index(Kp)));
        const const_matrix_map<T> Ph(pseudo_hat.data + pseudo_begin(b) * D, Eigen::Index(Mb),
                                     Eigen::Index(D), Eigen::OuterStride<>(D));
        if (kernel_logits)
          gemm<T>(nb, Ks, D, X.row(r0), X.stride, 1, packs.seen_pack_t.data(), s.S.data(), Kp,
                  false);
        else if (Ks > 0)
          S.leftCols(Eigen::Index(Ks)).noalias() = Xb * Th.transpose();
        if (Mb > 0) S.rightCols(Eigen::Index(Mb)).noalias() = Xb * Ph.transpose();
        bool any = false;
        for (index_t i = 0; i < nb; ++i) {
          const index_t row = r0 + i;
          T* z = s.S.data() + i * Kp;
          const int y = label(row);
          const T w = y >= 0 ? weight(row) : T(0);
          const T raw = std::sqrt(simd::squared_norm(X.row(row), D));
          s.clamped[i] = raw < eps;
          const T inv = T(1) / std::max(raw, eps);
          s.inv[i] = inv;
          if (w == T(0)) {
            std::fill_n(z, Kb, T(0));
            s.proj[i] = T(0);
            continue;
          }
          any = true;
          simd::scale(inv * alpha, z, Ks);
          simd::scale(inv * beta, z + Ks, Mb);
          const T lse = softmax_row(s.prob.data(), z, Kb);
          loss += double(w) * (double(lse) - double(z[y]));
          if (!want_grad) continue;
          // z ← G = coef·w·(p − onehot(y))·scale (the scale of the logits' block).
          const T cw = coef * w;
          s.prob[static_cast<index_t>(y)] -= T(1);
          // ⟨x, dx̂⟩ = Σ_k G_k ⟨x, ŵ_k⟩ = (cw/inv) Σ_k p'_k z_k, with G_k = cw·scale_k·p'_k and
          // z_k = scale_k·inv·⟨x, ŵ_k⟩: the row-normalisation backward's projection from the
          // logits, before the product dx̂ exists (the fused dX epilogue needs it first).
          s.proj[i] = s.clamped[i] ? T(0) : -cw * inv * inv * simd::dot(s.prob.data(), z, Kb);
          for (index_t k = 0; k < Ks; ++k) z[k] = cw * alpha * s.prob[k];
          for (index_t k = Ks; k < Kb; ++k) z[k] = cw * beta * s.prob[k];
        }
        if (gx && dx_assign && !(any && coef != T(0)))
          for (index_t i = 0; i < nb; ++i) std::fill_n(dX.row(r0 + i), D, T(0));
        if (want_grad && any && coef != T(0)) {
          if (gx && fused_dx && Mb == 0) {
            // dx = inv·dx̂ + proj·x [+ dx] written by the product's epilogue (gemm_kernel.hpp):
            // dx̂ is never stored and dX is touched once, while the tile is in registers.
            gemm_epilogue e;
            e.row_scale = s.inv.data();
            e.row_shift = s.proj.data();
            e.rows = X.row(r0);
            e.ldy = X.stride;
            e.add = !dx_assign;
            gemm<T>(nb, D, Ks, s.S.data(), Kp, 1, packs.seen_pack.data(), dX.row(r0), dX.stride,
                    false, e);
          } else if (gx) {
            matrix_map<T> dXh(s.dXh.data(), Eigen::Index(nb), Eigen::Index(D),
                              Eigen::OuterStride<>(D));
            if (kernel_dx)
              gemm<T>(nb, D, Ks, s.S.data(), Kp, 1, packs.seen_pack.data(), s.dXh.data(), D, false);
            else if (Ks > 0)
              dXh.noalias() = S.leftCols(Eigen::Index(Ks)) * Th;
            else
              dXh.setZero();
            if (Mb > 0) dXh.noalias() += S.rightCols(Eigen::Index(Mb)) * Ph;
            for (index_t i = 0; i < nb; ++i) {
              const T* x = X.row(r0 + i);
              const T* dxh = s.dXh.data() + i * D;
              T* dx = dX.row(r0 + i);
              // dx = (dx̂ − x̂⟨x̂, dx̂⟩)/‖x‖ with x̂ = x/‖x‖; inside the ε clamp the map is linear.
              if (dx_assign)
                axpy2<false>(s.inv[i], dxh, s.proj[i], x, dx, D);
              else
                axpy2(s.inv[i], dxh, s.proj[i], x, dx, D);
            }
          }
          if (gs || gp) {
            matrix_map<T> G2(s.G2.data(), Eigen::Index(nb), Eigen::Index(Kb),
                             Eigen::OuterStride<>(Eigen::Index(Kp)));
            for (index_t i = 0; i < nb; ++i)
              G2.row(Eigen::Index(i)) = S.row(Eigen::Index(i)) * s.inv[i];
            if (gs) {
              matrix_map<T> dT(dTg, Eigen::Index(Ks), Eigen::Index(D), Eigen::OuterStride<>(D));
              dT.noalias() += G2.leftCols(Eigen::Index(Ks)).transpose() * Xb;
            }
            if (gp && Mb > 0) {
              matrix_map<T> dP(dPg + (pseudo_begin(b) - g_p0[g]) * D, Eigen::Index(Mb),
                               Eigen::Index(D), Eigen::OuterStride<>(D));
              dP.noalias() += G2.rightCols(Eigen::Index(Mb)).transpose() * Xb;
            }
          }
        }
        r0 = r1;
      }
      group_loss[g] = loss;
    });
    // Fixed-order reduction of the group partials.
    if (gs) std::fill_n(dseen_hat, Ks * D, T(0));
    if (gp) std::fill_n(dpseudo_hat, pseudo_hat.rows * D, T(0));
    for (index_t g = 0; g < groups; ++g) {
      if (gs) {
        const T* src = group_dw.data() + g_off[g];
        for (index_t j = 0; j < Ks * D; ++j) dseen_hat[j] += src[j];
      }
      if (gp) {
        const T* src = group_dw.data() + g_off[g] + (gs ? Ks * D : 0);
        T* dst = dpseudo_hat + g_p0[g] * D;
        for (index_t j = 0; j < (g_p1[g] - g_p0[g]) * D; ++j) dst[j] += src[j];
      }
    }
    double total = 0;
    for (double l : group_loss) total += l;
    return total;
  }
};

}  // namespace detail

/// Normalised class weights, Σw and scratch; reuse one cache across steps (no allocation).
template <real_scalar T>
struct cosine_ce_cache {
  aligned_vector<T> seen_hat;  ///< Ks × D: n(T)
  normalize_cache<T> seen_norm;
  aligned_vector<T> pseudo_hat;  ///< ΣM × D: n(P)
  normalize_cache<T> pseudo_norm;
  double weight_sum = 0;  ///< Σ w_i over rows with y_i ≠ −1
  double normalizer = 0;  ///< what the loss divides by: `weight_sum`, or the batch's Σw of a shard
  double loss = 0;        ///< the forward's loss
  // Scratch (mutable across calls).
  std::vector<detail::cosine_ce_scratch<T>> scratch;
  aligned_vector<T> group_dw, dseen_hat, dpseudo_hat;
};

namespace detail {

template <real_scalar T>
void cosine_ce_prepare(std::string_view where, cosine_ce_cache<T>& cache, const_matrix_ref<T> X,
                       std::span<const int> labels, std::span<const T> weights,
                       const class_sets<T>& sets, const cosine_ce_options& params,
                       double batch_weight_sum) {
  check_class_sets(where, X, sets);
  check_labels(where, labels, sets, X.rows);
  require(T(params.eps) > T(0), std::string(where) + ": eps must be > 0");
  if (!weights.empty()) {
    check_extent(where, "number of row weights", weights.size(), "rows of X", X.rows);
    for (index_t i = 0; i < weights.size(); ++i)
      if (!(weights[i] >= T(0) && std::isfinite(weights[i])))  // message built only on failure
        throw std::invalid_argument(std::string(where) + ": row weight " +
                                    std::to_string(double(weights[i])) + " of row " +
                                    std::to_string(i) + " must be finite and >= 0");
  }
  if (params.check_finite) {
    for (index_t i = 0; i < X.rows; ++i) check_finite(where, "X", X.row(i), X.cols);
    for (index_t i = 0; i < sets.seen.rows; ++i)
      check_finite(where, "seen classes", sets.seen.row(i), sets.seen.cols);
    for (index_t i = 0; i < sets.pseudo.rows; ++i)
      check_finite(where, "pseudo classes", sets.pseudo.row(i), sets.pseudo.cols);
  }
  normalize_weights(cache.seen_hat, cache.seen_norm, sets.seen, T(params.eps));
  normalize_weights(cache.pseudo_hat, cache.pseudo_norm, sets.pseudo, T(params.eps));
  double ws = 0;
  for (index_t i = 0; i < X.rows; ++i)
    if (labels[i] >= 0) ws += weights.empty() ? 1.0 : double(weights[i]);
  cache.weight_sum = ws;
  // (A shard's sum is at most the batch's; the slack allows for the different summation order.)
  require(std::isfinite(batch_weight_sum) &&
              (batch_weight_sum == 0 || batch_weight_sum >= ws * (1 - 1e-9)),
          std::string(where) + ": the batch's weight sum (" + std::to_string(batch_weight_sum) +
              ") must be 0 (this call is the batch) or at least this shard's (" +
              std::to_string(ws) + ")");
  cache.normalizer = batch_weight_sum > 0 ? batch_weight_sum : ws;
}

template <real_scalar T>
cosine_ce_kernel<T> cosine_ce_make_kernel(const cosine_ce_cache<T>& cache, const_matrix_ref<T> X,
                                          const class_sets<T>& sets,
                                          const cosine_ce_options& params) {
  cosine_ce_kernel<T> k;
  k.X = X;
  k.row_offsets = sets.row_offsets;
  k.seen_hat = matrix_ref<const T>(cache.seen_hat.data(), sets.seen.rows, X.cols);
  k.pseudo_hat = matrix_ref<const T>(cache.pseudo_hat.data(), sets.pseudo.rows, X.cols);
  k.pseudo_offsets = sets.pseudo_offsets;
  k.alpha = T(params.alpha);
  k.beta = T(params.beta);
  k.eps = T(params.eps);
  k.block_rows = params.block_rows;
  return k;
}

template <real_scalar T>
double cosine_ce_run(cosine_ce_cache<T>& cache, matrix_ref<T> dX, class_set_grads<T> dW, T dloss,
                     bool want_grad, const_matrix_ref<T> X, std::span<const int> labels,
                     std::span<const T> weights, const class_sets<T>& sets,
                     const cosine_ce_options& params) {
  const index_t D = X.cols, Ks = sets.seen.rows, Mt = sets.pseudo.rows;
  auto k = cosine_ce_make_kernel(cache, X, sets, params);
  const bool any = cache.weight_sum > 0;
  if (want_grad && !params.accumulate && dX.data && !(any && dloss != T(0)))
    for (index_t i = 0; i < dX.rows; ++i) std::fill_n(dX.row(i), D, T(0));  // the gradient is 0
  want_grad = want_grad && any && dloss != T(0);
  k.dX = dX;
  k.dx_assign = !params.accumulate;
  k.grad_seen = want_grad && dW.seen.data != nullptr && Ks > 0;
  k.grad_pseudo = want_grad && dW.pseudo.data != nullptr && Mt > 0;
  if (k.grad_seen) cache.dseen_hat.resize(Ks * D), k.dseen_hat = cache.dseen_hat.data();
  if (k.grad_pseudo) cache.dpseudo_hat.resize(Mt * D), k.dpseudo_hat = cache.dpseudo_hat.data();
  if (!any) return 0;
  const T coef = want_grad ? T(double(dloss) / cache.normalizer) : T(0);
  eigen_single_thread_guard guard;
  const double sum =
      k.run([&](index_t i) { return labels[i]; },
            [&](index_t i) { return weights.empty() ? T(1) : weights[i]; }, coef, want_grad,
            resolve_threads(params.threads), cache.scratch, cache.group_dw);
  if (k.grad_seen)
    weights_backward(dW.seen, cache.dseen_hat, cache.seen_norm, cache.seen_hat, Ks, D);
  if (k.grad_pseudo)
    weights_backward(dW.pseudo, cache.dpseudo_hat, cache.pseudo_norm, cache.pseudo_hat, Mt, D);
  return sum / cache.normalizer;
}

template <real_scalar T>
void cosine_ce_check_grads(std::string_view where, matrix_ref<T> dX, class_set_grads<T> dW,
                           const_matrix_ref<T> X, const class_sets<T>& sets) {
  if (dX.data) check_shape(where, "dX", dX, X.rows, X.cols);
  if (dW.seen.data) check_shape(where, "dT", dW.seen, sets.seen.rows, X.cols);
  if (dW.pseudo.data) check_shape(where, "dP", dW.pseudo, sets.pseudo.rows, X.cols);
}

}  // namespace detail

/**
 * Forward: the loss only (DESIGN §2.1), one pass over X, no gradient.
 * @param loss    out: the weighted mean over rows with a label (0 when none takes part).
 * @param cache   filled (normalised class weights, Σw); reuse across steps.
 * @param X       N × D rows.
 * @param labels  N labels in [−1, K_b) (−1 = ignored), class k of the row's image's class set.
 * @param weights N row weights ≥ 0, or empty (all 1).
 * @param sets    the batch layout (cosine_logits.hpp).
 * @param batch_weight_sum  Σw of the whole batch when X is one shard of it (file comment); 0 =
 *                this call is the whole batch. Kept in the cache for `cosine_ce_backward`.
 * @throws std::invalid_argument on mismatched shapes/offsets, labels out of range, empty class
 *         sets, negative or non-finite weights, a batch weight sum below this call's.
 */
template <real_scalar T>
void cosine_ce_forward(T& loss, cosine_ce_cache<T>& cache, const_matrix_ref<T> X,
                       std::span<const int> labels, std::span<const T> weights,
                       const class_sets<T>& sets, const cosine_ce_options& params,
                       double batch_weight_sum = 0) {
  detail::cosine_ce_prepare("cosine_ce_forward", cache, X, labels, weights, sets, params,
                            batch_weight_sum);
  cache.loss = detail::cosine_ce_run(cache, matrix_ref<T>{}, class_set_grads<T>{}, T(0), false, X,
                                     labels, weights, sets, params);
  loss = T(cache.loss);
}

/**
 * Backward: **adds** `dloss·∂L/∂X` into `dX` (writes it when `params.accumulate` is false) and,
 * when the views are given, `dloss·∂L/∂T`,
 * `dloss·∂L/∂P` into `dW` (DESIGN §2.1). Recomputes the logits block by block (no stored
 * probabilities). The cache's scratch is reused, hence non-const.
 * @param dX    N × D, adds into (or writes: `cosine_ce_options::accumulate`), or empty.
 * @param dW    class-weight gradients, each optional (Ks × D, ΣM × D).
 * @param dloss upstream gradient of the scalar loss.
 * @param cache from `cosine_ce_forward` on the same inputs (and its batch weight sum).
 */
template <real_scalar T>
void cosine_ce_backward(matrix_ref<T> dX, class_set_grads<T> dW, T dloss, cosine_ce_cache<T>& cache,
                        const_matrix_ref<T> X, std::span<const int> labels,
                        std::span<const T> weights, const class_sets<T>& sets,
                        const cosine_ce_options& params) {
  detail::check_class_sets("cosine_ce_backward", X, sets);
  detail::cosine_ce_check_grads("cosine_ce_backward", dX, dW, X, sets);
  check_extent("cosine_ce_backward", "cache classes", cache.seen_hat.size(), "Ks × D",
               sets.seen.rows * X.cols);
  detail::check_labels("cosine_ce_backward", labels, sets, X.rows);
  detail::cosine_ce_run(cache, dX, dW, dloss, true, X, labels, weights, sets, params);
}

/**
 * Forward and backward in one pass (the fast path, PERFORMANCE §2.3): writes the loss and
 * **adds** `dloss·∂L/∂X` into `dX` (or writes it: `accumulate`), `dloss·∂L/∂T`, `dloss·∂L/∂P`
 * into the given views.
 * Same arguments and errors as `cosine_ce_forward` / `cosine_ce_backward`.
 */
template <real_scalar T>
void cosine_ce_forward_backward(T& loss, matrix_ref<T> dX, class_set_grads<T> dW,
                                cosine_ce_cache<T>& cache, const_matrix_ref<T> X,
                                std::span<const int> labels, std::span<const T> weights,
                                const class_sets<T>& sets, const cosine_ce_options& params,
                                T dloss = T(1), double batch_weight_sum = 0) {
  detail::cosine_ce_prepare("cosine_ce_forward_backward", cache, X, labels, weights, sets, params,
                            batch_weight_sum);
  detail::cosine_ce_check_grads("cosine_ce_forward_backward", dX, dW, X, sets);
  cache.loss = detail::cosine_ce_run(cache, dX, dW, dloss, true, X, labels, weights, sets, params);
  loss = T(cache.loss);
}

}  // namespace zss
