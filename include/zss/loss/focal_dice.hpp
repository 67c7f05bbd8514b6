// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/loss/focal_dice.hpp
 * ZegCLIP's non-mutually-exclusive loss (NEL, DESIGN.md §2.1): sigmoid focal loss and dice loss
 * on per-class binary masks of each image, over the cosine logits of cosine_logits.hpp.
 *
 * Legend: B images, N rows (image b owns rows `[row_offsets[b], row_offsets[b+1])`), K_b classes
 * of image b's class set (seen then pseudo, cosine_logits.hpp), labels `y_i ∈ [−1, K_b)`.
 * `S` is N × Kmax; only the first K_b entries of a row of image b are read. V = rows with
 * `y_i ≠ −1` (ignored rows take no part in either term), `t_ik = [y_i = k]`, `p = σ(s)`,
 * `q = 1 − p = σ(−s)`.
 *
 *     FL(s, 1) = −α q^γ log p,   FL(s, 0) = −(1 − α) p^γ log q          (α 0.25, γ 2)
 *     focal    = (1/|V|) Σ_{i∈V} (1/K_b) Σ_{k<K_b} FL(s_ik, t_ik)     (mean over rows of the
 *                                                                     per-row class mean)
 *     dice_bk  = 1 − (2 Σ_i p_ik t_ik + σ_s) / (Σ_i p_ik + Σ_i t_ik + σ_s)   (i ∈ V of image b)
 *     dice     = mean of dice_bk over every class k of every image with |V_b| > 0
 *     L_nel    = λ_f·focal + λ_d·dice                 (λ_f = λ_d = 1 by default; σ_s = 1)
 *
 * Every class of the image's class set forms a mask, also one absent from the image (its dice
 * term pushes the class's probabilities down), as ZegCLIP does over its one-hot targets.
 * `log p`, `log q` are computed as −softplus(∓s) and q as σ(−s), so logits of any size are
 * finite (no 1 − p cancellation). When no row takes part the loss is 0 and no gradient is added.
 *
 * Gradients (by hand): `∂FL/∂s = α q^γ (γ p log p − q)` for t = 1,
 * `(1 − α) p^γ (p − γ q log q)` for t = 0; `∂dice_bk/∂p_i = −(2 t_i U − I₂)/U²` with
 * `I₂ = 2Σpt + σ_s`, `U = Σp + Σt + σ_s`, and `∂p/∂s = p q`.
 *
 * A shard of a batch (data parallelism, zss/dist): pass the whole batch's counts (|V| and the
 * number of dice terms, `focal_dice_count` on each shard summed) to the forward; both means then
 * divide by the batch's counts, so the shards' losses and gradients add up to the batch's.
 *
 * Threads: one image per work item, partial sums per image added in image order: results are
 * bitwise identical for every thread count.
 */
#include <algorithm>
#include <cmath>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "zss/core/check.hpp"
#include "zss/core/parallel.hpp"
#include "zss/core/tensor.hpp"
#include "zss/loss/cosine_logits.hpp"

namespace zss {

/// Options of the focal + dice loss (ZegCLIP's defaults where it has them).
struct focal_dice_options {
  double alpha =
      0.25;  ///< focal α (weight of the positive class); used as T(alpha), like every field
  double gamma = 2;         ///< focal γ ≥ 0
  double dice_smooth = 1;   ///< σ_s added to the dice numerator and denominator
  double focal_weight = 1;  ///< λ_f
  double dice_weight = 1;   ///< λ_d
  int threads = 0;          ///< 0 = OpenMP default
};

/// What L_nel's two means divide by: |V| and the number of (image, class) dice terms.
struct focal_dice_counts {
  index_t valid_rows = 0;  ///< |V|: rows with a label
  index_t dice_terms = 0;  ///< Σ_b K_b over the images with |V_b| > 0
};

/**
 * The counts of this call's rows (what `focal_dice_forward` divides by unless given the batch's):
 * a shard sums them over the batch first.
 * @throws std::invalid_argument on bad offsets or labels out of range.
 */
template <real_scalar T>
focal_dice_counts focal_dice_count(std::span<const int> labels, const class_sets<T>& sets) {
  require(!sets.row_offsets.empty(), "focal_dice_count: row_offsets is empty");
  const index_t B = sets.images(), N = sets.row_offsets[B];
  detail::check_labels("focal_dice_count", labels, sets, N);
  focal_dice_counts c;
  for (index_t b = 0; b < B; ++b) {
    index_t nv = 0;
    for (index_t i = sets.row_offsets[b]; i < sets.row_offsets[b + 1]; ++i) nv += labels[i] >= 0;
    c.valid_rows += nv;
    if (nv > 0) c.dice_terms += sets.classes(b);
  }
  return c;
}

/// What `focal_dice_backward` needs: per (image, class) dice sums and the normalisers.
template <real_scalar T>
struct focal_dice_cache {
  std::vector<index_t> class_offsets;     ///< B + 1: image b's classes at [class_offsets[b], …)
  std::vector<double> inter, psum, tsum;  ///< per (b, k): Σ p t, Σ p, Σ t over valid rows
  std::vector<index_t> valid_rows;        ///< B: |V_b|
  index_t valid = 0;                      ///< |V|
  index_t dice_terms = 0;                 ///< number of (b, k) dice terms
  focal_dice_counts normalizer;           ///< what the means divide by (the batch's for a shard)
  double focal = 0, dice = 0, loss = 0;   ///< the forward's terms
};

namespace detail {

template <real_scalar T>
struct sigmoid_parts {
  T p, q, log_p, log_q;
};

/// p = σ(s), q = σ(−s), log p, log q, all stable for any finite s.
template <real_scalar T>
inline sigmoid_parts<T> sigmoid_stable(T s) noexcept {
  const T e = std::exp(-std::abs(s));  // in (0, 1]
  const T l = std::log1p(e);
  sigmoid_parts<T> r;
  if (s >= 0) {
    r.p = T(1) / (T(1) + e);
    r.q = e / (T(1) + e);
    r.log_p = -l;
    r.log_q = -s - l;
  } else {
    r.p = e / (T(1) + e);
    r.q = T(1) / (T(1) + e);
    r.log_p = s - l;
    r.log_q = -l;
  }
  return r;
}

template <real_scalar T>
inline T focal_pow(T x, T gamma) noexcept {
  return gamma == T(2) ? x * x : (gamma == T(1) ? x : std::pow(x, gamma));
}

template <real_scalar T>
void focal_dice_check(std::string_view where, const_matrix_ref<T> S, std::span<const int> labels,
                      const class_sets<T>& sets, const focal_dice_options& params) {
  require(!sets.row_offsets.empty(),
          std::string(where) + ": row_offsets is empty (needs B + 1 entries)");
  const index_t B = sets.images();
  check_offsets(where, "row_offsets", sets.row_offsets, B + 1, S.rows);
  if (!sets.pseudo_offsets.empty())
    check_offsets(where, "pseudo_offsets", sets.pseudo_offsets, B + 1, sets.pseudo.rows);
  for (index_t b = 0; b < B; ++b)
    if (sets.classes(b) == 0 && sets.row_offsets[b + 1] > sets.row_offsets[b])
      throw std::invalid_argument(std::string(where) + ": image " + std::to_string(b) +
                                  " has rows but an empty class set (Ks = 0, M_b = 0)");
  check_shape(where, "S", S, S.rows, sets.max_classes());
  check_labels(where, labels, sets, S.rows);
  require(T(params.gamma) >= T(0), std::string(where) + ": gamma must be >= 0");
  require(T(params.alpha) >= T(0) && T(params.alpha) <= T(1),
          std::string(where) + ": alpha must be in [0, 1]");
  require(T(params.dice_smooth) > T(0), std::string(where) + ": dice_smooth must be > 0");
}

}  // namespace detail

/**
 * Forward (DESIGN §2.1): `loss = λ_f·focal + λ_d·dice` as in the file comment.
 * @param loss   out.
 * @param cache  filled for the backward.
 * @param S      N × Kmax logits (cosine_logits_forward's output).
 * @param labels N labels in [−1, K_b).
 * @param sets   the batch layout (row offsets and class counts; the weights are not read).
 * @param batch  the whole batch's counts when this call is one shard of it (file comment); empty
 *               = this call is the batch. Kept in the cache for the backward.
 * @throws std::invalid_argument on bad offsets, labels out of range, an image with rows and an
 *         empty class set, S not N × Kmax, γ < 0, α ∉ [0, 1], σ_s ≤ 0, batch counts below this
 *         call's.
 */
template <real_scalar T>
void focal_dice_forward(T& loss, focal_dice_cache<T>& cache, const_matrix_ref<T> S,
                        std::span<const int> labels, const class_sets<T>& sets,
                        const focal_dice_options& params,
                        std::optional<focal_dice_counts> batch = std::nullopt) {
  detail::focal_dice_check("focal_dice_forward", S, labels, sets, params);
  const index_t B = sets.images();
  cache.class_offsets.assign(B + 1, 0);
  for (index_t b = 0; b < B; ++b)
    cache.class_offsets[b + 1] = cache.class_offsets[b] + sets.classes(b);
  const index_t total = cache.class_offsets[B];
  cache.inter.assign(total, 0.0);
  cache.psum.assign(total, 0.0);
  cache.tsum.assign(total, 0.0);
  cache.valid_rows.assign(B, 0);
  std::vector<double> focal_b(B, 0.0);
  const T a = T(params.alpha), g = T(params.gamma);
  parallel_for(B, resolve_threads(params.threads), [&](index_t b, int) {
    const index_t K = sets.classes(b), c0 = cache.class_offsets[b];
    double f = 0;
    index_t nv = 0;
    for (index_t i = sets.row_offsets[b]; i < sets.row_offsets[b + 1]; ++i) {
      const int y = labels[i];
      if (y < 0) continue;
      ++nv;
      double fr = 0;
      for (index_t k = 0; k < K; ++k) {
        const auto sp = detail::sigmoid_stable(S(i, k));
        const bool t = static_cast<index_t>(y) == k;
        fr += t ? double(-a * detail::focal_pow(sp.q, g) * sp.log_p)
                : double(-(T(1) - a) * detail::focal_pow(sp.p, g) * sp.log_q);
        cache.psum[c0 + k] += double(sp.p);
        if (t) cache.inter[c0 + k] += double(sp.p), cache.tsum[c0 + k] += 1.0;
      }
      f += fr / double(K);
    }
    focal_b[b] = f;
    cache.valid_rows[b] = nv;
  });
  cache.valid = 0;
  cache.dice_terms = 0;
  double focal = 0, dice = 0;
  for (index_t b = 0; b < B; ++b) {
    cache.valid += cache.valid_rows[b];
    focal += focal_b[b];
    if (cache.valid_rows[b] == 0) continue;
    for (index_t c = cache.class_offsets[b]; c < cache.class_offsets[b + 1]; ++c) {
      const double sm = double(T(params.dice_smooth));
      dice += 1.0 - (2.0 * cache.inter[c] + sm) / (cache.psum[c] + cache.tsum[c] + sm);
      ++cache.dice_terms;
    }
  }
  cache.normalizer = {cache.valid, cache.dice_terms};
  if (batch) {
    require(batch->valid_rows >= cache.valid && batch->dice_terms >= cache.dice_terms,
            "focal_dice_forward: the batch's counts (" + std::to_string(batch->valid_rows) +
                " rows, " + std::to_string(batch->dice_terms) +
                " dice terms) are below this shard's (" + std::to_string(cache.valid) + ", " +
                std::to_string(cache.dice_terms) + ")");
    cache.normalizer = *batch;
  }
  cache.focal = cache.valid ? focal / double(cache.normalizer.valid_rows) : 0.0;
  cache.dice = cache.dice_terms ? dice / double(cache.normalizer.dice_terms) : 0.0;
  cache.loss =
      double(T(params.focal_weight)) * cache.focal + double(T(params.dice_weight)) * cache.dice;
  loss = T(cache.loss);
}

/**
 * Backward: **adds** `dloss·∂L/∂S` into `dS` (entries ≥ K_b untouched).
 * @param dS N × Kmax, adds into.
 * @param cache from `focal_dice_forward` on the same inputs.
 */
template <real_scalar T>
void focal_dice_backward(matrix_ref<T> dS, T dloss, const focal_dice_cache<T>& cache,
                         const_matrix_ref<T> S, std::span<const int> labels,
                         const class_sets<T>& sets, const focal_dice_options& params) {
  detail::focal_dice_check("focal_dice_backward", S, labels, sets, params);
  check_shape("focal_dice_backward", "dS", dS, S.rows, S.cols);
  const index_t B = sets.images();
  check_extent("focal_dice_backward", "cached images", cache.valid_rows.size(), "images", B);
  if (cache.valid == 0) return;
  const T a = T(params.alpha), g = T(params.gamma), sm = T(params.dice_smooth);
  const T cf = dloss * T(params.focal_weight) / T(cache.normalizer.valid_rows);
  const T cd =
      cache.dice_terms ? dloss * T(params.dice_weight) / T(cache.normalizer.dice_terms) : T(0);
  parallel_for(B, resolve_threads(params.threads), [&](index_t b, int) {
    const index_t K = sets.classes(b), c0 = cache.class_offsets[b];
    const T cfk = cf / T(K);
    for (index_t i = sets.row_offsets[b]; i < sets.row_offsets[b + 1]; ++i) {
      const int y = labels[i];
      if (y < 0) continue;
      for (index_t k = 0; k < K; ++k) {
        const auto sp = detail::sigmoid_stable(S(i, k));
        const bool t = static_cast<index_t>(y) == k;
        const T dfl = t ? a * detail::focal_pow(sp.q, g) * (g * sp.p * sp.log_p - sp.q)
                        : (T(1) - a) * detail::focal_pow(sp.p, g) * (sp.p - g * sp.q * sp.log_q);
        const T U = T(cache.psum[c0 + k] + cache.tsum[c0 + k]) + sm;
        const T I2 = T(2 * cache.inter[c0 + k]) + sm;
        const T ddice = -(T(2) * (t ? T(1) : T(0)) * U - I2) / (U * U);
        dS(i, k) += cfk * dfl + cd * ddice * sp.p * sp.q;
      }
    }
  });
}

}  // namespace zss
