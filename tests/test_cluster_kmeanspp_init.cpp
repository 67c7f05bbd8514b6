// SPDX-License-Identifier: Apache-2.0
// Tests for zss/cluster/kmeanspp_init.hpp: sampler properties, not just end results (STYLE §13).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <span>
#include <stdexcept>
#include <vector>

#include "support/cluster_reference.hpp"
#include "support/random_data.hpp"
#include "zss/cluster/kmeanspp_init.hpp"
#include "zss/cluster/lloyd_step.hpp"

namespace test_cluster_kmeanspp_init {

using namespace zss;

namespace {

/// 5 points on a line: squared distances are integers, far from any tie.
template <class T>
tensor<T, 2> line_points() {
  tensor<T, 2> X = tensor<T, 2>::from_shape({5, 1});
  const T v[5] = {0, 1, 3, 7, 15};
  for (index_t i = 0; i < 5; ++i) X(i, 0) = v[i];
  return X;
}

double d2(double a, double b) {
  return (a - b) * (a - b);
}

/// χ² of observed counts against expected probabilities (cells with p = 0 must be empty).
double chi_square(const std::vector<double>& observed, const std::vector<double>& p, double m) {
  double chi = 0;
  for (std::size_t c = 0; c < p.size(); ++c) {
    if (p[c] == 0) {
      CHECK(observed[c] == 0);
      continue;
    }
    const double e = m * p[c];
    chi += (observed[c] - e) * (observed[c] - e) / e;
  }
  return chi;
}

}  // namespace

TEST_CASE("default local trials are 2 + floor(ln K)") {
  CHECK(default_local_trials(1) == 2);
  CHECK(default_local_trials(2) == 2);
  CHECK(default_local_trials(3) == 3);
  CHECK(default_local_trials(8) == 4);
  CHECK(default_local_trials(64) == 6);
}

TEST_CASE_TEMPLATE(
    "classic k-means++: first pick uniform, second pick proportional to D^2 (chi-square)", T, float,
    double) {
  const auto X = line_points<T>();
  const double v[5] = {0, 1, 3, 7, 15};
  const index_t m = 20000;
  std::vector<double> observed(25, 0.0), p(25, 0.0);
  for (index_t s = 0; s < m; ++s) {
    rng g(42, s);
    const auto idx = kmeanspp_indices<T>(as_matrix(X), 2, g, 1);
    REQUIRE(idx.size() == 2);
    observed[idx[0] * 5 + idx[1]] += 1;
  }
  for (index_t i = 0; i < 5; ++i) {
    double z = 0;
    for (index_t j = 0; j < 5; ++j) z += d2(v[i], v[j]);
    for (index_t j = 0; j < 5; ++j) p[i * 5 + j] = 0.2 * d2(v[i], v[j]) / z;
  }
  // 20 non-empty cells, 19 degrees of freedom: P(χ² > 43.8) = 0.001.
  CHECK(chi_square(observed, p, double(m)) < 43.8);
}

TEST_CASE_TEMPLATE(
    "greedy k-means++: the better of L D^2-draws, frequencies match the exact law (chi-square)", T,
    float, double) {
  const auto X = line_points<T>();
  const double v[5] = {0, 1, 3, 7, 15};
  const index_t m = 20000, trials = 2;  // the default for K = 2
  std::vector<double> observed(25, 0.0), p(25, 0.0);
  for (index_t s = 0; s < m; ++s) {
    rng g(7, s);
    const auto idx = kmeanspp_indices<T>(as_matrix(X), 2, g);
    observed[idx[0] * 5 + idx[1]] += 1;
  }
  // Exact law: first i uniform; candidates j1, j2 i.i.d. ∝ D²(·, i); keep the one with the lower
  // potential Σ_l min(D²(l, i), D²(l, j)), j1 on a tie.
  for (index_t i = 0; i < 5; ++i) {
    double z = 0;
    for (index_t j = 0; j < 5; ++j) z += d2(v[i], v[j]);
    auto pot = [&](index_t j) {
      double s = 0;
      for (index_t l = 0; l < 5; ++l) s += std::min(d2(v[l], v[i]), d2(v[l], v[j]));
      return s;
    };
    for (index_t j1 = 0; j1 < 5; ++j1)
      for (index_t j2 = 0; j2 < 5; ++j2) {
        const double pj = d2(v[i], v[j1]) / z * d2(v[i], v[j2]) / z;
        const index_t win = pot(j2) < pot(j1) ? j2 : j1;
        p[i * 5 + win] += 0.2 * pj;
      }
  }
  (void)trials;
  int cells = 0;
  for (double q : p) cells += q > 0;
  CHECK(cells == 20);
  CHECK(chi_square(observed, p, double(m)) < 43.8);
}

TEST_CASE_TEMPLATE("k-means++ never picks a duplicate point", T, float, double) {
  // 12 distinct integer points, each repeated 3 to 5 times (36+ rows), K = all distinct points.
  const auto base = test::integer_matrix<T>(12, 4, 3, 20);
  std::vector<index_t> rows;
  for (index_t i = 0; i < 12; ++i)
    for (index_t r = 0; r < 3 + i % 3; ++r) rows.push_back(i);
  rng shuffle(9);
  for (index_t i = rows.size(); i > 1; --i) std::swap(rows[i - 1], rows[shuffle.below(i)]);
  const auto X = test::gather_rows(base, rows);
  std::set<std::vector<T>> distinct_base;
  for (index_t i = 0; i < 12; ++i) distinct_base.insert({&base(i, 0), &base(i, 0) + 4});
  REQUIRE(distinct_base.size() == 12);
  for (index_t trials : {1, 0, 5}) {
    for (std::uint64_t s = 0; s < 200; ++s) {
      rng g(s, trials);
      const auto idx = kmeanspp_indices<T>(as_matrix(X), 12, g, trials);
      std::set<std::vector<T>> seen;
      for (index_t i : idx) seen.insert({&X(i, 0), &X(i, 0) + 4});
      CHECK(seen.size() == 12);
    }
  }
  // K above the number of distinct points: indices stay distinct, values cannot.
  rng g(1);
  const auto idx = kmeanspp_indices<T>(as_matrix(X), 20, g);
  CHECK(std::set<index_t>(idx.begin(), idx.end()).size() == 20);
}

TEST_CASE_TEMPLATE("kmeanspp_init returns the chosen rows and does not depend on the thread count",
                   T, float, double) {
  const auto X = test::integer_matrix<T>(2000, 9, 12, 30);  // ≥ 256 rows per thread
  const auto C1 = kmeanspp_init<T>(as_matrix(X), 10, 5, 0, 0, 1);
  const auto C2 = kmeanspp_init<T>(as_matrix(X), 10, 5, 0, 0, 2);
  CHECK(C1 == C2);
  rng g(5, 0);
  const auto idx = kmeanspp_indices<T>(as_matrix(X), 10, g);
  CHECK(test::gather_rows(X, idx) == C1);
  // Another seed or stream gives another draw.
  CHECK(kmeanspp_init<T>(as_matrix(X), 10, 6, 0) != C1);
  CHECK(kmeanspp_init<T>(as_matrix(X), 10, 5, 1) != C1);
}

TEST_CASE_TEMPLATE("kmeanspp_init with the norms given draws what it draws computing them", T,
                   float, double) {
  // kmeans_batch hands k-means++ the squared norms it computed once for several problems; a
  // different set of norms must change the draw (they are used), the right one must not.
  const auto X = test::normal_matrix<T>(700, 13, 77);
  std::vector<T> xn(700);
  for (index_t i = 0; i < 700; ++i) xn[i] = simd::squared_norm(X.data() + i * 13, 13);
  const auto C = kmeanspp_init<T>(as_matrix(X), 12, 3, 2);
  CHECK(kmeanspp_init<T>(as_matrix(X), 12, 3, 2, 0, 2, std::span<const T>(xn)) == C);
  std::vector<T> wrong(xn.size(), T(0));
  CHECK(kmeanspp_init<T>(as_matrix(X), 12, 3, 2, 0, 1, std::span<const T>(wrong)) != C);
  CHECK_THROWS_WITH_AS(
      kmeanspp_init<T>(as_matrix(X), 12, 3, 2, 0, 1, std::span<const T>(xn.data(), 699)),
      "kmeanspp_init: x_norms has 699 values for 700 points", std::invalid_argument);
  lloyd_workspace<T> ws;
  CHECK_THROWS_WITH_AS(ws.prepare(as_matrix(X), 12, 1, std::span<const T>(xn.data(), 3)),
                       "lloyd_workspace: x_norms has 3 values for 700 points",
                       std::invalid_argument);
}

TEST_CASE("k-means++ rejects K = 0 and K > N with the values in the message") {
  const auto X = test::integer_matrix<float>(7, 2, 1);
  CHECK_THROWS_WITH_AS(kmeanspp_init<float>(as_matrix(X), 9, 0),
                       "kmeanspp_init: k (9) exceeds the number of points (7)",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(kmeanspp_init<float>(as_matrix(X), 0, 0),
                       "kmeanspp_init: k must be >= 1, got 0", std::invalid_argument);
  CHECK(kmeanspp_init<float>(as_matrix(X), 7, 0).shape()[0] == 7);  // K = N is fine
}

}  // namespace test_cluster_kmeanspp_init
