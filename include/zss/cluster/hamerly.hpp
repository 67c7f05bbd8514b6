// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/cluster/hamerly.hpp
 * Hamerly's and Elkan's bounds for Lloyd's algorithm (G. Hamerly, "Making k-means even faster", SDM
 * 2010) made *exact*: a step gives the same labels, counts and centroids, bit for bit, as the plain
 * fused `lloyd_step`, while computing the distances of only the points whose label could change
 * (issue #16; PERFORMANCE.md §1.2).
 *
 * Legend: N points, D width, K centroids, a(i) the label of point i, d(·,·) Euclidean distance.
 *
 * Per point: an upper bound u_i ≥ d(x_i, c_a(i)) and a lower bound l_i ≤ min_{b≠a(i)} d(x_i, c_b);
 * per centroid: its move δ_c = d(c_c, c'_c) in the last update and s_c = ½ min_{b≠c} d(c_c, c_b).
 * After an update u_i += δ_a(i), l_i −= max_{b≠a(i)} δ_b (triangle inequality). A point keeps its
 * label when L = max(l_i, 2 s_a(i) − u_i) proves every other centroid farther. A point that
 * fails gets Elkan's per-centroid stage (C. Elkan, ICML 2003): lower bounds lb_ic ≤ d(x_i, c)
 * (each lowered by δ_c per update) and d(c_a, c) − u_i rule out most centroids; the rest get a
 * dot product each, and only rows with many candidates or a winner closer than the rounding
 * margin fall back to the full panel row. Measured on 16384 × 512 × 64 tokens (bench/README.md):
 * Hamerly's single bound alone skipped < 25 % of the rows in the first steps of a fit (in 512
 * dimensions the nearest and second-nearest centroids are close while centroids still move a
 * lot); the per-centroid bounds are what make the pruning pay.
 *
 * Why the labels are Lloyd's exactly and not just "nearly": the plain step compares the rounded
 * values f̂_c = ‖c‖² − 2⟨x, c⟩ of the distance kernel, whose error is at most
 * E_i = 2.2·γ_{D+4}·(‖c‖²_max + 2‖x_i‖‖c‖_max) (γ_n = n·u/(1 − n·u), u the unit roundoff; any
 * summation order). Bounds are kept on true distances (each recomputed bound widened by E_i, the
 * norms by 2γ, centroid distances computed in double and widened by 1e-12), and a point is kept
 * only when L² − u_i² > 2·E_i: then f̂_a < f̂_b for every b, the plain step's argmin. Points that
 * fail get all K values from the same kernel (`panel_distances`, whose per-row FMA chain does
 * not depend on which rows share a tile) and the same argmin (ties to the lowest index). The
 * centroid sums are then added exactly as `lloyd_step` adds them: per thread over the same
 * static row chunks, rows in order, threads in order; so the new centroids are bitwise equal.
 *
 * Costs: K + 2 doubles per point, K² centroid distances per step, N·K bound updates per step,
 * and one pass over X per step for the sums (memory-bound) instead of 2·N·D·K FLOPs. Not computed:
 * the objective of a step whose distances were partly skipped (reported as NaN in
 * `kmeans_result::objective`; a step that computed every distance reports Lloyd's value bitwise).
 */
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "zss/cluster/centroid_panel.hpp"
#include "zss/cluster/lloyd_step.hpp"
#include "zss/core/aligned.hpp"
#include "zss/core/parallel.hpp"
#include "zss/core/simd.hpp"
#include "zss/core/tensor.hpp"

namespace zss {

/**
 * The bounds and buffers of one bounded fit (one per fit; `prepare` once, then `step` per
 * iteration and `moved` after every centroid update).
 * @tparam T float or double.
 */
template <real_scalar T>
class hamerly_state {
 public:
  /// Sizes everything for X with up to `k_max` centroids, using `ws`'s threads and norms.
  void prepare(const_matrix_ref<T> X, index_t k_max, const lloyd_workspace<T>& ws) {
    n_ = X.rows;
    d_ = X.cols;
    dp_ = padded_cols<T>(d_);
    threads_ = ws.threads();
    upper_.assign(n_, std::numeric_limits<double>::infinity());
    lower_.assign(n_, 0.0);
    xnorm_.resize(n_);
    xn_ = ws.x_norms();
    for (index_t i = 0; i < n_; ++i) xnorm_[i] = std::sqrt(double(ws.x_norms()[i]));
    k_max_ = k_max;
    delta_.assign(k_max, 0.0);
    cc_.assign(k_max * k_max, 0.0);
    lb_.assign(n_ * k_max, 0.0);
    const auto slots = std::size_t(threads_);
    cand_.assign(slots * k_max, 0);
    fval_.assign(slots * k_max, 0.0);
    half_gap_.assign(k_max, 0.0);
    sums_.reset(threads_, k_max * dp_);
    counts_.assign(std::size_t(threads_), std::vector<index_t>(k_max, 0));
    changed_.assign(std::size_t(threads_), 0);
    objective_.assign(std::size_t(threads_), 0.0);
    computed_.assign(std::size_t(threads_), 0);
    panel_rows_.assign(std::size_t(threads_), 0);
    gather_.assign(std::size_t(threads_), aligned_vector<T>(block * d_));
    rows_.assign(std::size_t(threads_), std::vector<index_t>(block));
    scratch_.assign(std::size_t(threads_),
                    aligned_vector<T>(detail::max_tile_rows<T> * round_up(k_max, simd::width<T>)));
    const double u = double(std::numeric_limits<T>::epsilon()) / 2, m = double(d_ + 4) * u;
    gamma_ = m / (1 - m);
  }

  /// Forgets every bound: the next step computes all distances (after a re-seeding).
  void invalidate() {
    std::fill(upper_.begin(), upper_.end(), std::numeric_limits<double>::infinity());
  }

  /// Records the update `C_old → C_new` (both K × D, same K): moves and the bounds' updates.
  void moved(const_matrix_ref<T> C_old, const_matrix_ref<T> C_new) {
    const index_t k = C_new.rows;
    for (index_t c = 0; c < k; ++c) delta_[c] = distance(C_old.row(c), C_new.row(c)) * (1 + 1e-12);
    pending_ = true;
  }

  /// Point–centroid distances the last step computed (K per panel row, one per dot product).
  index_t computed() const noexcept {
    index_t s = 0;
    for (auto c : computed_) s += c;
    return s;
  }

  /**
   * One exact bounded Lloyd step: labels, counts and `C_new` as `lloyd_step(X, C, …)` gives them
   * (same `ws` thread count). `labels` holds the previous step's labels (or −1 before the first).
   * Returns the changed count; the objective is NaN when some distances were skipped.
   */
  lloyd_step_stats step(const_matrix_ref<T> X, const_matrix_ref<T> C,
                        std::span<std::int32_t> labels, matrix_ref<T> C_new,
                        std::span<index_t> counts) {
    const index_t k = C.rows, d = d_, dp = dp_;
    panel_.pack(C);
    // Centroid norms, the error bound's scale and s_c = ½ min_{b≠c} d(c, b).
    double cmax2 = 0;
    for (index_t c = 0; c < k; ++c) cmax2 = std::max(cmax2, double(panel_.norms()[c]));
    cmax2 *= 1 + 2 * gamma_;
    const double cmax = std::sqrt(cmax2);
    for (index_t c = 0; c < k; ++c) {
      cc_[c * k + c] = 0;
      for (index_t b = c + 1; b < k; ++b)
        cc_[c * k + b] = cc_[b * k + c] = distance(C.row(c), C.row(b)) * (1 - 1e-12);
    }
    for (index_t c = 0; c < k; ++c) {
      double m = std::numeric_limits<double>::infinity();
      for (index_t b = 0; b < k; ++b)
        if (b != c) m = std::min(m, cc_[c * k + b]);
      half_gap_[c] = 0.5 * m;
    }
    // max and second max of δ (a point's lower bound drops by the largest move of another c).
    double d1 = 0, d2 = 0;
    index_t arg1 = k;
    if (pending_) {
      for (index_t c = 0; c < k; ++c) {
        if (delta_[c] > d1) {
          d2 = d1;
          d1 = delta_[c];
          arg1 = c;
        } else if (delta_[c] > d2) {
          d2 = delta_[c];
        }
      }
    }
    const bool apply = pending_;
    pending_ = false;
    sums_.zero();
    std::fill(changed_.begin(), changed_.end(), index_t(0));
    std::fill(objective_.begin(), objective_.end(), 0.0);
    const int used = threads_;
    parallel_for(index_t(used), used, [&](index_t ti, int) {
      const int t = int(ti);
      const auto [b, e] = static_chunk(n_, used, t);
      T* sums = sums_[t];
      index_t* cnt = counts_[ti].data();
      std::fill(cnt, cnt + k, index_t(0));
      index_t computed = 0, panel_rows = 0;
      index_t* todo = rows_[ti].data();
      for (index_t b0 = b; b0 < e; b0 += block) {
        const index_t b1 = std::min(e, b0 + block);
        index_t nt = 0;
        for (index_t i = b0; i < b1; ++i) {
          const auto a = labels[i];
          if (a < 0 || !std::isfinite(upper_[i])) {
            todo[nt++] = i;
            continue;
          }
          const auto ai = index_t(a);
          double u = upper_[i], l = lower_[i];
          double* lb = lb_.data() + i * k_max_;
          if (apply) {
            u += delta_[ai];
            l = std::max(0.0, l - (ai == arg1 ? d2 : d1));
            upper_[i] = u;
            lower_[i] = l;
            for (index_t c = 0; c < k; ++c) lb[c] = std::max(0.0, lb[c] - delta_[c]);
          }
          const double E = margin(i, cmax, cmax2);
          if (keeps(std::max(l, 2 * half_gap_[ai] - u), u, E)) continue;
          // Tighten u with one dot product, then test again.
          ++computed;  // the tightening dot product
          const double f =
              double(panel_.norms()[ai]) - 2 * double(simd::dot(X.row(i), C.row(ai), d));
          u = std::sqrt(std::max(0.0, f + E + x2_high(i)));
          upper_[i] = u;
          if (keeps(std::max(l, 2 * half_gap_[ai] - u), u, E)) continue;
          if (!elkan(X, C, labels, i, ai, f, u, E, k, t, changed_[ti], computed)) todo[nt++] = i;
        }
        computed += nt * k;
        panel_rows += nt;
        if (nt > 0) assign(X, labels, todo, nt, b0, b1, t, cmax, cmax2);
        for (index_t i = b0; i < b1; ++i) {  // the sums, exactly as lloyd_step adds them
          const auto label = index_t(labels[i]);
          ++cnt[label];
          detail::add_row(sums + label * dp, X.row(i), d);
        }
      }
      computed_[ti] = computed;
      panel_rows_[ti] = panel_rows;
    });
    index_t all = 0;  // every row through the panel: the objective is known
    for (int t = 0; t < used; ++t) all += panel_rows_[std::size_t(t)];
    lloyd_step_stats st;
    for (int t = 0; t < used; ++t) st.changed += changed_[std::size_t(t)];
    // Every distance computed (the first step): the objective, summed as lloyd_step sums it.
    st.objective = std::numeric_limits<double>::quiet_NaN();
    if (all == n_) {
      st.objective = 0;
      for (int t = 0; t < used; ++t) st.objective += objective_[std::size_t(t)];
    }
    for (index_t c = 0; c < k; ++c) {  // lloyd_step's reduction, verbatim
      index_t total = 0;
      for (int t = 0; t < used; ++t) total += counts_[std::size_t(t)][c];
      counts[c] = total;
      T* out = C_new.row(c);
      if (total == 0) {
        if (out != C.row(c)) std::copy_n(C.row(c), d, out);
        continue;
      }
      std::copy_n(sums_[0] + c * dp, d, out);
      for (int t = 1; t < used; ++t) {
        const T* s = sums_[t] + c * dp;
        for (index_t j = 0; j < d; ++j) out[j] += s[j];
      }
      const T cn = static_cast<T>(total);
      for (index_t j = 0; j < d; ++j) out[j] /= cn;
    }
    return st;
  }

 private:
  static constexpr index_t block = 256;  // rows per bound pass (their sums follow in L2)

  static double distance(const T* a, const T* b, index_t d) noexcept {
    double s = 0;
    for (index_t j = 0; j < d; ++j) {
      const double v = double(a[j]) - double(b[j]);
      s += v * v;
    }
    return std::sqrt(s);
  }
  double distance(const T* a, const T* b) const noexcept { return distance(a, b, d_); }

  double margin(index_t i, double cmax, double cmax2) const noexcept {
    return 2.2 * gamma_ * (cmax2 + 2 * xnorm_[i] * cmax) + 1e-300;
  }
  double x2_high(index_t i) const noexcept { return xnorm_[i] * xnorm_[i] * (1 + 2 * gamma_); }
  double x2_low(index_t i) const noexcept { return xnorm_[i] * xnorm_[i] * (1 - 2 * gamma_); }
  static bool keeps(double L, double u, double E) noexcept {
    return L > 0 && L * L - u * u > 2 * E;
  }

  /**
   * Elkan's per-centroid stage for a row that failed the Hamerly test (label a, f = f̂_a from a
   * dot product, u its upper bound): centroids whose lower bound L_c = max(lb_c, d(c_a, c) − u)
   * gives L_c² − ‖x‖²_high > f + 3E cannot win in the plain step; the others get a dot product.
   * Returns false (the caller then computes the row with the panel kernel, Lloyd's own values)
   * when too many centroids are candidates or the winner is not clear by 4E (two values each
   * within E of the truth, compared with Lloyd's, also within E).
   */
  bool elkan(const_matrix_ref<T> X, const_matrix_ref<T> C, std::span<std::int32_t> labels,
             index_t i, index_t a, double fa, double u, double E, index_t k, int t,
             index_t& changed, index_t& computed) {
    double* lb = lb_.data() + i * k_max_;
    const double* cca = cc_.data() + a * k;
    const double x2h = x2_high(i), x2l = x2_low(i), limit = fa + 3 * E;
    index_t* cand = cand_.data() + std::size_t(t) * k_max_;
    index_t nc = 0;
    for (index_t c = 0; c < k; ++c) {
      if (c == a) continue;
      const double L = std::max(lb[c], cca[c] - u);
      if (L <= 0 || L * L - x2h <= limit) {
        if (nc == max_candidates(k)) return false;
        cand[nc++] = c;
      }
    }
    const T* x = X.row(i);
    computed += nc;
    index_t best = a;
    double fbest = fa;
    double* fc = fval_.data() + std::size_t(t) * k_max_;
    for (index_t j = 0; j < nc; ++j) {
      const index_t c = cand[j];
      fc[j] = double(panel_.norms()[c]) - 2 * double(simd::dot(x, C.row(c), d_));
      if (fc[j] < fbest || (fc[j] == fbest && c < best)) fbest = fc[j], best = c;
    }
    // Clear winner: every other computed value above by 4E; the uncomputed ones are above a's.
    if (best != a && fa - fbest <= 4 * E) return false;
    for (index_t j = 0; j < nc; ++j)
      if (cand[j] != best && fc[j] - fbest <= 4 * E) return false;
    for (index_t j = 0; j < nc; ++j) lb[cand[j]] = std::sqrt(std::max(0.0, fc[j] - E + x2l));
    lb[a] = std::sqrt(std::max(0.0, fa - E + x2l));
    double second = std::numeric_limits<double>::infinity();
    for (index_t c = 0; c < k; ++c)
      if (c != best) second = std::min(second, lb[c]);
    upper_[i] = std::sqrt(std::max(0.0, fbest + E + x2h));
    lower_[i] = second;
    const auto l = std::int32_t(best);
    changed += labels[i] != l;
    labels[i] = l;
    return true;
  }
  // Beyond this many candidates one panel row (GEMM speed) beats single dot products.
  static index_t max_candidates(index_t k) noexcept { return std::max<index_t>(1, k / 3); }

  // All K values of rows todo[0..nt) (inside [b0, b1)), their labels and fresh bounds.
  void assign(const_matrix_ref<T> X, std::span<std::int32_t> labels, const index_t* todo,
              index_t nt, index_t b0, index_t b1, int t, double cmax, double cmax2) {
    const index_t k = panel_.k();
    index_t& changed = changed_[std::size_t(t)];
    double& obj = objective_[std::size_t(t)];
    const T* xn = xn_;
    auto sink = [&](index_t r, const T* v) {
      const index_t i = todo[r];
      index_t best = 0;
      for (index_t c = 1; c < k; ++c)
        if (v[c] < v[best]) best = c;
      double second = std::numeric_limits<double>::infinity();
      for (index_t c = 0; c < k; ++c)
        if (c != best) second = std::min(second, double(v[c]));
      obj += double(std::max(T(0), v[best] + xn[i]));  // lloyd_step's objective term
      const double E = margin(i, cmax, cmax2);
      double* lb = lb_.data() + i * k_max_;
      for (index_t c = 0; c < k; ++c)
        lb[c] = std::sqrt(std::max(0.0, double(v[c]) - E + x2_low(i)));
      upper_[i] = std::sqrt(std::max(0.0, double(v[best]) + E + x2_high(i)));
      lower_[i] = std::isfinite(second) ? std::sqrt(std::max(0.0, second - E + x2_low(i)))
                                        : std::numeric_limits<double>::infinity();
      const auto l = std::int32_t(best);
      changed += labels[i] != l;
      labels[i] = l;
    };
    T* scratch = scratch_[std::size_t(t)].data();
    if (nt == b1 - b0) {  // the whole block: straight from X
      auto direct = [&](index_t i, const T* v) { sink(i - b0, v); };
      panel_distances(panel_, X, b0, b1, scratch, direct);
      return;
    }
    T* g = gather_[std::size_t(t)].data();
    for (index_t r = 0; r < nt; ++r) std::copy_n(X.row(todo[r]), d_, g + r * d_);
    panel_distances(panel_, const_matrix_ref<T>(g, nt, d_), 0, nt, scratch, sink);
  }

  index_t n_ = 0, d_ = 0, dp_ = 0, k_max_ = 0;
  int threads_ = 1;
  double gamma_ = 0;
  bool pending_ = false;
  std::vector<double> upper_, lower_, xnorm_, delta_, half_gap_, objective_;
  std::vector<double> lb_, cc_, fval_;  // N × K_max lower bounds, K × K centroid distances
  std::vector<index_t> cand_;
  const T* xn_ = nullptr;  // ‖x_i‖² of the workspace
  centroid_panel<T> panel_;
  per_thread<T> sums_;
  std::vector<std::vector<index_t>> counts_, rows_;
  std::vector<index_t> changed_, computed_, panel_rows_;
  std::vector<aligned_vector<T>> gather_, scratch_;
};

}  // namespace zss
