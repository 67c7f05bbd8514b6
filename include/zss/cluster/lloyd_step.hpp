// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/cluster/lloyd_step.hpp
 * One Lloyd step — assign every point to its nearest centroid, then move each centroid to the
 * mean of its points — as one fused pass over X, beside the naive reference
 * (DESIGN.md §2.3 step 2, §6; PERFORMANCE.md §1.5, §5; STYLE §8).
 *
 * Legend: N points (rows of X), D width, K centroids.
 *
 * The fast step (`lloyd_step`) packs the centroids once (`centroid_panel`), then each thread
 * walks its contiguous block of rows in register tiles: distances ‖c‖² − 2x·c, argmin in
 * registers (ties to the lowest index), label-change count, and the row added into the
 * thread's own centroid sums while it is still in L1. Thread sums are added in thread order,
 * so a step is deterministic for a given thread count; labels and distances do not depend on
 * the thread count at all, the new centroids and the objective (a double sum) only through the
 * order of the sums
 * (with one thread they equal `lloyd_step_naive`'s bit for bit on data whose distances are
 * exact). All buffers live in a `lloyd_workspace` prepared once per fit.
 */
#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "zss/cluster/centroid_panel.hpp"
#include "zss/core/aligned.hpp"
#include "zss/core/check.hpp"
#include "zss/core/parallel.hpp"
#include "zss/core/simd.hpp"
#include "zss/core/tensor.hpp"

namespace zss {

/// What one Lloyd step observed.
struct lloyd_step_stats {
  index_t changed = 0;   ///< points whose label differs from the input label
  double objective = 0;  ///< Σ_i min_k ‖x_i − c_k‖² against the step's *input* centroids
};

/**
 * Buffers of the fast step for one data set: ‖x_i‖², the centroid panel and per-thread centroid
 * sums and counts. `prepare` once per fit; steps then allocate nothing.
 * @tparam T float or double.
 */
template <real_scalar T>
class lloyd_workspace {
 public:
  lloyd_workspace() = default;
  lloyd_workspace(matrix_ref<const T> X, index_t k_max, int threads) { prepare(X, k_max, threads); }

  /// Sizes the buffers for X (N × D), up to `k_max` clusters and `threads` threads (0 = OpenMP
  /// default; problems smaller than 512 rows per thread use fewer threads). `x_norms`: ‖x_i‖² as
  /// `simd::squared_norm` computes them (N values, copied), or empty to compute them here.
  void prepare(matrix_ref<const T> X, index_t k_max, int threads, std::span<const T> x_norms = {}) {
    require(x_norms.empty() || x_norms.size() == X.rows,
            "lloyd_workspace: x_norms has " + std::to_string(x_norms.size()) + " values for " +
                std::to_string(X.rows) + " points");
    threads = resolve_threads(threads);
    const index_t want = std::max<index_t>(1, X.rows / 512);
    threads_ = static_cast<int>(std::min<index_t>(static_cast<index_t>(threads), want));
    n_ = X.rows;
    d_ = X.cols;
    dp_ = padded_cols<T>(d_);
    k_max_ = k_max;
    x_norms_.resize(n_);
    if (!x_norms.empty())
      std::copy(x_norms.begin(), x_norms.end(), x_norms_.begin());
    else
      parallel_for(static_cast<index_t>(threads_), threads_, [&](index_t t, int) {
        const auto [b, e] = static_chunk(n_, threads_, static_cast<int>(t));
        detail::row_squared_norms(X, b, e, x_norms_.data() + b);
      });
    sums_.reset(threads_, k_max_ * dp_);
    counts_.assign(static_cast<std::size_t>(threads_), std::vector<index_t>(k_max_, 0));
    changed_.assign(static_cast<std::size_t>(threads_), 0);
    objective_.assign(static_cast<std::size_t>(threads_), 0.0);
    panel_.pack(matrix_ref<const T>(nullptr, 0, d_));
  }

  index_t rows() const noexcept { return n_; }
  index_t cols() const noexcept { return d_; }
  index_t k_max() const noexcept { return k_max_; }
  int threads() const noexcept { return threads_; }
  const T* x_norms() const noexcept { return x_norms_.data(); }  ///< N: ‖x_i‖²

 private:
  template <real_scalar U, bool Update>
  friend lloyd_step_stats detail_lloyd_pass(matrix_ref<const U>, matrix_ref<const U>,
                                            std::span<std::int32_t>, matrix_ref<U>,
                                            std::span<index_t>, std::span<U>, lloyd_workspace<U>&);
  int threads_ = 1;
  index_t n_ = 0, d_ = 0, dp_ = 0, k_max_ = 0;
  aligned_vector<T> x_norms_;
  centroid_panel<T> panel_;
  per_thread<T> sums_;
  std::vector<std::vector<index_t>> counts_;
  std::vector<index_t> changed_;
  std::vector<double> objective_;
};

namespace detail {
template <class T>
void check_step_args(std::string_view where, matrix_ref<const T> X, matrix_ref<const T> C,
                     std::size_t labels, const index_t* new_rows, std::size_t counts,
                     std::size_t min_dist) {
  require(C.rows >= 1, std::string(where) + ": no centroids (K = 0)");
  check_extent(where, "centroid width", C.cols, "data width", X.cols);
  check_extent(where, "labels size", labels, "number of points", X.rows);
  if (new_rows) check_extent(where, "new centroid rows", *new_rows, "K", C.rows);
  check_extent(where, "counts size", counts, "K", C.rows);
  if (min_dist != 0) check_extent(where, "min_dist size", min_dist, "number of points", X.rows);
}

/// sums_row += x over D elements (sums_row aligned).
template <class T>
inline void add_row(T* sums_row, const T* x, index_t d) noexcept {
  constexpr index_t W = simd::width<T>;
  index_t j = 0;
  for (; j + W <= d; j += W)
    (simd::batch<T>::load_aligned(sums_row + j) + simd::batch<T>::load_unaligned(x + j))
        .store_aligned(sums_row + j);
  for (; j < d; ++j) sums_row[j] += x[j];
}
}  // namespace detail

/// The fused pass shared by `lloyd_step` (Update = true) and `lloyd_assign` (Update = false).
template <real_scalar T, bool Update>
lloyd_step_stats detail_lloyd_pass(matrix_ref<const T> X, matrix_ref<const T> C,
                                   std::span<std::int32_t> labels, matrix_ref<T> C_new,
                                   std::span<index_t> counts, std::span<T> min_dist,
                                   lloyd_workspace<T>& ws) {
  const index_t n = X.rows, d = X.cols, k = C.rows, dp = ws.dp_;
  ws.panel_.pack(C);
  const int used = ws.threads_;
  if constexpr (Update) ws.sums_.zero();
  parallel_for(static_cast<index_t>(used), used, [&](index_t ti, int) {
    const int t = static_cast<int>(ti);
    const auto [b, e] = static_chunk(n, used, t);
    T* sums = ws.sums_[t];
    index_t* cnt = ws.counts_[ti].data();
    std::fill(cnt, cnt + k, index_t(0));
    index_t changed = 0;
    double obj = 0;
    const T* xn = ws.x_norms_.data();
    T* md = min_dist.empty() ? nullptr : min_dist.data();
    auto sink = [&](index_t i, index_t label, T v) {
      const T dist = std::max(T(0), v + xn[i]);
      obj += static_cast<double>(dist);
      if (md) md[i] = dist;
      const auto l = static_cast<std::int32_t>(label);
      changed += labels[i] != l;
      labels[i] = l;
      if constexpr (Update) {
        ++cnt[label];
        detail::add_row(sums + label * dp, X.row(i), d);
      }
    };
    panel_argmin(ws.panel_, X, b, e, sink);
    ws.changed_[ti] = changed;
    ws.objective_[ti] = obj;
  });
  lloyd_step_stats st;
  for (int t = 0; t < used; ++t) {
    st.changed += ws.changed_[static_cast<std::size_t>(t)];
    st.objective += ws.objective_[static_cast<std::size_t>(t)];
  }
  if constexpr (Update) {
    for (index_t c = 0; c < k; ++c) {
      index_t total = 0;
      for (int t = 0; t < used; ++t) total += ws.counts_[static_cast<std::size_t>(t)][c];
      counts[c] = total;
      T* out = C_new.row(c);
      if (total == 0) {
        if (out != C.row(c)) std::copy_n(C.row(c), d, out);
        continue;
      }
      std::copy_n(ws.sums_[0] + c * dp, d, out);
      for (int t = 1; t < used; ++t) {
        const T* s = ws.sums_[t] + c * dp;
        for (index_t j = 0; j < d; ++j) out[j] += s[j];
      }
      const T cnt = static_cast<T>(total);
      for (index_t j = 0; j < d; ++j) out[j] /= cnt;
    }
  }
  return st;
}

/**
 * One fused Lloyd step (fast path).
 * @param X        N × D points.
 * @param C        K × D input centroids (1 ≤ K ≤ ws.k_max()).
 * @param labels   N, in: previous labels (−1 for none; only used to count changes); out: index
 *                 of the nearest centroid of C, ties to the lowest index.
 * @param C_new    K × D output: mean of each cluster's points; an empty cluster's row is C's
 *                 row (C_new may alias C).
 * @param counts   K output: points per cluster.
 * @param min_dist N output, or empty: ‖x_i − c_{label_i}‖² (computed as ‖x‖² + ‖c‖² − 2x·c,
 *                 clamped at 0).
 * @param ws       workspace prepared for X (its thread count is used).
 * @returns label changes and the objective Σ min_dist.
 * @throws std::invalid_argument on mismatched shapes or an unprepared workspace.
 */
template <real_scalar T>
lloyd_step_stats lloyd_step(const_matrix_ref<T> X, const_matrix_ref<T> C,
                            std::span<std::int32_t> labels, matrix_ref<T> C_new,
                            std::span<index_t> counts, std::span<T> min_dist,
                            lloyd_workspace<T>& ws) {
  const index_t new_rows = C_new.rows;
  detail::check_step_args("lloyd_step", X, C, labels.size(), &new_rows, counts.size(),
                          min_dist.size());
  check_extent("lloyd_step", "new centroid width", C_new.cols, "data width", X.cols);
  check_extent("lloyd_step", "workspace rows", ws.rows(), "number of points", X.rows);
  check_extent("lloyd_step", "workspace width", ws.cols(), "data width", X.cols);
  require(C.rows <= ws.k_max(), "lloyd_step: K (" + std::to_string(C.rows) +
                                    ") exceeds the workspace's k_max (" +
                                    std::to_string(ws.k_max()) + ")");
  return detail_lloyd_pass<T, true>(X, C, labels, C_new, counts, min_dist, ws);
}

/**
 * The assignment half of a step only (labels against C, no update): what a fit runs once at
 * the end so that labels match the final centroids. Arguments as in `lloyd_step`.
 * @throws std::invalid_argument on mismatched shapes.
 */
template <real_scalar T>
lloyd_step_stats lloyd_assign(const_matrix_ref<T> X, const_matrix_ref<T> C,
                              std::span<std::int32_t> labels, std::span<T> min_dist,
                              lloyd_workspace<T>& ws) {
  detail::check_step_args("lloyd_assign", X, C, labels.size(), nullptr, C.rows, min_dist.size());
  check_extent("lloyd_assign", "workspace rows", ws.rows(), "number of points", X.rows);
  check_extent("lloyd_assign", "workspace width", ws.cols(), "data width", X.cols);
  require(C.rows <= ws.k_max(), "lloyd_assign: K (" + std::to_string(C.rows) +
                                    ") exceeds the workspace's k_max (" +
                                    std::to_string(ws.k_max()) + ")");
  return detail_lloyd_pass<T, false>(X, C, labels, matrix_ref<T>{}, std::span<index_t>{}, min_dist,
                                     ws);
}

/**
 * The reference Lloyd step: plain loops, exact (x − c)² distances, single thread.
 * Same contract as `lloyd_step` (min_dist here is the exact squared distance); sums are added
 * in row order, then divided by the count.
 * @throws std::invalid_argument on mismatched shapes.
 */
template <real_scalar T>
lloyd_step_stats lloyd_step_naive(const_matrix_ref<T> X, const_matrix_ref<T> C,
                                  std::span<std::int32_t> labels, matrix_ref<T> C_new,
                                  std::span<index_t> counts, std::span<T> min_dist = {}) {
  const index_t new_rows = C_new.rows;
  detail::check_step_args("lloyd_step_naive", X, C, labels.size(), &new_rows, counts.size(),
                          min_dist.size());
  check_extent("lloyd_step_naive", "new centroid width", C_new.cols, "data width", X.cols);
  const index_t n = X.rows, d = X.cols, k = C.rows;
  std::vector<T> sums(k * d, T(0));
  std::fill(counts.begin(), counts.end(), index_t(0));
  lloyd_step_stats st;
  for (index_t i = 0; i < n; ++i) {
    index_t best = 0;
    T best_d = simd::ref::squared_distance(X.row(i), C.row(0), d);
    for (index_t c = 1; c < k; ++c) {
      const T dist = simd::ref::squared_distance(X.row(i), C.row(c), d);
      if (dist < best_d) best_d = dist, best = c;
    }
    st.objective += static_cast<double>(best_d);
    if (!min_dist.empty()) min_dist[i] = best_d;
    const auto l = static_cast<std::int32_t>(best);
    st.changed += labels[i] != l;
    labels[i] = l;
    ++counts[best];
    for (index_t j = 0; j < d; ++j) sums[best * d + j] += X(i, j);
  }
  for (index_t c = 0; c < k; ++c) {
    T* out = C_new.row(c);
    if (counts[c] == 0) {
      if (out != C.row(c)) std::copy_n(C.row(c), d, out);
      continue;
    }
    for (index_t j = 0; j < d; ++j) out[j] = sums[c * d + j] / static_cast<T>(counts[c]);
  }
  return st;
}

}  // namespace zss
