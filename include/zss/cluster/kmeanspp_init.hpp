// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/cluster/kmeanspp_init.hpp
 * Greedy k-means++ seeding (Arthur & Vassilvitskii 2007; the greedy variant of scikit-learn's
 * `_kmeans_plusplus`): DESIGN.md §2.3 step 1 (option), STYLE §13.
 *
 * Legend: N points (rows of X), D width, K seeds, L local trials per step.
 *
 * The first seed is a uniformly random point. Each further step draws L candidates with
 * probability proportional to D²(x) (the squared distance to the nearest seed so far), and keeps
 * the candidate that most reduces Σ D². L = 1 is classic k-means++; the default L = 2 + ⌊ln K⌋
 * is scikit-learn's. A point is drawn as the first index whose running sum of D² exceeds
 * u·ΣD² (u uniform in [0, 1)), so a point with D² = 0 — a seed already chosen, or a copy of one —
 * is never drawn. Distances come from the panel kernel (‖x‖² + ‖c‖² − 2x·c); values within its
 * rounding noise of zero (≤ 4·√D·ε·(‖x‖² + ‖c‖²)) count as zero, so duplicates stay excluded.
 * Only when every remaining point has D² = 0 (fewer distinct points than K) is a not yet chosen
 * index drawn uniformly. Draws come from `rng(seed, stream)` and the result does not depend on
 * the thread count.
 */
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "zss/cluster/centroid_panel.hpp"
#include "zss/cluster/kmeans_options.hpp"
#include "zss/core/check.hpp"
#include "zss/core/parallel.hpp"
#include "zss/core/random.hpp"
#include "zss/core/simd.hpp"
#include "zss/core/tensor.hpp"

namespace zss {

/// 2 + ⌊ln K⌋, scikit-learn's number of local trials (K ≥ 1).
inline index_t default_local_trials(index_t k) noexcept {
  return 2 +
         static_cast<index_t>(std::floor(std::log(static_cast<double>(std::max<index_t>(k, 1)))));
}

/**
 * Indices of K k-means++ seeds in X (distinct indices; distinct points while X has ≥ K distinct
 * points).
 * @param X            N × D points.
 * @param k            seeds (1 ≤ K ≤ N).
 * @param g            random generator (advanced).
 * @param local_trials candidates per step; 0 = 2 + ⌊ln K⌋.
 * @param threads      threads for the distance pass (0 = OpenMP default); the result does not
 * depend on it.
 * @param x_norms      ‖x_i‖² of X's rows as `simd::squared_norm` computes them (N values), or
 * empty to compute them here (`kmeans_batch` shares one pass among the problems of one data set).
 * @throws std::invalid_argument when K = 0 or K > N, or x_norms has neither 0 nor N values.
 */
template <real_scalar T>
std::vector<index_t> kmeanspp_indices(matrix_ref<const T> X, index_t k, rng& g,
                                      index_t local_trials = 0, int threads = 0,
                                      std::span<const T> x_norms = {}) {
  detail::check_k("kmeanspp_init", k, X.rows);
  const index_t n = X.rows, d = X.cols;
  const index_t trials = local_trials ? local_trials : default_local_trials(k);
  threads = static_cast<int>(std::min<index_t>(static_cast<index_t>(resolve_threads(threads)),
                                               std::max<index_t>(1, n / 256)));
  require(x_norms.empty() || x_norms.size() == n,
          "kmeanspp_init: x_norms has " + std::to_string(x_norms.size()) + " values for " +
              std::to_string(n) + " points");
  std::vector<T> own;
  if (x_norms.empty()) {
    own.resize(n);
    detail::row_squared_norms(X, 0, n, own.data());
  }
  const T* xn = x_norms.empty() ? own.data() : x_norms.data();
  const T noise =
      T(4) * std::sqrt(static_cast<T>(std::max<index_t>(d, 1))) * std::numeric_limits<T>::epsilon();

  std::vector<index_t> chosen;
  chosen.reserve(k);
  std::vector<char> is_chosen(n, 0);
  std::vector<double> closest(n), cum(n);
  std::vector<T> cand_dist(trials * n);  // trials × N
  std::vector<index_t> cand(trials);
  tensor<T, 2> cand_rows = tensor<T, 2>::from_shape({trials, d});
  centroid_panel<T> panel;
  std::vector<aligned_vector<T>> scratch(static_cast<std::size_t>(threads));

  // dist[t·N + i] = D²(x_i, candidate t) for the first `m` rows of cand_rows.
  auto distances = [&](index_t m) {
    panel.pack(matrix_ref<const T>(cand_rows.data(), m, d));
    const T* cn = panel.norms();
    parallel_for(static_cast<index_t>(threads), threads, [&](index_t ti, int) {
      auto& s = scratch[ti];
      s.resize(detail::max_tile_rows<T> * panel.kp());
      const auto [b, e] = static_chunk(n, threads, static_cast<int>(ti));
      panel_distances(panel, X, b, e, s.data(), [&](index_t i, const T* v) {
        for (index_t t = 0; t < m; ++t) {
          T dist = v[t] + xn[i];
          if (dist <= noise * (xn[i] + cn[t])) dist = T(0);
          cand_dist[t * n + i] = dist;
        }
      });
    });
  };
  auto choose = [&](index_t i) {
    chosen.push_back(i);
    is_chosen[i] = 1;
  };

  const auto first = static_cast<index_t>(g.below(n));
  choose(first);
  std::copy_n(X.row(first), d, cand_rows.data());
  distances(1);
  double pot = 0;
  for (index_t i = 0; i < n; ++i)
    pot += closest[i] = is_chosen[i] ? 0.0 : static_cast<double>(cand_dist[i]);

  while (chosen.size() < k) {
    if (!(pot > 0)) {  // every remaining point coincides with a seed: any unchosen index
      std::vector<index_t> rest;
      for (index_t i = 0; i < n; ++i)
        if (!is_chosen[i]) rest.push_back(i);
      choose(rest[static_cast<std::size_t>(g.below(rest.size()))]);
      continue;
    }
    double run = 0;
    for (index_t i = 0; i < n; ++i) cum[i] = run += closest[i];
    index_t last_positive = 0;
    for (index_t i = n; i-- > 0;)
      if (closest[i] > 0) {
        last_positive = i;
        break;
      }
    for (index_t t = 0; t < trials; ++t) {
      const double r = g.uniform<double>() * run;
      auto idx = static_cast<index_t>(std::upper_bound(cum.begin(), cum.end(), r) - cum.begin());
      if (idx >= n || closest[idx] <= 0) idx = last_positive;  // r rounded up to the total
      cand[t] = idx;
      std::copy_n(X.row(idx), d, cand_rows.data() + t * d);
    }
    distances(trials);
    index_t best = 0;
    double best_pot = std::numeric_limits<double>::infinity();
    for (index_t t = 0; t < trials; ++t) {
      double p = 0;
      const T* dt = cand_dist.data() + t * n;
      for (index_t i = 0; i < n; ++i) p += std::min(closest[i], static_cast<double>(dt[i]));
      if (p < best_pot) best_pot = p, best = t;
    }
    const T* db = cand_dist.data() + best * n;
    pot = 0;
    for (index_t i = 0; i < n; ++i) {
      closest[i] = std::min(closest[i], static_cast<double>(db[i]));
      if (i == cand[best]) closest[i] = 0;
      pot += closest[i];
    }
    choose(cand[best]);
  }
  return chosen;
}

/**
 * K k-means++ seeds of X as a K × D tensor (rows of X, in the order chosen).
 * @param X            N × D points.
 * @param k            seeds (1 ≤ K ≤ N).
 * @param seed, stream draws come from `rng(seed, stream)`.
 * @param local_trials candidates per step; 0 = 2 + ⌊ln K⌋.
 * @param threads      threads for the distance pass; the result does not depend on it.
 * @param x_norms      ‖x_i‖² of X's rows, or empty (see `kmeanspp_indices`).
 * @throws std::invalid_argument when K = 0 or K > N, or x_norms has neither 0 nor N values.
 */
template <real_scalar T>
tensor<T, 2> kmeanspp_init(matrix_ref<const T> X, index_t k, std::uint64_t seed,
                           std::uint64_t stream = 0, index_t local_trials = 0, int threads = 0,
                           std::span<const T> x_norms = {}) {
  rng g(seed, stream);
  const auto idx = kmeanspp_indices(X, k, g, local_trials, threads, x_norms);
  tensor<T, 2> C = tensor<T, 2>::from_shape({k, X.cols});
  for (index_t c = 0; c < k; ++c) std::copy_n(X.row(idx[c]), X.cols, C.data() + c * X.cols);
  return C;
}

}  // namespace zss
