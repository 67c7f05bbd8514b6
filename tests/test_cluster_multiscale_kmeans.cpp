// SPDX-License-Identifier: Apache-2.0
// Tests for zss/cluster/multiscale_kmeans.hpp: partitions with compacted labels, batch = single.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "support/cluster_reference.hpp"
#include "zss/cluster/multiscale_kmeans.hpp"

namespace test_cluster_multiscale_kmeans {

using namespace zss;

namespace {

/// h × w × D unit tokens: the left third, the middle and the right part of the grid each near its
/// own direction (plus seeded noise), so the planted regions are known.
template <class T>
tensor<T, 3> planted(index_t h, index_t w, index_t d, std::uint64_t seed,
                     std::vector<std::int32_t>* region = nullptr) {
  rng g(seed);
  tensor<T, 3> t = tensor<T, 3>::from_shape({h, w, d});
  if (region) region->assign(h * w, 0);
  for (index_t y = 0; y < h; ++y)
    for (index_t x = 0; x < w; ++x) {
      const index_t r = x < w / 3 ? 0 : (x < 2 * w / 3 ? 1 : 2);
      if (region) (*region)[y * w + x] = static_cast<std::int32_t>(r);
      double s = 0;
      for (index_t j = 0; j < d; ++j) {
        t(y, x, j) = (j == r ? T(1) : T(0)) + g.normal<T>(T(0), T(0.05));
        s += double(t(y, x, j)) * double(t(y, x, j));
      }
      for (index_t j = 0; j < d; ++j) t(y, x, j) = T(t(y, x, j) / std::sqrt(s));
    }
  return t;
}

template <class T>
void check_scale(const scale_clustering<T>& s, index_t q, index_t d) {
  const index_t k = s.centroids.shape()[0];
  CHECK(s.centroids.shape()[1] == d);
  CHECK(s.labels.size() == q);
  CHECK(k >= 1);
  CHECK(k <= s.seeds);
  CHECK(test::compact_labels(s.labels, k));  // a partition into K' non-empty clusters
  CHECK(s.iterations >= 1);
  CHECK(s.iterations <= 10);
}

}  // namespace

TEST_CASE_TEMPLATE("multiscale K-Means returns one compact partition per window", T, float,
                   double) {
  std::vector<std::int32_t> region;
  const auto t = planted<T>(16, 16, 8, 1, &region);
  const auto scales = multiscale_kmeans(t);  // defaults: windows {2, 4}, max_iter 10
  REQUIRE(scales.size() == 2);
  CHECK(scales[0].window == 2);
  CHECK(scales[0].seeds == 64);
  CHECK(scales[1].window == 4);
  CHECK(scales[1].seeds == 16);
  for (const auto& s : scales) {
    check_scale(s, 256, 8);
    // Each cluster lies inside one planted region: a refinement of the planted partition.
    std::vector<std::int32_t> owner(s.centroids.shape()[0], -1);
    for (index_t q = 0; q < 256; ++q) {
      auto& o = owner[static_cast<index_t>(s.labels[q])];
      if (o < 0) o = region[q];
      CHECK(o == region[q]);
    }
    tensor<T, 2> X = tensor<T, 2>::from_shape({256, 8});
    std::copy_n(t.data(), 256 * 8, X.data());
    CHECK(s.inertia == doctest::Approx(test::exact_inertia(X, s.centroids, s.labels))
                           .epsilon(std::is_same_v<T, float> ? 1e-6 : 1e-12));
  }
}

TEST_CASE_TEMPLATE("identical tokens collapse to one cluster: empty clusters are dropped", T, float,
                   double) {
  tensor<T, 3> t = tensor<T, 3>::from_shape({6, 5, 3});
  for (index_t i = 0; i < t.size(); ++i) t.data()[i] = T(i % 3 == 0 ? 1 : 0);
  multiscale_options p;
  p.windows = {2, 3};
  const auto scales = multiscale_kmeans(t, p);
  REQUIRE(scales.size() == 2);
  CHECK(scales[0].seeds == 9);  // ⌈6/2⌉·⌈5/2⌉
  CHECK(scales[1].seeds == 4);  // ⌈6/3⌉·⌈5/3⌉
  for (const auto& s : scales) {
    CHECK(s.centroids.shape()[0] == 1);
    CHECK(test::compact_labels(s.labels, 1));
    CHECK(s.converged);
  }
}

TEST_CASE_TEMPLATE("the k-means++ option uses explicit Ks", T, float, double) {
  const auto t = planted<T>(8, 12, 6, 2);
  multiscale_options p;
  p.ks = {2, 3, 7};
  p.seed = 4;
  const auto scales = multiscale_kmeans(t, p);
  REQUIRE(scales.size() == 3);
  for (index_t j = 0; j < 3; ++j) {
    CHECK(scales[j].window == 0);
    CHECK(scales[j].seeds == p.ks[j]);
    check_scale(scales[j], 96, 6);
  }
  CHECK(scales[1].centroids.shape()[0] == 3);
}

TEST_CASE_TEMPLATE("a batch equals the images one by one, bitwise, for any thread count", T, float,
                   double) {
  const index_t b = 3, h = 8, w = 8, d = 5;
  tensor<T, 4> all = tensor<T, 4>::from_shape({b, h, w, d});
  std::vector<tensor<T, 3>> imgs;
  for (index_t i = 0; i < b; ++i) {
    imgs.push_back(planted<T>(h, w, d, 10 + i));
    std::copy_n(imgs.back().data(), h * w * d, all.data() + i * h * w * d);
  }
  for (bool pp : {false, true}) {
    multiscale_options p;
    if (pp) p.ks = {2, 5};
    p.spherical = pp;
    p.seed = 9;
    p.threads = 1;
    const auto r1 = multiscale_kmeans_batch(all, p);
    p.threads = 2;
    const auto r2 = multiscale_kmeans_batch(all, p);
    REQUIRE(r1.size() == b);
    for (index_t i = 0; i < b; ++i) {
      const auto one = multiscale_kmeans(imgs[i], p, i);
      REQUIRE(one.size() == r1[i].size());
      for (index_t j = 0; j < one.size(); ++j) {
        CHECK(r1[i][j].labels == one[j].labels);
        CHECK(r1[i][j].centroids == one[j].centroids);
        CHECK(r2[i][j].labels == one[j].labels);
        CHECK(r2[i][j].centroids == one[j].centroids);
        CHECK(r2[i][j].iterations == one[j].iterations);
      }
    }
  }
}

TEST_CASE_TEMPLATE("nested seeds: scale j starts from the first K_j seeds of one k-means++ pass", T,
                   float, double) {
  // The reference: one kmeanspp_init per image with the largest K on its stream
  // (image << 16) | j_max, then an independent fit per scale from the first K_j of those seeds.
  const index_t h = 8, w = 9, d = 6;
  std::vector<tensor<T, 3>> imgs;
  for (std::uint64_t b = 0; b < 3; ++b) imgs.push_back(planted<T>(h, w, d, 20 + b));
  multiscale_options p;
  p.ks = {3, 12, 2, 12, 5};  // the largest K twice: the first one names the stream
  p.nested_seeds = true;
  p.seed = 7;
  std::vector<matrix_ref<const T>> views;
  for (const auto& t : imgs) views.emplace_back(t.data(), h * w, d);
  for (int threads : {1, 2}) {
    CAPTURE(threads);
    p.threads = threads;
    const auto batch = multiscale_kmeans_batch<T>(views, h, w, p);
    REQUIRE(batch.size() == 3);
    for (index_t b = 0; b < 3; ++b) {
      CAPTURE(b);
      const auto seeds = kmeanspp_init<T>(views[b], 12, 7, (std::uint64_t(b) << 16) | 1u, 0, 1);
      const auto single = multiscale_kmeans<T>(views[b], h, w, p, b);
      for (index_t j = 0; j < p.ks.size(); ++j) {
        CAPTURE(j);
        kmeans_options q;
        q.max_iter = p.max_iter;
        q.empty = empty_cluster_policy::drop;
        q.threads = 1;
        const auto ref = kmeans<T>(views[b], matrix_ref<const T>(seeds.data(), p.ks[j], d), q);
        const auto& got = batch[b][j];
        CHECK(got.seeds == p.ks[j]);
        CHECK(got.labels == ref.labels);
        CHECK(got.iterations == ref.iterations);
        REQUIRE(got.centroids.size() == ref.centroids.size());
        CHECK(std::equal(got.centroids.begin(), got.centroids.end(), ref.centroids.begin()));
        CHECK(single[j].labels == got.labels);
        check_scale(got, h * w, d);
      }
      // The two scales with K = 12 start from the same seeds: the same result.
      CHECK(batch[b][1].labels == batch[b][3].labels);
    }
  }
  // Without the option the scales draw independent seeds (streams differ per scale).
  p.nested_seeds = false;
  p.threads = 1;
  const auto indep = multiscale_kmeans<T>(views[0], h, w, p, 0);
  const auto seeds3 = kmeanspp_init<T>(views[0], 3, 7, 0u, 0, 1);
  const auto seeds12 = kmeanspp_init<T>(views[0], 12, 7, 1u, 0, 1);
  CHECK_FALSE(std::equal(seeds3.begin(), seeds3.end(), seeds12.begin()));
  CHECK(indep.size() == p.ks.size());
}

TEST_CASE("nested seeds check the tokens first, whatever check_finite says, and need ks") {
  auto t = planted<float>(4, 4, 3, 9);
  t(2, 1, 0) = std::numeric_limits<float>::quiet_NaN();
  multiscale_options p;
  p.ks = {2, 3};
  p.nested_seeds = true;
  p.check_finite = false;
  CHECK_THROWS_WITH_AS(multiscale_kmeans(t, p),
                       "multiscale_kmeans: X contains a non-finite value (nan) at (9, 0)",
                       std::invalid_argument);
  auto big = planted<float>(4, 4, 3, 9);
  for (auto& v : big) v *= 1e30f;
  CHECK_THROWS_AS(multiscale_kmeans(big, p), std::invalid_argument);
  p.ks = {};  // window scales: nothing to nest
  p.windows = {2};
  p.check_finite = true;
  CHECK_THROWS_WITH_AS(
      multiscale_kmeans(planted<float>(4, 4, 3, 9), p),
      "multiscale_kmeans: nested_seeds needs ks (window scales draw no k-means++ seeds)",
      std::invalid_argument);
}

TEST_CASE("multiscale K-Means rejects bad grids, windows and Ks") {
  const auto t = planted<float>(4, 4, 3, 1);
  const matrix_ref<const float> tok(t.data(), 16, 3);
  CHECK_THROWS_WITH_AS(multiscale_kmeans<float>(tok, 3, 4),
                       "multiscale_kmeans: grid 3 x 4 = 12 tokens, but the data has 16 rows",
                       std::invalid_argument);
  multiscale_options p;
  p.windows = {2, 0};
  CHECK_THROWS_WITH_AS(multiscale_kmeans<float>(tok, 4, 4, p),
                       "multiscale_kmeans: window sizes must be >= 1, got 0",
                       std::invalid_argument);
  p.windows = {};
  CHECK_THROWS_AS(multiscale_kmeans<float>(tok, 4, 4, p), std::invalid_argument);
  p.ks = {4, 17};
  CHECK_THROWS_WITH_AS(multiscale_kmeans<float>(tok, 4, 4, p),
                       "multiscale_kmeans: k (17) must be in [1, number of tokens (16)]",
                       std::invalid_argument);
}

}  // namespace test_cluster_multiscale_kmeans
