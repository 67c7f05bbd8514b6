// SPDX-License-Identifier: Apache-2.0
// Tests for zss/cluster/mask_fusion.hpp: a hand-worked example, the invariants of DESIGN §2.3
// steps 3–4 on random inputs (checked against quantities recomputed here), a planted scene run
// through the real multi-scale K-Means, and input validation.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <set>

#include "zss/cluster/mask_fusion.hpp"
#include "zss/cluster/multiscale_kmeans.hpp"
#include "zss/core/random.hpp"

namespace test_cluster_mask_fusion {

using namespace zss;

namespace {

template <class T>
scale_clustering<T> make_scale(std::vector<std::int32_t> labels, index_t k, index_t d) {
  scale_clustering<T> s;
  s.centroids = tensor<T, 2>::from_shape({k, d});
  s.centroids.fill(T(0));
  s.labels = std::move(labels);
  return s;
}

template <class T>
std::vector<double> normalized_mean(matrix_ref<const T> z, const std::vector<index_t>& toks) {
  std::vector<double> m(z.cols, 0.0);
  for (index_t q : toks)
    for (index_t c = 0; c < z.cols; ++c) m[c] += double(z(q, c));
  double n = 0;
  for (double v : m) n += v * v;
  n = std::sqrt(n);
  for (double& v : m) v = n > 0 ? v / n : 0;
  return m;
}

template <class T>
double dot(const std::vector<double>& a, const T* b) {
  double s = 0;
  for (index_t c = 0; c < a.size(); ++c) s += a[c] * double(b[c]);
  return s;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (index_t c = 0; c < a.size(); ++c) s += a[c] * b[c];
  return s;
}

/// Checks every invariant of DESIGN §2.3 steps 3–4, recomputing the geometry independently.
template <class T>
void check_invariants(const mask_fusion_result<T>& r, matrix_ref<const T> z,
                      const std::vector<std::int32_t>& tl,
                      const std::vector<scale_clustering<T>>& scales, std::int32_t num_seen,
                      const mask_fusion_options& p) {
  const index_t Q = z.rows, G = r.masks.size(), P = r.clusters.size();
  const double tol =
      std::is_same_v<T, float> ? 1e-5 : 1e-12;  // sims within tol of λ are not judged

  // Pooled clusters are exactly the non-empty clusters of every scale, scale-major, with μ_i.
  std::vector<std::vector<index_t>> toks;
  std::vector<std::vector<double>> mu;
  index_t i = 0;
  for (index_t s = 0; s < scales.size(); ++s)
    for (index_t c = 0; c < scales[s].centroids.shape()[0]; ++c) {
      std::vector<index_t> t;
      for (index_t q = 0; q < Q; ++q)
        if (scales[s].labels[q] == std::int32_t(c)) t.push_back(q);
      if (t.empty()) continue;
      REQUIRE(i < P);
      CHECK(r.clusters[i].scale == s);
      CHECK(r.clusters[i].cluster == c);
      CHECK(r.clusters[i].size == t.size());
      mu.push_back(normalized_mean(z, t));
      for (index_t d = 0; d < z.cols; ++d)
        CHECK(double(r.cluster_centroids(i, d)) == doctest::Approx(mu[i][d]).epsilon(tol));
      toks.push_back(std::move(t));
      ++i;
    }
  REQUIRE(i == P);

  // Visit order: a permutation, sizes non-increasing, ties in pooled order.
  REQUIRE(r.visit_order.size() == P);
  std::vector<index_t> pos(P, P);
  for (index_t v = 0; v < P; ++v) pos[r.visit_order[v]] = v;
  for (index_t v = 0; v < P; ++v) CHECK(pos[v] < P);
  for (index_t v = 1; v < P; ++v) {
    const auto a = r.visit_order[v - 1], b = r.visit_order[v];
    CHECK((r.clusters[a].size > r.clusters[b].size ||
           (r.clusters[a].size == r.clusters[b].size && a < b)));
  }

  // Each cluster in exactly one mask; members[0] is the seed; the visiting rule holds.
  std::vector<int> count(P, 0);
  for (index_t g = 0; g < G; ++g) {
    const auto& m = r.masks[g];
    REQUIRE(!m.members.empty());
    const index_t seed = m.members[0];
    for (index_t j : m.members) {
      ++count[j];
      CHECK(r.clusters[j].mask == g);
      CHECK(pos[j] >= pos[seed]);
      if (j != seed) CHECK(dot(mu[seed], mu[j]) >= p.lambda - tol);
      // No earlier seed (visited before j) was similar enough to take j.
      for (index_t h = 0; h < g; ++h) {
        const index_t other = r.masks[h].members[0];
        if (pos[other] < pos[j]) CHECK(dot(mu[other], mu[j]) < p.lambda + tol);
      }
    }
    // Seeds are visited in mask order; no two seeds are ≥ λ similar.
    if (g > 0) CHECK(pos[r.masks[g - 1].members[0]] < pos[seed]);
    for (index_t h = 0; h < g; ++h)
      CHECK(dot(mu[r.masks[h].members[0]], mu[seed]) < p.lambda + tol);
  }
  for (index_t j = 0; j < P; ++j) CHECK(count[j] == 1);

  // Unions, ν_g, and the partition: every token owned by exactly one covering mask, the most
  // similar.
  std::vector<std::vector<char>> cover(G, std::vector<char>(Q, 0));
  std::vector<std::vector<double>> nu(G);
  for (index_t g = 0; g < G; ++g) {
    for (index_t j : r.masks[g].members)
      for (index_t q : toks[j]) cover[g][q] = 1;
    std::vector<index_t> uni;
    for (index_t q = 0; q < Q; ++q)
      if (cover[g][q]) uni.push_back(q);
    CHECK(r.masks[g].union_tokens == uni.size());
    nu[g] = normalized_mean(z, uni);
  }
  REQUIRE(r.partition.size() == Q);
  std::vector<index_t> owned(G, 0), ignored(G, 0);
  for (index_t q = 0; q < Q; ++q) {
    const auto g = r.partition[q];
    REQUIRE(g >= 0);
    REQUIRE(index_t(g) < G);
    CHECK(cover[g][q]);
    for (index_t h = 0; h < G; ++h)
      if (cover[h][q] && index_t(g) != h) CHECK(dot(nu[h], z.row(q)) <= dot(nu[g], z.row(q)) + tol);
    ++owned[g];
    if (tl[q] < 0) ++ignored[g];
  }
  for (index_t g = 0; g < G; ++g) {
    CHECK(r.masks[g].tokens == owned[g]);
    CHECK(r.masks[g].ignored_tokens == ignored[g]);
  }

  // Fusion with seen labels: seen labels kept; pseudo ids only on ignored tokens, contiguous.
  std::map<std::int32_t, std::vector<index_t>> seen;
  for (index_t q = 0; q < Q; ++q)
    if (tl[q] >= 0) seen[tl[q]].push_back(q);
  std::set<std::int32_t> pseudo_used;
  for (index_t q = 0; q < Q; ++q) {
    if (tl[q] >= 0) {
      CHECK(r.labels[q] == tl[q]);
    } else {
      CHECK((r.labels[q] == -1 || r.labels[q] >= num_seen));
      if (r.labels[q] >= num_seen) pseudo_used.insert(r.labels[q]);
      const auto& m = r.masks[r.partition[q]];
      CHECK(r.labels[q] == (m.pseudo >= 0 ? num_seen + m.pseudo : -1));
    }
  }
  CHECK(pseudo_used.size() == r.num_pseudo);
  if (!pseudo_used.empty()) {
    CHECK(*pseudo_used.begin() == num_seen);
    CHECK(*pseudo_used.rbegin() == num_seen + std::int32_t(r.num_pseudo) - 1);
  }
  std::int32_t next = 0;
  for (index_t g = 0; g < G; ++g) {
    const auto& m = r.masks[g];
    double best = -2;
    for (const auto& [c, t] : seen) best = std::max(best, dot(normalized_mean(z, t), nu[g]));
    const bool enough = m.ignored_tokens >= std::max<index_t>(p.min_tokens, 1);
    if (std::abs(best - p.lambda) < tol) continue;  // too close to call
    const bool should_keep = enough && best < p.lambda;
    CHECK(bool(m.pseudo >= 0) == should_keep);
    CHECK(bool(m.fate == mask_fate::kept) == should_keep);
    if (m.pseudo >= 0) CHECK(m.pseudo == next++);
    if (enough && !should_keep) CHECK(m.fate == mask_fate::seen_match);
  }
}

}  // namespace

TEST_CASE_TEMPLATE("fuse_masks on a hand-worked example", T, float, double) {
  // Tokens: q0, q1 = e0; q2, q3 = e1; q4, q5 = e2.  Scale 0: {q0,q1}, {q2,q3}, {q4,q5}.
  // Scale 1: {q0..q3} (μ = n(e0 + e1), size 4) and {q4, q5} (μ = e2).  q0 is seen class 0.
  tensor<T, 2> z = {{1, 0, 0}, {1, 0, 0}, {0, 1, 0}, {0, 1, 0}, {0, 0, 1}, {0, 0, 1}};
  const std::vector<std::int32_t> tl = {0, -1, -1, -1, -1, -1};
  const std::vector<scale_clustering<T>> scales = {make_scale<T>({0, 0, 1, 1, 2, 2}, 3, 3),
                                                   make_scale<T>({0, 0, 0, 0, 1, 1}, 2, 3)};
  mask_fusion_options p;

  SUBCASE("lambda 0.9: the size-4 cluster stands alone; e2 clusters of both scales merge") {
    // Visit: pooled 3 (size 4) first, then 0, 1, 2, 4.  ⟨n(e0+e1), e0⟩ ≈ 0.707 < 0.9.
    // Masks: {3}, {0}, {1}, {2, 4}.  q0, q1 go to mask 1 (sim 1 > 0.707), q2, q3 to mask 2.
    // Mask 0 owns nothing; mask 1 owns one ignored token (< 2); masks 2, 3 become pseudo 0, 1.
    const auto r = fuse_masks<T>(as_matrix(z), tl, scales, 2, p);
    REQUIRE(r.masks.size() == 4);
    CHECK(r.visit_order == std::vector<index_t>{3, 0, 1, 2, 4});
    CHECK(r.masks[0].members == std::vector<index_t>{3});
    CHECK(r.masks[3].members == std::vector<index_t>{2, 4});
    CHECK(r.partition == std::vector<std::int32_t>{1, 1, 2, 2, 3, 3});
    CHECK(r.masks[0].tokens == 0);
    CHECK(r.masks[0].union_tokens == 4);
    CHECK(r.masks[1].fate == mask_fate::too_few_tokens);
    CHECK(r.num_pseudo == 2);
    CHECK(r.labels == std::vector<std::int32_t>{0, -1, 2, 2, 3, 3});
    check_invariants<T>(r, as_matrix(z), tl, scales, 2, p);
  }
  SUBCASE(
      "lambda 0.7: the e0/e1 clusters join the big one, which matches seen class 0 and is "
      "dropped") {
    p.lambda = 0.7;
    const auto r = fuse_masks<T>(as_matrix(z), tl, scales, 2, p);
    REQUIRE(r.masks.size() == 2);
    CHECK(r.masks[0].members == std::vector<index_t>{3, 0, 1});
    CHECK(r.masks[0].fate == mask_fate::seen_match);
    CHECK(r.masks[0].seen_class == 0);
    CHECK(r.num_pseudo == 1);
    CHECK(r.labels == std::vector<std::int32_t>{0, -1, -1, -1, 2, 2});
    check_invariants<T>(r, as_matrix(z), tl, scales, 2, p);
  }
  SUBCASE("min_tokens 3 drops every mask") {
    p.min_tokens = 3;
    const auto r = fuse_masks<T>(as_matrix(z), tl, scales, 2, p);
    CHECK(r.num_pseudo == 0);
    CHECK(r.labels == std::vector<std::int32_t>{0, -1, -1, -1, -1, -1});
  }
  SUBCASE("without seen classes nothing is matched; pseudo ids start at num_seen") {
    const std::vector<std::int32_t> none(6, -1);
    p.lambda = 0.7;
    const auto r = fuse_masks<T>(as_matrix(z), none, scales, 5, p);
    CHECK(r.num_pseudo == 2);
    CHECK(r.labels == std::vector<std::int32_t>{5, 5, 5, 5, 6, 6});
  }
}

TEST_CASE_TEMPLATE("fuse_masks invariants on random clusterings", T, float, double) {
  rng g(7);
  for (int trial = 0; trial < 24; ++trial) {
    const index_t Q = 20 + g.below(60), D = 2 + g.below(6), dirs = 2 + g.below(4);
    // Tokens near a few random directions, so that clusters can be similar enough to merge.
    std::vector<std::vector<double>> base(dirs, std::vector<double>(D));
    for (auto& b : base)
      for (auto& v : b) v = g.normal<double>();
    tensor<T, 2> z = tensor<T, 2>::from_shape({Q, D});
    for (index_t q = 0; q < Q; ++q) {
      const auto& b = base[g.below(dirs)];
      double n = 0;
      for (index_t c = 0; c < D; ++c)
        z(q, c) = T(b[c] + 0.3 * g.normal<double>()), n += double(z(q, c)) * double(z(q, c));
      for (index_t c = 0; c < D; ++c) z(q, c) = T(double(z(q, c)) / std::sqrt(n));
    }
    const std::int32_t num_seen = std::int32_t(g.below(4));
    std::vector<std::int32_t> tl(Q);
    for (auto& l : tl)
      l = num_seen > 0 && g.below(3) == 0 ? std::int32_t(g.below(index_t(num_seen))) : -1;
    std::vector<scale_clustering<T>> scales;
    const index_t S = 1 + g.below(3);
    for (index_t s = 0; s < S; ++s) {
      const index_t k = 1 + g.below(12);  // some clusters stay empty
      std::vector<std::int32_t> lab(Q);
      for (auto& l : lab) l = std::int32_t(g.below(k));
      scales.push_back(make_scale<T>(lab, k, D));
    }
    for (double lambda : {0.2, 0.6, 0.9}) {
      mask_fusion_options p;
      p.lambda = lambda;
      p.min_tokens = g.below(4);
      CAPTURE(trial);
      CAPTURE(lambda);
      const auto r = fuse_masks<T>(as_matrix(z), tl, scales, num_seen, p);
      check_invariants<T>(r, as_matrix(z), tl, scales, num_seen, p);
    }
  }
}

TEST_CASE_TEMPLATE("a planted scene: three blobs in the ignored area come back as three segments",
                   T, float, double) {
  // 16 x 16 grid. Left half annotated: rows 0-7 class 0, rows 8-15 class 1. Right half ignored,
  // cut into three irregular blobs (not aligned with any window). Each region has its own random
  // direction; tokens = direction + small noise, normalised.
  const index_t h = 16, w = 16, D = 24;
  rng g(2024);
  auto region = [](index_t y, index_t x) -> int {
    if (x < 8) return y < 8 ? 0 : 1;
    const index_t u = x - 8;
    if (2 * y + u < 11) return 2;  // blob A: upper wedge
    if (3 * y < 34 + u) return 3;  // blob B: middle band, slanted
    return 4;                      // blob C: the rest
  };
  std::vector<std::vector<double>> dir(5, std::vector<double>(D));
  for (auto& d : dir)
    for (auto& v : d) v = g.normal<double>();
  tensor<T, 2> z = tensor<T, 2>::from_shape({h * w, D});
  std::vector<std::int32_t> tl(h * w);
  std::vector<int> truth(h * w);
  for (index_t y = 0; y < h; ++y)
    for (index_t x = 0; x < w; ++x) {
      const index_t q = y * w + x;
      truth[q] = region(y, x);
      tl[q] = truth[q] < 2 ? truth[q] : -1;
      double n = 0;
      for (index_t c = 0; c < D; ++c) {
        z(q, c) = T(dir[truth[q]][c] * 1.0 + 0.08 * g.normal<double>() * std::sqrt(double(D)) / 4);
        n += double(z(q, c)) * double(z(q, c));
      }
      for (index_t c = 0; c < D; ++c) z(q, c) = T(double(z(q, c)) / std::sqrt(n));
    }
  for (int r = 2; r <= 4; ++r) CHECK(std::count(truth.begin(), truth.end(), r) >= 10);

  multiscale_options mp;
  mp.windows = {2, 4};
  mp.threads = 1;
  const auto scales = multiscale_kmeans<T>(as_matrix(z), h, w, mp);
  const auto r = fuse_masks<T>(as_matrix(z), tl, scales, 2);
  check_invariants<T>(r, as_matrix(z), tl, scales, 2, mask_fusion_options{});

  CHECK(r.num_pseudo == 3);
  std::map<int, std::set<std::int32_t>> labels_of_blob;
  std::map<std::int32_t, std::set<int>> blobs_of_label;
  for (index_t q = 0; q < h * w; ++q) {
    if (truth[q] < 2) {
      CHECK(r.labels[q] == truth[q]);
      continue;
    }
    labels_of_blob[truth[q]].insert(r.labels[q]);
    blobs_of_label[r.labels[q]].insert(truth[q]);
  }
  REQUIRE(labels_of_blob.size() == 3);
  for (const auto& [blob, labels] : labels_of_blob) {
    CAPTURE(blob);
    CHECK(labels.size() == 1);    // one segment per blob …
    CHECK(*labels.begin() >= 2);  // … a pseudo class, never −1 …
  }
  CHECK(blobs_of_label.size() == 3);  // … and three different segments
  for (const auto& [label, blobs] : blobs_of_label) CHECK(blobs.size() == 1);
}

TEST_CASE("fuse_masks validates its input") {
  tensor<double, 2> z = {{1, 0}, {0, 1}, {1, 0}};
  std::vector<std::int32_t> tl = {0, -1, -1};
  std::vector<scale_clustering<double>> scales = {make_scale<double>({0, 1, 0}, 2, 2)};
  CHECK_NOTHROW(fuse_masks<double>(as_matrix(z), tl, scales, 1));
  CHECK_THROWS_WITH_AS(fuse_masks<double>(as_matrix(z), tl, scales, 0),
                       doctest::Contains("token 0 has label 0"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      fuse_masks<double>(as_matrix(z), std::vector<std::int32_t>{0, -1}, scales, 1),
      doctest::Contains("token_labels size (2)"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      fuse_masks<double>(as_matrix(z), tl, std::vector<scale_clustering<double>>{}, 1),
      doctest::Contains("no scales"), std::invalid_argument);
  std::vector<scale_clustering<double>> bad = {make_scale<double>({0, 2, 0}, 2, 2)};
  CHECK_THROWS_WITH_AS(fuse_masks<double>(as_matrix(z), tl, bad, 1),
                       doctest::Contains("cluster 2, outside [0, 2)"), std::invalid_argument);
  bad = {make_scale<double>({0, 1}, 2, 2)};
  CHECK_THROWS_AS(fuse_masks<double>(as_matrix(z), tl, bad, 1), std::invalid_argument);
  z(1, 1) = std::nan("");
  CHECK_THROWS_WITH_AS(fuse_masks<double>(as_matrix(z), tl, scales, 1),
                       doctest::Contains("non-finite"), std::invalid_argument);
}

}  // namespace test_cluster_mask_fusion
