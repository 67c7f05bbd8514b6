// SPDX-License-Identifier: Apache-2.0
// Tests for zss/nn/layer_norm.hpp: forward against the plain formula, backward against finite
// differences, constant rows, threads.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "support/gradcheck.hpp"
#include "support/nn_reference.hpp"
#include "support/random_data.hpp"
#include "zss/nn/layer_norm.hpp"

namespace test_nn_layer_norm {

using namespace zss;

TEST_CASE_TEMPLATE("layer_norm forward matches the plain formula", T, float, double) {
  for (index_t d : {1, 2, 15, 16, 17, 512}) {
    for (index_t n : {1, 5}) {
      CAPTURE(d);
      CAPTURE(n);
      auto X = test::uniform_vector<T>(n * d, d, T(-3), T(5)), g = test::uniform_vector<T>(d, 2),
           b = test::uniform_vector<T>(d, 3);
      std::vector<T> Y(n * d), Y2(n * d);
      layer_norm_cache<T> cache;
      layer_norm_forward<T>({Y.data(), n, d}, cache, {X.data(), n, d}, {g.data(), b.data()});
      const auto ref = test::ref::layer_norm(test::to_double(X), n, d, test::to_double(g),
                                             test::to_double(b), 1e-5);
      CHECK(test::scaled_max_error(Y, ref) < test::forward_tol<T>);
      layer_norm_forward<T>({Y2.data(), n, d}, cache, {X.data(), n, d}, {g.data(), b.data()},
                            layer_norm_eps<T>, 2);
      CHECK(Y2 == Y);
      // In place gives the same values.
      std::vector<T> Z(X.begin(), X.end());
      layer_norm_forward<T>({Z.data(), n, d}, cache, matrix_ref<const T>(Z.data(), n, d),
                            {g.data(), b.data()});
      CHECK(Z == Y);
    }
  }
}

TEST_CASE("layer_norm backward equals central finite differences (double, rel. err < 1e-6)") {
  for (index_t d : {1, 2, 7, 17, 64}) {
    const index_t n = 4;
    CAPTURE(d);
    auto X = test::uniform_vector<double>(n * d, 30 + d, -2.0, 3.0),
         g = test::uniform_vector<double>(d, 31), b = test::uniform_vector<double>(d, 32),
         R = test::uniform_vector<double>(n * d, 33);
    // Row 3 constant: σ² = 0, x̂ = 0 (the ε keeps everything finite and differentiable).
    for (index_t j = 0; j < d; ++j) X[3 * d + j] = 0.75;
    const double eps = 1e-3;
    auto loss = [&] {
      std::vector<double> Y(n * d);
      layer_norm_cache<double> c;
      layer_norm_forward<double>({Y.data(), n, d}, c, {X.data(), n, d}, {g.data(), b.data()}, eps);
      double s = 0;
      for (index_t i = 0; i < Y.size(); ++i) s += R[i] * Y[i];
      return s;
    };
    std::vector<double> Y(n * d);
    layer_norm_cache<double> cache;
    layer_norm_forward<double>({Y.data(), n, d}, cache, {X.data(), n, d}, {g.data(), b.data()},
                               eps);
    std::vector<double> dX(n * d, 1.0), dg(d, 1.0), db(d, 1.0);
    layer_norm_backward<double>({dX.data(), n, d}, {dg.data(), db.data()}, {R.data(), n, d}, cache,
                                {X.data(), n, d}, {g.data(), b.data()});
    for (auto* v : {&dX, &dg, &db})
      for (auto& x : *v) x -= 1.0;  // accumulators started at 1: backward adds
    for (double v : dX) CHECK(std::isfinite(v));
    if (d == 1) {
      // One column: x̂ ≡ 0, so Y = β whatever X and γ are: the exact gradients are 0, and a
      // relative error of two rounding-level numbers would compare noise (it does, on AVX2).
      for (double v : dX) CHECK(std::abs(v) < 1e-12);
      for (double v : dg) CHECK(std::abs(v) < 1e-12);
      for (double v : test::numeric_gradient(loss, X.data(), X.size())) CHECK(std::abs(v) < 1e-8);
    } else {
      CHECK(test::relative_error(dX, test::numeric_gradient(loss, X.data(), X.size())) < 1e-6);
      CHECK(test::relative_error(dg, test::numeric_gradient(loss, g.data(), g.size())) < 1e-6);
    }
    CHECK(test::relative_error(db, test::numeric_gradient(loss, b.data(), b.size())) < 1e-6);
  }
}

TEST_CASE_TEMPLATE("layer_norm backward: 1 and 2 threads give the same bits", T, float, double) {
  const index_t n = 9, d = 33;
  auto X = test::uniform_vector<T>(n * d, 41), g = test::uniform_vector<T>(d, 42),
       b = test::uniform_vector<T>(d, 43), R = test::uniform_vector<T>(n * d, 44);
  std::vector<T> Y(n * d);
  layer_norm_cache<T> cache;
  layer_norm_forward<T>({Y.data(), n, d}, cache, {X.data(), n, d}, {g.data(), b.data()});
  std::vector<std::vector<T>> out;
  for (int threads : {1, 2}) {
    std::vector<T> dX(n * d, T(0)), dg(d, T(0)), db(d, T(0));
    layer_norm_backward<T>({dX.data(), n, d}, {dg.data(), db.data()}, {R.data(), n, d}, cache,
                           {X.data(), n, d}, {g.data(), b.data()}, threads);
    out.insert(out.end(), {dX, dg, db});
  }
  CHECK(out[0] == out[3]);
  CHECK(out[1] == out[4]);
  CHECK(out[2] == out[5]);
}

TEST_CASE("layer_norm rejects bad input with the shapes in the message") {
  std::vector<float> X(12), Y(15), g(4), b(4);
  layer_norm_cache<float> cache;
  try {
    layer_norm_forward<float>({Y.data(), 3, 5}, cache, {X.data(), 3, 4}, {g.data(), b.data()});
    FAIL("no exception");
  } catch (const std::invalid_argument& e) {
    const std::string m = e.what();
    CHECK(m.find("(3, 5)") != std::string::npos);
    CHECK(m.find("(3, 4)") != std::string::npos);
  }
  CHECK_THROWS_AS(layer_norm_forward<float>({Y.data(), 3, 4}, cache, {X.data(), 3, 4},
                                            {g.data(), b.data()}, 0.0f),
                  std::invalid_argument);
  CHECK_THROWS_AS(
      layer_norm_forward<float>({Y.data(), 3, 4}, cache, {X.data(), 3, 4}, {nullptr, b.data()}),
      std::invalid_argument);
}

}  // namespace test_nn_layer_norm
