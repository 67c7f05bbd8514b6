// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/cluster/mask_fusion.hpp
 * Mask fusion of one image's multi-scale clusters, and fusion with its seen labels
 * (DESIGN.md §2.3 steps 3–4).
 *
 * Legend: Q tokens of one image (h × w grid, row-major), D width, S scales, P pooled clusters
 * (all scales' non-empty clusters), G fused masks, C_seen seen classes, M_b pseudo classes kept.
 *
 * Step 3, clusters → a partition of the grid:
 *  1. Pool the clusters of all scales; cluster i has token set m_i (the tokens whose label at its
 *     scale is i) and centroid μ_i = n(mean of its tokens), recomputed from the tokens (the
 *     scale's own centroids are not used: after `max_iter` they may predate the last assignment).
 *     Pooled index order is scale-major: scale 0's clusters 0, 1, …, then scale 1's, …
 *  2. Visit clusters largest first (|m_i| descending); ties keep the pooled order (earlier scale
 *     first, then lower cluster id): a stable sort, so the order is fully deterministic.
 *  3. An unused cluster i (the *seed*) opens a new fused mask and takes every unused cluster j
 *     with ⟨μ_i, μ_j⟩ ≥ λ (compared with the seed's centroid, not a running group centroid);
 *     each cluster joins exactly one mask. Masks are numbered in the order their seeds are visited.
 *  4. A mask's token set is the union of its members' sets; its centroid ν_g = n(mean of the
 *     union's tokens), each token counted once.
 *  5. A token covered by several masks goes to the covering mask with the largest ⟨z_q, ν_g⟩
 *     (ties to the lower mask id). Every token is covered (each scale labels every token), so
 *     the result is a partition of the grid. A mask may end up owning no token.
 *
 * Step 4, fusion with the seen labels: an annotated token keeps its seen label. An ignored token
 * gets the pseudo class C_seen + m of its mask if that mask is *kept*, else −1. A mask is kept
 * when it owns ≥ `min_tokens` ignored tokens (at least 1 whatever `min_tokens` says) and its
 * centroid ν_g is not within λ of any seen class present in the image: ⟨ν_g, n(mean token of
 * class c)⟩ < λ for every seen class c that labels at least one token of the image (a mask that
 * matches a seen class is that class, not a new one; `seen_class` records the most similar one,
 * ties to the lowest class id). Kept masks are numbered m = 0 … M_b − 1 in
 * mask order (largest seed first).
 *
 * Sums and norms are accumulated in double; similarities are SIMD dot products in T (fixed
 * order), compared against λ as doubles.
 * Deterministic: no threads, no randomness; float and double inputs follow the same rules.
 */
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "zss/cluster/clustering.hpp"
#include "zss/core/check.hpp"
#include "zss/core/simd.hpp"
#include "zss/core/tensor.hpp"

namespace zss {

/// Options of mask fusion (DESIGN §2.3; the paper's defaults).
struct mask_fusion_options {
  double lambda =
      0.9;  ///< λ: merge clusters with ⟨μ_i, μ_j⟩ ≥ λ; drop masks within λ of a seen class
  index_t min_tokens =
      2;  ///< a mask becomes a pseudo class only with ≥ this many ignored tokens (0 acts as 1)
  bool check_finite = true;  ///< throw on non-finite tokens (one pass)
};

/// One pooled cluster: where it came from and which fused mask it joined.
struct pooled_cluster {
  index_t scale = 0;    ///< index into the scales given to `fuse_masks`
  index_t cluster = 0;  ///< cluster id within that scale
  index_t size = 0;     ///< |m_i|, tokens of the cluster
  index_t mask = 0;     ///< the fused mask it joined
};

/// Why a fused mask did or did not become a pseudo class.
enum class mask_fate : std::uint8_t {
  kept,            ///< a pseudo class
  too_few_tokens,  ///< fewer than min_tokens ignored tokens in the partition
  seen_match,      ///< its centroid is within λ of a seen class's mean token
};

/// One fused mask (a group of clusters).
struct fused_mask {
  std::vector<index_t> members;  ///< pooled cluster ids; members[0] is the seed, then visit order
  index_t union_tokens = 0;      ///< |∪ m_i| before overlaps are resolved
  index_t tokens = 0;            ///< tokens it owns in the partition
  index_t ignored_tokens = 0;    ///< owned tokens whose token label is ignored (−1)
  mask_fate fate = mask_fate::too_few_tokens;
  std::int32_t pseudo = -1;  ///< m ∈ [0, M_b) when kept, else −1 (the fused label is C_seen + m)
  std::int32_t seen_class = -1;  ///< for `seen_match`: the most similar matching seen class
};

/**
 * Everything mask fusion decided for one image.
 * @tparam T float or double.
 */
template <real_scalar T>
struct mask_fusion_result {
  std::vector<std::int32_t> labels;      ///< Q: fused label map (seen label, C_seen + m, or −1)
  index_t num_pseudo = 0;                ///< M_b, pseudo classes kept
  std::vector<std::int32_t> partition;   ///< Q: the fused mask that owns each token (in [0, G))
  std::vector<pooled_cluster> clusters;  ///< P pooled clusters, scale-major
  std::vector<index_t> visit_order;      ///< P pooled ids, largest first (stable)
  tensor<T, 2> cluster_centroids;        ///< P × D: μ_i = n(mean of m_i)
  std::vector<fused_mask> masks;         ///< G fused masks, in seed-visit order
  tensor<T, 2> mask_centroids;           ///< G × D: ν_g = n(mean of the union's tokens)
};

namespace detail {

/// `out = n(sum)` with the sum in double; a zero sum gives a zero row.
template <real_scalar T>
void normalized_into(T* out, const std::vector<double>& sum) {
  double s = 0;
  for (double v : sum) s += v * v;
  const double inv = s > 0 ? 1.0 / std::sqrt(s) : 0.0;
  for (index_t c = 0; c < sum.size(); ++c) out[c] = static_cast<T>(sum[c] * inv);
}

/// Cosine of two unit rows: the SIMD dot in T (fixed summation order, so deterministic).
template <real_scalar T>
double dot_d(const T* a, const T* b, index_t d) {
  return static_cast<double>(simd::dot(a, b, d));
}

}  // namespace detail

/**
 * Mask fusion of one image (DESIGN §2.3 steps 3–4; the rules are in the file comment).
 * @param tokens       Q × D tokens of the image, L2-normalised (as the pipeline passes them).
 * @param token_labels Q token labels: a seen class in [0, num_seen) or −1 (ignored).
 * @param scales       S ≥ 1 clusterings of these tokens (labels of size Q, in [0, K'_s) where
 *                     K'_s = rows of the scale's centroids; only labels are used).
 * @param num_seen     C_seen: pseudo classes are numbered from it.
 * @param p            options.
 * @throws std::invalid_argument on empty input, mismatched sizes, labels out of range, λ not
 *         finite, or non-finite tokens (when `p.check_finite`).
 */
template <real_scalar T>
mask_fusion_result<T> fuse_masks(const_matrix_ref<T> tokens,
                                 std::span<const std::int32_t> token_labels,
                                 std::span<const scale_clustering<T>> scales, std::int64_t num_seen,
                                 const mask_fusion_options& p = {}) {
  constexpr const char* where = "fuse_masks";
  const index_t Q = tokens.rows, D = tokens.cols;
  require(Q > 0 && D > 0,
          std::string(where) + ": tokens are empty " + shape_string(tokens.shape()));
  require(!scales.empty(), std::string(where) + ": no scales to fuse");
  require(num_seen >= 0 && num_seen <= std::int64_t(1) << 30,
          std::string(where) + ": num_seen must be in [0, 2^30], got " + std::to_string(num_seen));
  require(std::isfinite(p.lambda), std::string(where) + ": lambda must be finite");
  check_extent(where, "token_labels size", token_labels.size(), "number of tokens", Q);
  for (index_t q = 0; q < Q; ++q)
    if (token_labels[q] < -1 || token_labels[q] >= num_seen)
      throw std::invalid_argument(std::string(where) + ": token " + std::to_string(q) +
                                  " has label " + std::to_string(token_labels[q]) +
                                  ", expected -1 or a seen class in [0, " +
                                  std::to_string(num_seen) + ")");
  for (index_t s = 0; s < scales.size(); ++s) {
    const auto& sc = scales[s];
    check_extent(where, "labels size of scale " + std::to_string(s), sc.labels.size(),
                 "number of tokens", Q);
    const auto k = static_cast<std::int64_t>(sc.centroids.shape()[0]);
    for (index_t q = 0; q < Q; ++q)
      if (sc.labels[q] < 0 || sc.labels[q] >= k)
        throw std::invalid_argument(std::string(where) + ": scale " + std::to_string(s) +
                                    " labels token " + std::to_string(q) + " with cluster " +
                                    std::to_string(sc.labels[q]) + ", outside [0, " +
                                    std::to_string(k) + ")");
  }
  if (p.check_finite)
    for (index_t q = 0; q < Q; ++q) check_finite(where, "tokens", tokens.row(q), D);

  mask_fusion_result<T> r;

  // --- pool the clusters: sizes, token lists, μ_i --------------------------------------------
  std::vector<std::vector<index_t>> members_of;  // token lists per pooled cluster
  for (index_t s = 0; s < scales.size(); ++s) {
    const auto& sc = scales[s];
    const index_t k = sc.centroids.shape()[0];
    std::vector<std::vector<index_t>> lists(k);
    for (index_t q = 0; q < Q; ++q) lists[static_cast<index_t>(sc.labels[q])].push_back(q);
    for (index_t c = 0; c < k; ++c) {
      if (lists[c].empty()) continue;
      r.clusters.push_back({s, c, lists[c].size(), 0});
      members_of.push_back(std::move(lists[c]));
    }
  }
  const index_t P = r.clusters.size();
  std::vector<double> sum(D);
  auto mean_direction = [&](const std::vector<index_t>& toks, T* out) {
    std::fill(sum.begin(), sum.end(), 0.0);
    for (index_t q : toks) {
      const T* z = tokens.row(q);
      for (index_t c = 0; c < D; ++c) sum[c] += static_cast<double>(z[c]);
    }
    detail::normalized_into(out, sum);
  };
  r.cluster_centroids = tensor<T, 2>::from_shape({P, D});
  for (index_t i = 0; i < P; ++i) mean_direction(members_of[i], &r.cluster_centroids(i, 0));

  // --- visit largest first, greedy groups around each unused seed -------------------------------
  r.visit_order.resize(P);
  std::iota(r.visit_order.begin(), r.visit_order.end(), index_t(0));
  std::stable_sort(r.visit_order.begin(), r.visit_order.end(),
                   [&](index_t a, index_t b) { return r.clusters[a].size > r.clusters[b].size; });
  std::vector<char> used(P, 0);
  for (index_t vi = 0; vi < P; ++vi) {
    const index_t i = r.visit_order[vi];
    if (used[i]) continue;
    used[i] = 1;
    fused_mask m;
    m.members.push_back(i);
    const index_t g = r.masks.size();
    r.clusters[i].mask = g;
    for (index_t vj = vi + 1; vj < P; ++vj) {
      const index_t j = r.visit_order[vj];
      if (used[j]) continue;
      if (detail::dot_d(&r.cluster_centroids(i, 0), &r.cluster_centroids(j, 0), D) >= p.lambda) {
        used[j] = 1;
        m.members.push_back(j);
        r.clusters[j].mask = g;
      }
    }
    r.masks.push_back(std::move(m));
  }
  const index_t G = r.masks.size();

  // --- unions, ν_g, and the partition -----------------------------------------------------------
  std::vector<char> cover(G * Q, 0);
  r.mask_centroids = tensor<T, 2>::from_shape({G, D});
  for (index_t g = 0; g < G; ++g) {
    char* cg = cover.data() + g * Q;
    for (index_t i : r.masks[g].members)
      for (index_t q : members_of[i]) cg[q] = 1;
    std::vector<index_t> uni;
    for (index_t q = 0; q < Q; ++q)
      if (cg[q]) uni.push_back(q);
    r.masks[g].union_tokens = uni.size();
    mean_direction(uni, &r.mask_centroids(g, 0));
  }
  r.partition.assign(Q, -1);
  for (index_t q = 0; q < Q; ++q) {
    index_t best = G;
    double best_sim = 0;
    for (index_t g = 0; g < G; ++g) {
      if (!cover[g * Q + q]) continue;
      const double sim = detail::dot_d(tokens.row(q), &r.mask_centroids(g, 0), D);
      if (best == G || sim > best_sim) best = g, best_sim = sim;
    }
    r.partition[q] = static_cast<std::int32_t>(best);  // best < G: every token is in some cluster
    ++r.masks[best].tokens;
    if (token_labels[q] < 0) ++r.masks[best].ignored_tokens;
  }

  // --- fusion with the seen labels --------------------------------------------------------------
  // Seen classes present in the image, ascending (a map: C_seen may be large, the image has few).
  std::vector<std::int32_t> present;
  std::vector<std::vector<index_t>> seen_tokens;
  {
    std::map<std::int32_t, std::vector<index_t>> by_class;
    for (index_t q = 0; q < Q; ++q)
      if (token_labels[q] >= 0) by_class[token_labels[q]].push_back(q);
    for (auto& [c, toks] : by_class) {
      present.push_back(c);
      seen_tokens.push_back(std::move(toks));
    }
  }
  tensor<T, 2> seen_means = tensor<T, 2>::from_shape({present.size(), D});
  for (index_t k = 0; k < present.size(); ++k) mean_direction(seen_tokens[k], &seen_means(k, 0));

  const index_t min_ignored = std::max<index_t>(p.min_tokens, 1);
  for (index_t g = 0; g < G; ++g) {
    auto& m = r.masks[g];
    if (m.ignored_tokens < min_ignored) {
      m.fate = mask_fate::too_few_tokens;
      continue;
    }
    double best_sim = 0;
    for (index_t k = 0; k < present.size(); ++k) {
      const double sim = detail::dot_d(&r.mask_centroids(g, 0), &seen_means(k, 0), D);
      if (sim >= p.lambda && (m.seen_class < 0 || sim > best_sim))
        m.seen_class = present[k], best_sim = sim;
    }
    if (m.seen_class >= 0) {
      m.fate = mask_fate::seen_match;
      continue;
    }
    m.fate = mask_fate::kept;
    m.pseudo = static_cast<std::int32_t>(r.num_pseudo++);
  }
  r.labels.resize(Q);
  for (index_t q = 0; q < Q; ++q) {
    const std::int32_t seen = token_labels[q];
    const auto& m = r.masks[static_cast<index_t>(r.partition[q])];
    r.labels[q] = seen >= 0       ? seen
                  : m.pseudo >= 0 ? static_cast<std::int32_t>(num_seen + m.pseudo)
                                  : -1;
  }
  return r;
}

/// `fuse_masks` on a vector of scales.
template <real_scalar T>
mask_fusion_result<T> fuse_masks(const_matrix_ref<T> tokens,
                                 std::span<const std::int32_t> token_labels,
                                 const std::vector<scale_clustering<T>>& scales,
                                 std::int64_t num_seen, const mask_fusion_options& p = {}) {
  return fuse_masks<T>(tokens, token_labels, std::span<const scale_clustering<T>>(scales), num_seen,
                       p);
}

}  // namespace zss
