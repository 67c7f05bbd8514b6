// SPDX-License-Identifier: Apache-2.0
// Tests for zss/cluster/lloyd_step.hpp: the fused step against the naive step from the same
// centroids.
#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "support/cluster_reference.hpp"
#include "support/random_data.hpp"
#include "zss/cluster/lloyd_step.hpp"

namespace test_cluster_lloyd_step {

using namespace zss;

namespace {

template <class T>
struct step_out {
  std::vector<std::int32_t> labels;
  tensor<T, 2> C;
  std::vector<index_t> counts;
  std::vector<T> dist;
  lloyd_step_stats st;
};

template <class T>
step_out<T> run(const tensor<T, 2>& X, const tensor<T, 2>& C,
                const std::vector<std::int32_t>& labels0, int threads) {
  const index_t n = X.shape()[0], k = C.shape()[0];
  step_out<T> o{
      labels0, tensor<T, 2>::from_shape(C.shape()), std::vector<index_t>(k), std::vector<T>(n), {}};
  if (threads == 0) {
    o.st =
        lloyd_step_naive<T>(as_matrix(X), as_matrix(C), o.labels, as_matrix(o.C), o.counts, o.dist);
  } else {
    lloyd_workspace<T> ws(as_matrix(X), k, threads);
    o.st =
        lloyd_step<T>(as_matrix(X), as_matrix(C), o.labels, as_matrix(o.C), o.counts, o.dist, ws);
  }
  return o;
}

/// Centroids: K rows of X (so K = N is possible) shifted by an integer offset.
template <class T>
tensor<T, 2> centroids_from(const tensor<T, 2>& X, index_t k, std::uint64_t seed) {
  rng g(seed);
  std::vector<index_t> idx(k);
  for (auto& i : idx) i = static_cast<index_t>(g.below(X.shape()[0]));
  auto C = test::gather_rows(X, idx);
  for (auto& v : C) v += T(static_cast<int>(g.below(3)) - 1);
  return C;
}

}  // namespace

TEST_CASE_TEMPLATE(
    "fast step equals the naive step on integer data (labels, counts, centroids, objective)", T,
    float, double) {
  struct shape {
    index_t n, d, k;
  };
  // D = 1, D = 17, K = 1, K = N, K not a multiple of the lane width, N large enough for 2 threads.
  for (auto [n, d, k] : {shape{40, 1, 3}, shape{67, 17, 1}, shape{40, 17, 40}, shape{300, 17, 13},
                         shape{257, 33, 70}, shape{1500, 5, 17}, shape{1100, 64, 64}}) {
    CAPTURE(n);
    CAPTURE(d);
    CAPTURE(k);
    const auto X = test::integer_matrix<T>(n, d, n + d + k);
    const auto C = centroids_from(X, k, 7 + k);
    std::vector<std::int32_t> prev(n);
    rng g(3);
    for (auto& l : prev) l = static_cast<std::int32_t>(g.below(k + 1)) - 1;  // some −1 (none)
    const auto ref = run(X, C, prev, 0);
    for (int threads : {1, 2}) {
      CAPTURE(threads);
      const auto fast = run(X, C, prev, threads);
      CHECK(fast.labels == ref.labels);
      CHECK(fast.counts == ref.counts);
      CHECK(fast.st.changed == ref.st.changed);
      CHECK(fast.st.objective == ref.st.objective);  // integer data: every distance exact
      CHECK(fast.dist == ref.dist);
      // Sums of integers are exact in any order, so even 2 threads agree bit for bit here.
      for (index_t i = 0; i < C.size(); ++i) CHECK(fast.C.data()[i] == ref.C.data()[i]);
    }
  }
}

TEST_CASE_TEMPLATE("fast step matches the naive step on random data within 1e-5 relative", T, float,
                   double) {
  for (index_t d : {1, 17, 100}) {
    for (index_t k : {1, 5, 16, 33}) {
      CAPTURE(d);
      CAPTURE(k);
      const index_t n = 1200;
      const auto X = test::normal_matrix<T>(n, d, 11 + d * k);
      const auto C = test::normal_matrix<T>(k, d, 99 + d * k);
      std::vector<std::int32_t> prev(n, -1);
      const auto ref = run(X, C, prev, 0);
      for (int threads : {1, 2}) {
        const auto fast = run(X, C, prev, threads);
        // A label may differ only on a near-tie, where both centroids are equally close.
        index_t differ = 0;
        for (index_t i = 0; i < n; ++i) {
          if (fast.labels[i] == ref.labels[i]) continue;
          ++differ;
          const double a = test::exact_sqdist(&X(i, 0), &C(index_t(fast.labels[i]), 0), d);
          const double b = test::exact_sqdist(&X(i, 0), &C(index_t(ref.labels[i]), 0), d);
          CHECK(std::abs(a - b) <= 1e-5 * (1 + b));
        }
        CHECK(differ <= 1);
        if (differ == 0) {
          CHECK(fast.counts == ref.counts);
          for (index_t c = 0; c < k; ++c) {
            double nrm = 0, diff = 0;
            for (index_t j = 0; j < d; ++j) {
              nrm += double(ref.C(c, j)) * double(ref.C(c, j));
              diff += (double(fast.C(c, j)) - double(ref.C(c, j))) *
                      (double(fast.C(c, j)) - double(ref.C(c, j)));
            }
            CHECK(std::sqrt(diff) <= 1e-5 * std::sqrt(nrm) + 1e-6);
          }
        }
        CHECK(fast.st.objective == doctest::Approx(ref.st.objective).epsilon(1e-5));
      }
    }
  }
}

TEST_CASE_TEMPLATE("an empty cluster keeps its centroid and has count 0", T, float, double) {
  const index_t n = 600, d = 7;
  const auto X = test::integer_matrix<T>(n, d, 4);
  auto C = centroids_from(X, 4, 5);
  for (index_t j = 0; j < d; ++j) C(2, j) = T(1000);  // nobody is near centroid 2
  std::vector<std::int32_t> prev(n, -1);
  for (int threads : {0, 1, 2}) {
    const auto o = run(X, C, prev, threads);
    CHECK(o.counts[2] == 0);
    for (index_t j = 0; j < d; ++j) CHECK(o.C(2, j) == T(1000));
    CHECK(o.st.changed == n);
  }
}

TEST_CASE_TEMPLATE("lloyd_assign gives the step's labels without updating", T, float, double) {
  const auto X = test::integer_matrix<T>(700, 9, 8);
  const auto C = centroids_from(X, 6, 9);
  std::vector<std::int32_t> prev(700, -1);
  const auto ref = run(X, C, prev, 0);
  lloyd_workspace<T> ws(as_matrix(X), 6, 2);
  std::vector<std::int32_t> labels(700, -1);
  const auto st = lloyd_assign<T>(as_matrix(X), as_matrix(C), labels, {}, ws);
  CHECK(labels == ref.labels);
  CHECK(st.changed == 700);
  // A second assignment from the same centroids changes nothing.
  CHECK(lloyd_assign<T>(as_matrix(X), as_matrix(C), labels, {}, ws).changed == 0);
}

TEST_CASE("steps reject mismatched shapes with the sizes in the message") {
  const auto X = test::integer_matrix<float>(10, 3, 1);
  const auto C = test::integer_matrix<float>(2, 4, 2);
  tensor<float, 2> Cn = tensor<float, 2>::from_shape({2, 4});
  std::vector<std::int32_t> labels(10, -1);
  std::vector<index_t> counts(2);
  CHECK_THROWS_WITH_AS(
      lloyd_step_naive<float>(as_matrix(X), as_matrix(C), labels, as_matrix(Cn), counts),
      "lloyd_step_naive: centroid width (4) must equal data width (3)", std::invalid_argument);
  const auto C3 = test::integer_matrix<float>(2, 3, 2);
  tensor<float, 2> Cn3 = tensor<float, 2>::from_shape({2, 3});
  std::vector<std::int32_t> short_labels(9, -1);
  CHECK_THROWS_WITH_AS(
      lloyd_step_naive<float>(as_matrix(X), as_matrix(C3), short_labels, as_matrix(Cn3), counts),
      "lloyd_step_naive: labels size (9) must equal number of points (10)", std::invalid_argument);
  lloyd_workspace<float> ws(as_matrix(X), 1, 1);
  CHECK_THROWS_WITH_AS(
      lloyd_step<float>(as_matrix(X), as_matrix(C3), labels, as_matrix(Cn3), counts, {}, ws),
      "lloyd_step: K (2) exceeds the workspace's k_max (1)", std::invalid_argument);
}

}  // namespace test_cluster_lloyd_step
