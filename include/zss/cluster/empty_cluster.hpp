// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/cluster/empty_cluster.hpp
 * The two empty-cluster policies of `kmeans_options::empty` (DESIGN.md §2.3 step 2).
 *
 * Legend: N points, D width, K clusters (K' ≤ K after dropping).
 *
 * Both run between Lloyd steps on the step's output (new centroids, labels, counts), never
 * inside the fused pass.
 */
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <span>
#include <vector>

#include "zss/core/tensor.hpp"

namespace zss {

/**
 * Re-seeds every empty cluster at a far point (scikit-learn's `_relocate_empty_clusters`): points
 * are visited by decreasing distance to their centroid (ties: lower index first); a point is
 * taken when its cluster keeps at least one other point. The point leaves its cluster (whose
 * mean is updated) and becomes the empty cluster's only member and centroid. Empty clusters are
 * handled in increasing index order; one that finds no point stays empty with its centroid.
 * Deterministic, no randomness.
 * @param X        N × D points.
 * @param C        K × D cluster means (updated in place).
 * @param labels   N labels in [0, K) (updated for moved points).
 * @param counts   K points per cluster (updated).
 * @param min_dist N distance of each point to the centroid it was assigned against.
 * @returns the number of clusters re-seeded.
 */
template <real_scalar T>
index_t reseed_empty_clusters(const_matrix_ref<T> X, matrix_ref<T> C,
                              std::span<std::int32_t> labels, std::span<index_t> counts,
                              std::span<const T> min_dist) {
  const index_t k = C.rows, d = C.cols, n = X.rows;
  std::vector<index_t> empty;
  for (index_t c = 0; c < k; ++c)
    if (counts[c] == 0) empty.push_back(c);
  if (empty.empty()) return 0;
  std::vector<index_t> order(n);
  std::iota(order.begin(), order.end(), index_t(0));
  std::stable_sort(order.begin(), order.end(),
                   [&](index_t a, index_t b) { return min_dist[a] > min_dist[b]; });
  index_t next = 0, reseeded = 0;
  for (index_t j : empty) {
    while (next < n && counts[static_cast<index_t>(labels[order[next]])] < 2) ++next;
    if (next == n) break;
    const index_t i = order[next++];
    const auto l = static_cast<index_t>(labels[i]);
    const T* x = X.row(i);
    T* cl = C.row(l);
    const T m = static_cast<T>(counts[l] - 1);
    for (index_t t = 0; t < d; ++t) cl[t] += (cl[t] - x[t]) / m;  // mean without x
    --counts[l];
    std::copy_n(x, d, C.row(j));
    counts[j] = 1;
    labels[i] = static_cast<std::int32_t>(j);
    ++reseeded;
  }
  return reseeded;
}

/**
 * Drops the empty clusters: rows of `C` (and of `C_other`, when it has rows, e.g. the previous
 * centroids) and entries of `counts` are compacted in order, labels renumbered to [0, K').
 * @param C       K × D centroids; its first K' rows hold the result.
 * @param labels  N labels in [0, K) (renumbered).
 * @param counts  K counts; the first K' hold the result.
 * @param C_other K × D rows compacted alongside, or an empty view.
 * @returns K', the number of non-empty clusters.
 */
template <real_scalar T>
index_t drop_empty_clusters(matrix_ref<T> C, std::span<std::int32_t> labels,
                            std::span<index_t> counts, matrix_ref<T> C_other = {}) {
  const index_t k = C.rows, d = C.cols;
  std::vector<std::int32_t> remap(k, -1);
  index_t kept = 0;
  for (index_t c = 0; c < k; ++c) {
    if (counts[c] == 0) continue;
    remap[c] = static_cast<std::int32_t>(kept);
    if (kept != c) {
      std::copy_n(C.row(c), d, C.row(kept));
      if (C_other.rows) std::copy_n(C_other.row(c), d, C_other.row(kept));
      counts[kept] = counts[c];
    }
    ++kept;
  }
  if (kept != k)
    for (auto& l : labels) l = l >= 0 ? remap[static_cast<index_t>(l)] : l;
  return kept;
}

}  // namespace zss
