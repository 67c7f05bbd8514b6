// SPDX-License-Identifier: Apache-2.0
// Tests for zss/nn/softmax.hpp against the plain-loop references.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "support/random_data.hpp"
#include "zss/nn/softmax.hpp"

namespace test_nn_softmax {

using namespace zss;

TEST_CASE_TEMPLATE("softmax and log-sum-exp match the scalar reference", T, float, double) {
  const double tol = std::is_same_v<T, float> ? 2e-6 : 1e-14;
  for (index_t k : test::kernel_sizes()) {
    CAPTURE(k);
    auto x = test::uniform_vector<T>(k, 9 + k, T(-20), T(20));
    aligned_vector<T> y(k), y_ref(k);
    const T lse = softmax_row(y.data(), x.data(), k);
    const T lse_ref = ref::softmax_row(y_ref.data(), x.data(), k);
    CHECK(double(lse) == doctest::Approx(double(lse_ref)).epsilon(tol));
    CHECK(double(logsumexp_row(x.data(), k)) == doctest::Approx(double(lse_ref)).epsilon(tol));
    double total = 0;
    for (index_t j = 0; j < k; ++j) {
      CHECK(double(y[j]) == doctest::Approx(double(y_ref[j])).epsilon(8 * tol).scale(1e-30));
      total += y[j];
    }
    CHECK(total == doctest::Approx(1.0).epsilon(k * tol));
  }
}

TEST_CASE_TEMPLATE("very large logits do not overflow; -inf entries get zero", T, float, double) {
  const T inf = std::numeric_limits<T>::infinity();
  aligned_vector<T> x = {T(1e30), T(1e30), -inf, T(0)};
  aligned_vector<T> y(4);
  const T lse = softmax_row(y.data(), x.data(), 4);
  CHECK(std::isfinite(lse));
  CHECK(y[0] == doctest::Approx(0.5));
  CHECK(y[1] == doctest::Approx(0.5));
  CHECK(y[2] == T(0));
  CHECK(y[3] == T(0));
}

TEST_CASE_TEMPLATE("row versions are identical for 1 and 2 threads", T, float, double) {
  auto X = test::normal_matrix<T>(37, 40, 3);
  tensor<T, 2> Y1 = X, Y2 = X;
  softmax_rows(as_matrix(Y1), as_matrix(std::as_const(X)), 1);
  softmax_rows(as_matrix(Y2), as_matrix(std::as_const(X)), 2);
  CHECK(Y1 == Y2);
  std::vector<T> l1(37), l2(37);
  logsumexp_rows(l1.data(), as_matrix(std::as_const(X)), 1);
  logsumexp_rows(l2.data(), as_matrix(std::as_const(X)), 2);
  CHECK(l1 == l2);
  for (index_t i = 0; i < 37; ++i) {
    // softmax = exp(x - lse)
    CHECK(double(Y1(i, 5)) ==
          doctest::Approx(std::exp(double(X(i, 5)) - double(l1[i]))).epsilon(1e-5));
  }
  tensor<T, 2> bad = xt::zeros<T>({37, 41});
  CHECK_THROWS_WITH_AS(softmax_rows(as_matrix(bad), as_matrix(std::as_const(X))),
                       doctest::Contains("(37, 41)"), std::invalid_argument);
  tensor<T, 2> empty = xt::zeros<T>({3, 0});
  CHECK_THROWS_AS(softmax_rows(as_matrix(empty), as_matrix(std::as_const(empty))),
                  std::invalid_argument);
}

}  // namespace test_nn_softmax
