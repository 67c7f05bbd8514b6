// SPDX-License-Identifier: Apache-2.0
// Tests for zss/cluster/hamerly.hpp: a pruned fit (kmeans_options::prune) gives bitwise the
// labels, centroids, iterations and inertia of plain Lloyd from the same seeds, on data with
// near-ties and exact ties, for every empty-cluster policy and thread count; and it does skip
// distances where the bounds allow.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "support/random_data.hpp"
#include "zss/cluster/kmeans.hpp"

namespace test_cluster_hamerly {

using namespace zss;

namespace {

// Overlapping Gaussian blobs (many points near a boundary), optionally L2-normalised rows.
template <class T>
tensor<T, 2> overlapping(index_t n, index_t d, index_t blobs, std::uint64_t seed, bool unit) {
  rng g(seed);
  tensor<T, 2> centres = tensor<T, 2>::from_shape({blobs, d});
  for (auto& c : centres) c = g.normal<T>();
  tensor<T, 2> X = tensor<T, 2>::from_shape({n, d});
  for (index_t i = 0; i < n; ++i) {
    const index_t b = g.below(blobs);
    double s = 0;
    for (index_t j = 0; j < d; ++j) {
      X(i, j) = centres(b, j) + g.normal<T>(T(0), T(0.8));
      s += double(X(i, j)) * double(X(i, j));
    }
    if (unit)
      for (index_t j = 0; j < d; ++j) X(i, j) = T(double(X(i, j)) / std::sqrt(s));
  }
  return X;
}

// Points on a small integer lattice: exact distance ties between centroids are common.
template <class T>
tensor<T, 2> lattice(index_t n, index_t d, std::uint64_t seed) {
  tensor<T, 2> X = tensor<T, 2>::from_shape({n, d});
  const auto v = test::integer_vector<T>(n * d, seed, 2);
  std::copy(v.begin(), v.end(), X.begin());
  return X;
}

template <class T>
void check_same(const tensor<T, 2>& X, kmeans_options p) {
  p.prune = false;
  const auto a = kmeans<T>(X, p);
  p.prune = true;
  const auto b = kmeans<T>(X, p);
  REQUIRE(a.labels == b.labels);
  CHECK(a.centroids == b.centroids);
  CHECK(a.iterations == b.iterations);
  CHECK(a.changed == b.changed);
  CHECK(a.inertia == b.inertia);
  CHECK(a.converged == b.converged);
  CHECK(a.strict_convergence == b.strict_convergence);
  CHECK(a.empty_clusters == b.empty_clusters);
  // At most one extra dot product per point and step (the bound tightening) beyond plain Lloyd.
  const index_t n = X.shape()[0], steps = a.iterations + (a.strict_convergence ? 0 : 1);
  CHECK(b.distances_computed <= a.distances_computed + n * steps);
  if (p.empty == empty_cluster_policy::reseed_farthest)
    CHECK(a.distances_computed == n * p.k * steps);
}

}  // namespace

TEST_CASE_TEMPLATE("pruned fits equal plain Lloyd bitwise (near-ties, exact ties, policies)", T,
                   float, double) {
  struct data_case {
    tensor<T, 2> X;
    const char* name;
  };
  std::vector<data_case> data;
  data.push_back({overlapping<T>(300, 7, 6, 1, false), "overlapping"});
  data.push_back({overlapping<T>(250, 48, 10, 2, true), "unit rows"});
  data.push_back({lattice<T>(200, 3, 3), "lattice"});
  for (const auto& dc : data)
    for (index_t k : {1, 3, 17, 40})
      for (int variant = 0; variant < 4; ++variant) {
        CAPTURE(dc.name);
        CAPTURE(k);
        CAPTURE(variant);
        kmeans_options p;
        p.k = k;
        p.max_iter = 60;
        p.tol = 0;
        p.seed = 7 + k;
        p.threads = variant & 1 ? 2 : 1;
        p.empty = variant & 2 ? empty_cluster_policy::drop : empty_cluster_policy::reseed_farthest;
        p.spherical = variant == 3;
        check_same(dc.X, p);
      }
}

TEST_CASE("bounds skip most distances on separated clusters, and only those") {
  // 12 tight blobs far apart: after the first steps almost every point keeps its label.
  const auto X = overlapping<float>(3000, 16, 12, 5, false);
  kmeans_options p;
  p.k = 12;
  p.max_iter = 100;
  p.tol = 0;
  p.threads = 2;
  p.prune = true;
  const auto r = kmeans<float>(X, p);
  p.prune = false;
  const auto plain = kmeans<float>(X, p);
  REQUIRE(r.labels == plain.labels);
  REQUIRE(r.iterations >= 3);
  // Every step but the first recomputes a minority of the points.
  CHECK(double(r.distances_computed) < 0.6 * double(plain.distances_computed));
  for (index_t s = 1; s < r.objective.size(); ++s) CHECK(std::isnan(r.objective[s]));
  CHECK(r.objective[0] == plain.objective[0]);  // the first step computes every distance
}

}  // namespace test_cluster_hamerly
