// SPDX-License-Identifier: Apache-2.0
// Tests for zss/cluster/kmeans.hpp: the driver (convergence, policies, determinism, batching,
// errors).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <set>
#include <stdexcept>
#include <vector>

#include "support/cluster_reference.hpp"
#include "support/random_data.hpp"
#include "zss/cluster/kmeans.hpp"

namespace test_cluster_kmeans {

using namespace zss;

namespace {

/// `blobs` well-separated Gaussian blobs of `per` points each (centres ±10 apart, σ = 0.5);
/// `truth` receives each point's blob.
template <class T>
tensor<T, 2> blobs(index_t nb, index_t per, index_t d, std::uint64_t seed,
                   std::vector<std::int32_t>* truth = nullptr) {
  rng g(seed);
  tensor<T, 2> centres = tensor<T, 2>::from_shape({nb, d});
  for (auto& c : centres) c = T(10) * static_cast<T>(static_cast<int>(g.below(5)) - 2);
  for (index_t b = 0; b < nb; ++b) centres(b, b % d) += T(30) * T(b + 1);  // distinct centres
  tensor<T, 2> X = tensor<T, 2>::from_shape({nb * per, d});
  if (truth) truth->assign(nb * per, 0);
  for (index_t i = 0; i < nb * per; ++i) {
    const index_t b = i % nb;
    if (truth) (*truth)[i] = static_cast<std::int32_t>(b);
    for (index_t j = 0; j < d; ++j) X(i, j) = centres(b, j) + g.normal<T>(T(0), T(0.5));
  }
  return X;
}

/// Bitwise equal results; `same_objective_order` = false when the thread counts differ (the
/// per-step objective is a double sum whose order follows the threads).
template <class T>
void check_bitwise_equal(const kmeans_result<T>& a, const kmeans_result<T>& b,
                         bool same_objective_order = true) {
  CHECK(a.labels == b.labels);
  CHECK(a.centroids == b.centroids);
  CHECK(a.inertia == b.inertia);
  CHECK(a.iterations == b.iterations);
  CHECK(a.converged == b.converged);
  if (same_objective_order) {
    CHECK(a.objective == b.objective);
  } else {
    REQUIRE(a.objective.size() == b.objective.size());
    for (index_t i = 0; i < a.objective.size(); ++i)
      CHECK(a.objective[i] == doctest::Approx(b.objective[i]).epsilon(1e-12));
  }
}

/// Relative tolerance of an inertia summed per row in T against the double reference.
template <class T>
double inertia_eps() {
  return std::is_same_v<T, float> ? 1e-6 : 1e-12;
}

template <class T>
double objective_slack() {
  return std::is_same_v<T, float> ? 1e-5 : 1e-12;
}

}  // namespace

TEST_CASE_TEMPLATE("the objective never rises and the final inertia is exact", T, float, double) {
  const auto X = test::normal_matrix<T>(1500, 12, 3);
  for (auto policy : {empty_cluster_policy::reseed_farthest, empty_cluster_policy::drop}) {
    for (bool spherical : {false, true}) {
      CAPTURE(spherical);
      kmeans_options p;
      p.k = 20;
      p.tol = 0;
      p.max_iter = 50;
      p.empty = policy;
      p.spherical = spherical;
      p.threads = 2;
      tensor<T, 2> Xs = X;
      if (spherical)  // spherical K-Means is meant for unit-norm data
        for (index_t i = 0; i < Xs.shape()[0]; ++i) {
          double s = 0;
          for (index_t j = 0; j < 12; ++j) s += double(Xs(i, j)) * double(Xs(i, j));
          for (index_t j = 0; j < 12; ++j) Xs(i, j) = T(Xs(i, j) / std::sqrt(s));
        }
      const auto r = kmeans<T>(Xs, p);
      REQUIRE(r.objective.size() == r.iterations);
      for (index_t it = 1; it < r.objective.size(); ++it)
        CHECK(r.objective[it] <= r.objective[it - 1] * (1 + objective_slack<T>()));
      CHECK(r.inertia == doctest::Approx(test::exact_inertia(Xs, r.centroids, r.labels))
                             .epsilon(inertia_eps<T>()));
      CHECK(r.inertia <= r.objective.back() * (1 + objective_slack<T>()));
      // Every label is the nearest final centroid.
      for (index_t i = 0; i < Xs.shape()[0]; ++i)
        CHECK(test::exact_sqdist(&Xs(i, 0), &r.centroids(index_t(r.labels[i]), 0), 12) <=
              test::nearest_sqdist(Xs, i, r.centroids) * (1 + 1e-5) + 1e-9);
      if (spherical)
        for (index_t c = 0; c < r.centroids.shape()[0]; ++c) {
          double s = 0;
          for (index_t j = 0; j < 12; ++j)
            s += double(r.centroids(c, j)) * double(r.centroids(c, j));
          CHECK(std::sqrt(s) == doctest::Approx(1.0).epsilon(1e-5));
        }
    }
  }
}

TEST_CASE_TEMPLATE("strict convergence ends at a fixed point of the naive step", T, float, double) {
  const auto X = test::normal_matrix<T>(800, 5, 8);
  kmeans_options p;
  p.k = 6;
  p.tol = 0;
  p.max_iter = 300;
  const auto r = kmeans<T>(X, p);
  REQUIRE(r.converged);
  REQUIRE(r.strict_convergence);
  CHECK(r.changed.back() == 0);
  CHECK(r.changed.front() == 800);
  std::vector<std::int32_t> labels = r.labels;
  tensor<T, 2> Cn = r.centroids;
  std::vector<index_t> counts(6);
  const auto st =
      lloyd_step_naive<T>(as_matrix(X), as_matrix(r.centroids), labels, as_matrix(Cn), counts);
  CHECK(st.changed == 0);
  for (index_t i = 0; i < Cn.size(); ++i)
    CHECK(double(Cn.data()[i]) == doctest::Approx(r.centroids.data()[i]));
}

TEST_CASE_TEMPLATE("a large tol stops early on the centre shift", T, float, double) {
  const auto X = test::normal_matrix<T>(1000, 8, 4);
  kmeans_options p;
  p.k = 12;
  p.tol = 0;
  const auto strict = kmeans<T>(X, p);
  p.tol = 0.5;
  const auto loose = kmeans<T>(X, p);
  CHECK(loose.converged);
  CHECK_FALSE(loose.strict_convergence);
  CHECK(loose.iterations < strict.iterations);
  // Labels are made consistent with the final centroids after a tol stop.
  for (index_t i = 0; i < 1000; ++i)
    CHECK(test::exact_sqdist(&X(i, 0), &loose.centroids(index_t(loose.labels[i]), 0), 8) <=
          test::nearest_sqdist(X, i, loose.centroids) * (1 + 1e-5) + 1e-9);
  p.tol = 0;
  p.max_iter = 2;
  const auto capped = kmeans<T>(X, p);
  CHECK(capped.iterations == 2);
  CHECK_FALSE(capped.converged);
}

TEST_CASE_TEMPLATE("planted blobs come back as the planted partition", T, float, double) {
  std::vector<std::int32_t> truth;
  const auto X = blobs<T>(5, 40, 6, 17, &truth);
  kmeans_options p;
  p.k = 5;
  p.seed = 3;
  const auto r = kmeans<T>(X, p);
  CHECK(test::same_partition(r.labels, truth));
  // Window-free given init from one point of each blob converges to the same partition.
  const auto C0 = test::gather_rows(X, {0, 1, 2, 3, 4});
  const auto g = kmeans<T>(X, C0, p);
  CHECK(test::same_partition(g.labels, truth));
  CHECK(g.strict_convergence);
}

TEST_CASE_TEMPLATE("K = N puts every distinct point in its own cluster; D = 1 works", T, float,
                   double) {
  // 30 distinct 1-D points in a shuffled order.
  tensor<T, 2> X = tensor<T, 2>::from_shape({30, 1});
  for (index_t i = 0; i < 30; ++i) X(i, 0) = T(int((i * 7) % 30) * 3 - 40);
  for (index_t trials : {1, 0}) {
    kmeans_options p;
    p.k = 30;
    p.local_trials = trials;
    const auto r = kmeans<T>(X, p);
    CHECK(r.inertia == 0.0);
    CHECK(test::compact_labels(r.labels, 30));
    CHECK(r.strict_convergence);
  }
  // D = 1 with three obvious groups.
  tensor<T, 2> Y = tensor<T, 2>::from_shape({7, 1});
  const T v[7] = {0, T(0.1), T(0.2), 10, T(10.1), 20, T(20.2)};
  for (index_t i = 0; i < 7; ++i) Y(i, 0) = v[i];
  kmeans_options p;
  p.k = 3;
  p.seed = 1;
  p.local_trials = 5;
  const auto r = kmeans<T>(Y, p);
  CHECK(test::same_partition(r.labels, {0, 0, 0, 1, 1, 2, 2}));
}

TEST_CASE_TEMPLATE("empty clusters: reseed keeps K non-empty clusters, drop compacts", T, float,
                   double) {
  std::vector<std::int32_t> truth;
  const auto X = blobs<T>(4, 30, 3, 5, &truth);
  // Seeds: two in blob 0, one in blob 1, and two far away from everything.
  tensor<T, 2> C0 = test::gather_rows(X, {0, 4, 1});
  tensor<T, 2> far = tensor<T, 2>::from_shape({5, 3});
  for (index_t c = 0; c < 3; ++c)
    for (index_t j = 0; j < 3; ++j) far(c, j) = C0(c, j);
  for (index_t c = 3; c < 5; ++c)
    for (index_t j = 0; j < 3; ++j) far(c, j) = T(1e4) * T(c);
  kmeans_options p;
  p.empty = empty_cluster_policy::reseed_farthest;
  const auto r = kmeans<T>(X, far, p);
  CHECK(r.centroids.shape()[0] == 5);
  CHECK(r.empty_clusters >= 2);
  CHECK(test::compact_labels(r.labels, 5));
  p.empty = empty_cluster_policy::drop;
  const auto d = kmeans<T>(X, far, p);
  CHECK(d.empty_clusters >= 2);
  CHECK(d.centroids.shape()[0] == 5 - d.empty_clusters);
  CHECK(test::compact_labels(d.labels, d.centroids.shape()[0]));
  CHECK(d.inertia ==
        doctest::Approx(test::exact_inertia(X, d.centroids, d.labels)).epsilon(inertia_eps<T>()));
}

TEST_CASE_TEMPLATE(
    "same seed and threads give bitwise the same fit; 1 and 2 threads agree on integer data", T,
    float, double) {
  const auto X = test::normal_matrix<T>(3000, 16, 21);
  kmeans_options p;
  p.k = 9;
  p.threads = 2;
  check_bitwise_equal(kmeans<T>(X, p), kmeans<T>(X, p));
  // Integer data: centroid sums are exact in any order, so the thread count cannot matter.
  const auto Z = test::integer_matrix<T>(3000, 16, 22);
  p.threads = 1;
  const auto a = kmeans<T>(Z, p);
  p.threads = 2;
  const auto b = kmeans<T>(Z, p);
  check_bitwise_equal(a, b, false);
}

TEST_CASE_TEMPLATE("kmeans_batch equals one-by-one fits, for any thread count", T, float, double) {
  std::vector<tensor<T, 2>> data;
  for (index_t b = 0; b < 5; ++b) data.push_back(test::normal_matrix<T>(200 + 150 * b, 7, 100 + b));
  const auto C0 = test::gather_rows(data[2], {3, 50, 70});
  std::vector<kmeans_problem<T>> problems;
  for (index_t b = 0; b < 5; ++b) {
    kmeans_problem<T> pr;
    pr.data = as_matrix(data[b]);
    pr.params.k = 2 + 3 * b;
    pr.params.seed = b;
    pr.params.threads = 2;  // ignored by the batch
    if (b == 2) pr.init_centroids = as_matrix(C0);
    problems.push_back(pr);
  }
  const auto r1 = kmeans_batch<T>(problems, 1);
  const auto r2 = kmeans_batch<T>(problems, 2);
  const auto r3 = kmeans_batch<T>(problems, 3);
  REQUIRE(r1.size() == 5);
  for (index_t b = 0; b < 5; ++b) {
    CAPTURE(b);
    auto p = problems[b].params;
    p.threads = 1;
    const auto one = b == 2 ? kmeans<T>(problems[b].data, problems[b].init_centroids, p)
                            : kmeans<T>(problems[b].data, p);
    check_bitwise_equal(r1[b], one);
    check_bitwise_equal(r2[b], one);
    check_bitwise_equal(r3[b], one);
  }
  CHECK(r1[2].centroids.shape()[0] == 3);
  CHECK(r1[4].centroids.shape()[0] == 14);
}

TEST_CASE_TEMPLATE("kmeans_batch: problems on one data view share its scan, other views do not", T,
                   float, double) {
  // Problems on the same view (pointer, shape, stride) are grouped and scanned once; a view of
  // the same memory with fewer rows is another group. Data whose squares overflow takes the
  // scaled path, so a wrong shared range would show. Every result must equal its own fit.
  const T huge = std::is_same_v<T, float> ? T(1e37) : T(1e200);
  auto A = test::normal_matrix<T>(300, 7, 41);
  auto Bh = test::normal_matrix<T>(200, 7, 42);
  for (index_t i = 0; i < 200 * 7; ++i) Bh.data()[i] *= huge;
  const matrix_ref<const T> a = as_matrix(A), b = as_matrix(Bh), a_head(A.data(), 120, 7);
  std::vector<kmeans_problem<T>> problems;
  for (auto [view, k] : {std::pair{a, 2}, {a, 6}, {a_head, 4}, {b, 3}, {b, 2}, {a, 5}}) {
    kmeans_problem<T> pr;
    pr.data = view;
    pr.params.k = index_t(k);
    pr.params.seed = problems.size();
    problems.push_back(pr);
  }
  for (int threads : {1, 2, 3}) {
    CAPTURE(threads);
    const auto r = kmeans_batch<T>(problems, threads);
    for (index_t i = 0; i < problems.size(); ++i) {
      CAPTURE(i);
      auto p = problems[i].params;
      p.threads = 1;
      check_bitwise_equal(r[i], kmeans<T>(problems[i].data, p));
    }
  }
  // A non-finite value in row 150: the 100-row view of the same memory is still clean.
  auto N = test::normal_matrix<T>(200, 5, 43);
  N(150, 2) = std::numeric_limits<T>::quiet_NaN();
  std::vector<kmeans_problem<T>> bad(3);
  bad[0].data = matrix_ref<const T>(N.data(), 100, 5);
  bad[1].data = bad[2].data = as_matrix(N);
  for (auto& pr : bad) pr.params.k = 3;
  CHECK_THROWS_WITH_AS(kmeans_batch<T>(bad, 2),
                       "kmeans_batch: problem 1: kmeans: X contains a non-finite value (nan) at "
                       "(150, 2)",
                       std::invalid_argument);
  bad.resize(1);
  auto p0 = bad[0].params;
  p0.threads = 1;
  check_bitwise_equal(kmeans_batch<T>(bad, 2)[0], kmeans<T>(bad[0].data, p0));
}

TEST_CASE("finite float data whose squares overflow is clustered right (issue #17)") {
  kmeans_options p;
  p.k = 2;
  p.seed = 3;
  SUBCASE("+-3e38 in one dimension: the two values, inertia 0") {
    const tensor<float, 2> X{{3e38f}, {-3e38f}, {3e38f}, {-3e38f}};
    const auto r = kmeans(X, p);
    CHECK(r.labels[0] == r.labels[2]);
    CHECK(r.labels[1] == r.labels[3]);
    CHECK(r.labels[0] != r.labels[1]);
    CHECK(r.centroids(std::size_t(r.labels[0]), 0) == 3e38f);
    CHECK(r.centroids(std::size_t(r.labels[1]), 0) == -3e38f);
    CHECK(r.inertia == 0);
    CHECK(std::isfinite(r.objective.front()));
  }
  SUBCASE(
      "scale equivariance: X and X * 2^120 give the same labels, scaled centroids and inertia") {
    // Blobs in D = 64 scaled by 2^120 (|x| up to ~1e38): their squared norms overflow float.
    std::vector<std::int32_t> truth;
    const auto X = blobs<float>(3, 40, 64, 11, &truth);
    tensor<float, 2> big = X;
    for (auto& v : big) v = std::ldexp(v, 120);
    p.k = 3;
    const auto small_fit = kmeans(X, p);
    const auto big_fit = kmeans(big, p);
    CHECK(big_fit.labels == small_fit.labels);
    for (index_t i = 0; i < small_fit.centroids.size(); ++i)
      CHECK(big_fit.centroids.data()[i] == std::ldexp(small_fit.centroids.data()[i], 120));
    CHECK(big_fit.inertia == doctest::Approx(std::ldexp(small_fit.inertia, 240)).epsilon(1e-6));
    CHECK(std::isfinite(big_fit.inertia));
    CHECK(big_fit.iterations == small_fit.iterations);
    // Tiny values (squares below float's normal range) too.
    tensor<float, 2> tiny = X;
    for (auto& v : tiny) v = std::ldexp(v, -90);
    const auto tiny_fit = kmeans(tiny, p);
    CHECK(tiny_fit.labels == small_fit.labels);
    CHECK(tiny_fit.inertia == doctest::Approx(std::ldexp(small_fit.inertia, -180)).epsilon(1e-6));
  }
  SUBCASE("given centroids, window seeds, spherical and batched fits take the same path") {
    const tensor<float, 2> X{{3e38f, 1}, {-3e38f, 1}, {3e38f, 2}, {-3e38f, 2}};
    const tensor<float, 2> C0{{1e38f, 0}, {-1e38f, 0}};
    const auto given = kmeans(X, C0, p);
    CHECK(given.labels == std::vector<std::int32_t>{0, 1, 0, 1});
    CHECK(given.centroids(0, 0) == 3e38f);
    CHECK(given.inertia == 1.0);  // (±0.5)² four times, from X in double
    kmeans_options sp = p;
    sp.spherical = true;
    const auto sph = kmeans(X, sp);
    CHECK(sph.labels[0] == sph.labels[2]);
    CHECK(sph.labels[0] != sph.labels[1]);
    for (index_t c = 0; c < 2; ++c)
      CHECK(std::hypot(double(sph.centroids(c, 0)), double(sph.centroids(c, 1))) ==
            doctest::Approx(1.0));
    CHECK(std::isfinite(sph.inertia));
    tensor<float, 3> grid = tensor<float, 3>::from_shape({2, 2, 1});
    grid(0, 0, 0) = grid(1, 0, 0) = 3e38f;
    grid(0, 1, 0) = grid(1, 1, 0) = -3e38f;
    kmeans_options wp = p;
    wp.init = kmeans_init::window;
    wp.window = 1;  // four seeds, one per token; the two pairs coincide
    wp.empty = empty_cluster_policy::drop;
    const auto win = kmeans(grid, wp);
    CHECK(win.inertia == 0);
    CHECK(win.labels[0] == win.labels[2]);
    CHECK(win.labels[0] != win.labels[1]);
    const std::vector<kmeans_problem<float>> batch = {{as_matrix(X), p, {}}};
    CHECK(kmeans_batch(batch, 2)[0].labels == kmeans(X, p).labels);
  }
  SUBCASE("double data near its own limit: right labels, the inertia beyond double is +inf") {
    const tensor<double, 2> X{{1e300}, {-1e300}, {1e300}, {-1e300}, {0.9e300}};
    const auto r = kmeans(X, p);
    CHECK(r.labels[0] == r.labels[2]);
    CHECK(r.labels[0] == r.labels[4]);
    CHECK(r.labels[0] != r.labels[1]);
    CHECK(std::isinf(r.inertia));  // (0.05e300)² · … exceeds double: documented
  }
  SUBCASE("an unbounded max_iter allocates nothing up front") {
    p.max_iter = std::numeric_limits<index_t>::max();
    const tensor<float, 2> X{{0}, {1}, {10}, {11}};
    CHECK(kmeans(X, p).converged);
  }
}

TEST_CASE("kmeans rejects bad input with the values in the message") {
  const auto X = test::integer_matrix<float>(7, 3, 1);
  kmeans_options p;
  p.k = 9;
  CHECK_THROWS_WITH_AS(kmeans<float>(X, p), "kmeans: k (9) exceeds the number of points (7)",
                       std::invalid_argument);
  p.k = 0;
  CHECK_THROWS_WITH_AS(kmeans<float>(X, p), "kmeans: k must be >= 1, got 0", std::invalid_argument);
  p.k = 2;
  p.max_iter = 0;
  CHECK_THROWS_WITH_AS(kmeans<float>(X, p), "kmeans: max_iter must be >= 1, got 0",
                       std::invalid_argument);
  p.max_iter = 10;
  p.tol = -1;
  CHECK_THROWS_WITH_AS(kmeans<float>(X, p), "kmeans: tol must be finite and >= 0, got -1",
                       std::invalid_argument);
  p.tol = 0;
  const auto C_bad = test::integer_matrix<float>(2, 4, 2);
  CHECK_THROWS_WITH_AS(kmeans<float>(X, C_bad, p),
                       "kmeans: initial centroid width (4) must equal data width (3)",
                       std::invalid_argument);
  const auto C_many = test::integer_matrix<float>(8, 3, 2);
  CHECK_THROWS_WITH_AS(kmeans<float>(X, C_many, p),
                       "kmeans: k (8) exceeds the number of points (7)", std::invalid_argument);
  tensor<float, 2> empty = tensor<float, 2>::from_shape({0, 3});
  CHECK_THROWS_WITH_AS(kmeans<float>(empty, p),
                       "kmeans: X has shape (0, 3), expected at least one point and one feature",
                       std::invalid_argument);
  p.init = kmeans_init::window;
  p.grid_h = 2;
  p.grid_w = 3;
  CHECK_THROWS_WITH_AS(kmeans<float>(X, p),
                       "window_seeds: grid 2 x 3 = 6 tokens, but the data has 7 rows",
                       std::invalid_argument);
  p.init = kmeans_init::given;
  CHECK_THROWS_AS(kmeans<float>(X, p), std::invalid_argument);
  p.init = kmeans_init::kmeanspp;
  auto Y = X;
  Y(4, 1) = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH_AS(kmeans<float>(Y, p), "kmeans: X contains a non-finite value (nan) at (4, 1)",
                       std::invalid_argument);
  p.check_finite = false;
  CHECK_NOTHROW(kmeans<float>(Y, p));  // garbage in, but labels stay in range
  // A batch names the failing problem.
  std::vector<kmeans_problem<float>> problems(2);
  problems[0].data = as_matrix(X);
  problems[0].params.k = 2;
  problems[1].data = as_matrix(X);
  problems[1].params.k = 9;
  CHECK_THROWS_WITH_AS(kmeans_batch<float>(problems, 2),
                       "kmeans_batch: problem 1: kmeans: k (9) exceeds the number of points (7)",
                       std::invalid_argument);
}

TEST_CASE("window init on an h x w x D tensor takes the grid from the shape") {
  tensor<double, 3> t = tensor<double, 3>::from_shape({4, 4, 2});
  for (index_t y = 0; y < 4; ++y)
    for (index_t x = 0; x < 4; ++x) {
      t(y, x, 0) = x < 2 ? 0.0 : 10.0;
      t(y, x, 1) = y < 2 ? 0.0 : 10.0;
    }
  kmeans_options p;
  p.init = kmeans_init::window;
  p.window = 2;
  const auto r = kmeans(t, p);
  REQUIRE(r.centroids.shape()[0] == 4);  // ⌈4/2⌉²
  CHECK(r.inertia == 0.0);
  CHECK(r.strict_convergence);
  CHECK(r.iterations == 1);  // the seeds are already the answer: no centroid moves in step 1
  // Seed (i, j) is row i·2 + j, and it is the quadrant's value.
  CHECK(r.labels[0] == 0);
  CHECK(r.labels[3] == 1);
  CHECK(r.labels[12] == 2);
  CHECK(r.labels[15] == 3);
}

}  // namespace test_cluster_kmeans
