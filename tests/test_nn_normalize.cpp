// SPDX-License-Identifier: Apache-2.0
// Tests for zss/nn/normalize.hpp: forward values, backward against finite differences.
#include <doctest/doctest.h>

#include <cmath>

#include "support/gradcheck.hpp"
#include "support/random_data.hpp"
#include "zss/nn/normalize.hpp"

namespace test_nn_normalize {

using namespace zss;

TEST_CASE_TEMPLATE("forward gives unit rows and matches the plain formula", T, float, double) {
  for (index_t d : {1, 15, 16, 17, 33, 512}) {
    CAPTURE(d);
    auto X = test::normal_matrix<T>(5, d, d);
    for (int threads : {1, 2}) {
      tensor<T, 2> Y = tensor<T, 2>::from_shape({5, d});
      normalize_cache<T> cache;
      normalize_rows_forward(as_matrix(Y), cache, as_matrix(std::as_const(X)), normalize_eps<T>,
                             threads);
      for (index_t i = 0; i < 5; ++i) {
        double n2 = 0;
        for (index_t j = 0; j < d; ++j) n2 += double(X(i, j)) * double(X(i, j));
        const double norm = std::sqrt(n2);
        CHECK(double(cache.norm[i]) == doctest::Approx(norm).epsilon(1e-6));
        for (index_t j = 0; j < d; ++j)
          CHECK(double(Y(i, j)) ==
                doctest::Approx(double(X(i, j)) / norm).epsilon(1e-5).scale(1e-6));
      }
    }
  }
  // In place, and a zero row stays zero.
  tensor<T, 2> Z = {{3, 4}, {0, 0}};
  normalize_cache<T> cache;
  normalize_rows_forward(as_matrix(Z), cache, matrix_ref<const T>(as_matrix(Z)));
  CHECK(Z(0, 0) == doctest::Approx(0.6));
  CHECK(Z(1, 1) == T(0));
  CHECK(cache.clamped[1] == 1);
  CHECK(cache.clamped[0] == 0);
}

namespace {
// L = Σ w ⊙ n(X) for a fixed random w; its gradient is normalize_backward(dY = w).
double weighted_sum(const tensor<double, 2>& X, const tensor<double, 2>& W, double eps) {
  auto Y = normalize_rows(X, eps);
  double s = 0;
  for (std::size_t i = 0; i < Y.size(); ++i) s += Y.data()[i] * W.data()[i];
  return s;
}
}  // namespace

TEST_CASE("backward equals central finite differences (double, rel. err < 1e-6)") {
  for (index_t d : {1, 3, 16, 17}) {
    CAPTURE(d);
    auto X = test::normal_matrix<double>(4, d, 100 + d);
    auto W = test::normal_matrix<double>(4, d, 200 + d);
    // Row 2: tiny, inside the clamp (exact derivative dy/ε there); row 3 ties two entries.
    const double eps = 1e-3;
    for (index_t j = 0; j < d; ++j) X(2, j) = 1e-5 * (double(j) + 1);
    if (d > 1) X(3, 1) = X(3, 0);
    tensor<double, 2> Y = tensor<double, 2>::from_shape({4, d});
    normalize_cache<double> cache;
    normalize_rows_forward(as_matrix(Y), cache, as_matrix(std::as_const(X)), eps);
    tensor<double, 2> dX = xt::zeros<double>({index_t(4), d});
    tensor<double, 2> dX0 = dX;
    normalize_rows_backward(as_matrix(dX), as_matrix(std::as_const(W)), cache,
                            as_matrix(std::as_const(Y)));
    auto g =
        test::numeric_gradient([&] { return weighted_sum(X, W, eps); }, X.data(), X.size(), 1e-7);
    CHECK(test::relative_error(dX, g) < 1e-6);
    // Backward adds into dX.
    normalize_rows_backward(as_matrix(dX), as_matrix(std::as_const(W)), cache,
                            as_matrix(std::as_const(Y)));
    for (std::size_t i = 0; i < dX.size(); ++i)
      CHECK(dX.data()[i] == doctest::Approx(2 * g[i]).epsilon(1e-5).scale(1e-6));
    (void)dX0;
  }
}

TEST_CASE("zero rows give a finite gradient, never NaN") {
  tensor<double, 2> X = xt::zeros<double>({2, 5});
  tensor<double, 2> Y = X, dY = xt::ones<double>({2, 5}), dX = xt::zeros<double>({2, 5});
  normalize_cache<double> cache;
  normalize_rows_forward(as_matrix(Y), cache, as_matrix(std::as_const(X)));
  normalize_rows_backward(as_matrix(dX), as_matrix(std::as_const(dY)), cache,
                          as_matrix(std::as_const(Y)));
  for (double v : dX) CHECK(std::isfinite(v));
}

TEST_CASE("shape errors name the shapes") {
  tensor<float, 2> X = xt::ones<float>({3, 4}), Y = xt::ones<float>({3, 5});
  normalize_cache<float> cache;
  try {
    normalize_rows_forward(as_matrix(Y), cache, as_matrix(std::as_const(X)));
    FAIL("no exception");
  } catch (const std::invalid_argument& e) {
    const std::string m = e.what();
    CHECK(m.find("(3, 5)") != std::string::npos);
    CHECK(m.find("(3, 4)") != std::string::npos);
  }
  CHECK_THROWS_AS(normalize_rows_forward(as_matrix(X), cache, as_matrix(std::as_const(X)), -1.0f),
                  std::invalid_argument);
}

}  // namespace test_nn_normalize
