// SPDX-License-Identifier: Apache-2.0
// Tests for zss/nn/mlp.hpp: activations, forward against a plain loop, backward against finite
// differences for every activation, threads.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "support/gradcheck.hpp"
#include "support/nn_reference.hpp"
#include "support/random_data.hpp"
#include "zss/core/eigen_map.hpp"
#include "zss/nn/mlp.hpp"

namespace test_nn_mlp {

using namespace zss;

namespace {
const mlp_activation acts[] = {mlp_activation::gelu_erf, mlp_activation::gelu_tanh,
                               mlp_activation::relu};
test::ref::act ref_act(mlp_activation a) {
  return a == mlp_activation::gelu_erf    ? test::ref::act::gelu_erf
         : a == mlp_activation::gelu_tanh ? test::ref::act::gelu_tanh
                                          : test::ref::act::relu;
}
}  // namespace

TEST_CASE_TEMPLATE("activations match their formulas; the derivative matches finite differences", T,
                   float, double) {
  for (auto act : acts) {
    CAPTURE(int(act));
    for (index_t n : {1, 15, 16, 17, 33}) {
      auto a = test::uniform_vector<T>(n, n, T(-6), T(6));
      std::vector<T> z(n), da(n);
      activation_forward(z.data(), a.data(), n, act);
      std::vector<double> ref(n);
      for (index_t i = 0; i < n; ++i) ref[i] = test::ref::activation(ref_act(act), double(a[i]));
      CHECK(test::scaled_max_error(z, ref) < test::forward_tol<T> * 10);
      // da = 1 ⊙ act'(a) against a central difference of the double reference.
      std::vector<T> ones(n, T(1));
      activation_backward(da.data(), ones.data(), a.data(), n, act);
      for (index_t i = 0; i < n; ++i) {
        const double x = double(a[i]), h = 1e-6;
        const double fd = (test::ref::activation(ref_act(act), x + h) -
                           test::ref::activation(ref_act(act), x - h)) /
                          (2 * h);
        // FD round-off is ~1e-10 absolute; float evaluates 1 ± tanh/erf with ~1e-7 absolute error.
        const double tol = (sizeof(T) == 4 ? 1e-6 : 1e-9) + 1e-6 * std::abs(fd);
        CHECK(std::abs(double(da[i]) - fd) < tol);
      }
    }
  }
  // Known values: GELU(0) = 0, GELU'(0) = 1/2, GELU(x) → x for large x, ReLU.
  T a[3] = {T(0), T(10), T(-10)}, z[3], d[3], one[3] = {1, 1, 1};
  activation_forward(z, a, 3, mlp_activation::gelu_erf);
  activation_backward(d, one, a, 3, mlp_activation::gelu_erf);
  CHECK(z[0] == T(0));
  CHECK(d[0] == doctest::Approx(0.5));
  CHECK(z[1] == doctest::Approx(10));
  CHECK(std::abs(z[2]) < T(1e-6));
  activation_forward(z, a, 3, mlp_activation::relu);
  CHECK(z[1] == T(10));
  CHECK(z[2] == T(0));
}

TEST_CASE_TEMPLATE("mlp forward matches the plain loop", T, float, double) {
  eigen_single_thread_guard guard;
  for (auto act : acts) {
    for (auto [n, d, h, e] : {std::array<index_t, 4>{1, 1, 1, 1}, {5, 8, 32, 8}, {7, 17, 70, 9}}) {
      CAPTURE(int(act));
      CAPTURE(d);
      auto X = test::uniform_vector<T>(n * d, 1, T(-2), T(2)),
           W1 = test::uniform_vector<T>(h * d, 2), b1 = test::uniform_vector<T>(h, 3),
           W2 = test::uniform_vector<T>(e * h, 4), b2 = test::uniform_vector<T>(e, 5);
      const mlp_params<T> p{{{W1.data(), h, d}, b1.data()}, {{W2.data(), e, h}, b2.data()}};
      std::vector<T> Y(n * e), Y2(n * e);
      mlp_cache<T> cache;
      mlp_forward<T>({Y.data(), n, e}, cache, {X.data(), n, d}, p, act);
      const auto ref =
          test::ref::mlp(test::to_double(X), n, d, test::to_double(W1), test::to_double(b1), h,
                         test::to_double(W2), test::to_double(b2), e, ref_act(act));
      CHECK(test::scaled_max_error(Y, ref) < test::forward_tol<T> * 5);
      mlp_forward<T>({Y2.data(), n, e}, cache, {X.data(), n, d}, p, act, 2);
      CHECK(Y2 == Y);
    }
  }
}

TEST_CASE(
    "mlp backward equals central finite differences for every activation (double, rel. err < "
    "1e-6)") {
  eigen_single_thread_guard guard;
  const index_t n = 4, d = 6, h = 11, e = 5;
  for (auto act : acts) {
    CAPTURE(int(act));
    auto X = test::uniform_vector<double>(n * d, 51, -2.0, 2.0),
         W1 = test::uniform_vector<double>(h * d, 52), b1 = test::uniform_vector<double>(h, 53),
         W2 = test::uniform_vector<double>(e * h, 54), b2 = test::uniform_vector<double>(e, 55),
         R = test::uniform_vector<double>(n * e, 56);
    const mlp_params<double> p{{{W1.data(), h, d}, b1.data()}, {{W2.data(), e, h}, b2.data()}};
    auto loss = [&] {
      std::vector<double> Y(n * e);
      mlp_cache<double> c;
      mlp_forward<double>({Y.data(), n, e}, c, {X.data(), n, d}, p, act);
      double s = 0;
      for (index_t i = 0; i < Y.size(); ++i) s += R[i] * Y[i];
      return s;
    };
    std::vector<double> Y(n * e);
    mlp_cache<double> cache;
    mlp_forward<double>({Y.data(), n, e}, cache, {X.data(), n, d}, p, act);
    for (double a : cache.pre) REQUIRE(std::abs(a) > 1e-4);  // away from ReLU's kink
    std::vector<double> dX(n * d, 0.0), dW1(h * d, 0.0), db1(h, 0.0), dW2(e * h, 0.0), db2(e, 0.0);
    const mlp_grads<double> g{{{dW1.data(), h, d}, db1.data()}, {{dW2.data(), e, h}, db2.data()}};
    mlp_backward<double>({dX.data(), n, d}, g, {R.data(), n, e}, cache, {X.data(), n, d}, p);
    CHECK(test::relative_error(dX, test::numeric_gradient(loss, X.data(), X.size())) < 1e-6);
    CHECK(test::relative_error(dW1, test::numeric_gradient(loss, W1.data(), W1.size())) < 1e-6);
    CHECK(test::relative_error(db1, test::numeric_gradient(loss, b1.data(), b1.size())) < 1e-6);
    CHECK(test::relative_error(dW2, test::numeric_gradient(loss, W2.data(), W2.size())) < 1e-6);
    CHECK(test::relative_error(db2, test::numeric_gradient(loss, b2.data(), b2.size())) < 1e-6);
    // A second backward adds the same again.
    std::vector<double> dX1(dX);
    mlp_backward<double>({dX.data(), n, d}, g, {R.data(), n, e}, cache, {X.data(), n, d}, p);
    for (index_t i = 0; i < dX.size(); ++i) CHECK(dX[i] == doctest::Approx(2 * dX1[i]));
  }
}

TEST_CASE_TEMPLATE("mlp backward: 1 and 2 threads give the same bits", T, float, double) {
  eigen_single_thread_guard guard;
  const index_t n = 19, d = 40, h = 160, e = 40;
  auto X = test::uniform_vector<T>(n * d, 61), W1 = test::uniform_vector<T>(h * d, 62),
       b1 = test::uniform_vector<T>(h, 63), W2 = test::uniform_vector<T>(e * h, 64),
       b2 = test::uniform_vector<T>(e, 65), R = test::uniform_vector<T>(n * e, 66);
  const mlp_params<T> p{{{W1.data(), h, d}, b1.data()}, {{W2.data(), e, h}, b2.data()}};
  std::vector<std::vector<T>> out;
  for (int threads : {1, 2}) {
    std::vector<T> Y(n * e), dX(n * d, T(0)), dW1(h * d, T(0)), db1(h, T(0)), dW2(e * h, T(0)),
        db2(e, T(0));
    mlp_cache<T> cache;
    mlp_forward<T>({Y.data(), n, e}, cache, {X.data(), n, d}, p, mlp_activation::gelu_erf, threads);
    mlp_backward<T>({dX.data(), n, d},
                    {{{dW1.data(), h, d}, db1.data()}, {{dW2.data(), e, h}, db2.data()}},
                    {R.data(), n, e}, cache, {X.data(), n, d}, p, threads);
    out.insert(out.end(), {Y, dX, dW1, db1, dW2, db2});
  }
  for (index_t i = 0; i < 6; ++i) CHECK(out[i] == out[i + 6]);
}

TEST_CASE("mlp shape errors name the shapes") {
  std::vector<float> X(12), W1(20), W2(30), Y(12);
  mlp_cache<float> cache;
  try {
    mlp_forward<float>({Y.data(), 3, 4}, cache, {X.data(), 3, 4},
                       {{{W1.data(), 5, 4}, nullptr}, {{W2.data(), 4, 6}, nullptr}});
    FAIL("no exception");
  } catch (const std::invalid_argument& e) {
    const std::string m = e.what();
    CHECK(m.find("(4, 6)") != std::string::npos);
    CHECK(m.find("(5, 4)") != std::string::npos);
  }
}

}  // namespace test_nn_mlp
