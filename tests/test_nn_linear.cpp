// SPDX-License-Identifier: Apache-2.0
// Tests for zss/nn/linear.hpp: forward against a plain loop, backward against finite differences.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "support/gradcheck.hpp"
#include "support/nn_reference.hpp"
#include "support/random_data.hpp"
#include "zss/core/eigen_map.hpp"
#include "zss/nn/linear.hpp"

namespace test_nn_linear {

using namespace zss;

namespace {
struct shape3 {
  index_t n, in, out;
};
const shape3 shapes[] = {{1, 1, 1}, {3, 5, 7}, {4, 17, 65}, {9, 64, 130}, {2, 33, 64}};
}  // namespace

TEST_CASE_TEMPLATE("linear forward matches the plain loop, with and without bias", T, float,
                   double) {
  eigen_single_thread_guard guard;
  for (auto [n, in, out] : shapes) {
    CAPTURE(n);
    CAPTURE(in);
    CAPTURE(out);
    auto X = test::uniform_vector<T>(n * in, 1), W = test::uniform_vector<T>(out * in, 2),
         b = test::uniform_vector<T>(out, 3);
    for (bool bias : {true, false}) {
      std::vector<T> Y(n * out, T(7));
      linear_forward<T>({Y.data(), n, out}, {X.data(), n, in},
                        {{W.data(), out, in}, bias ? b.data() : nullptr});
      const auto ref = test::ref::linear(test::to_double(X), n, in, test::to_double(W), out,
                                         bias ? test::to_double(b) : test::ref::vec{});
      CHECK(test::scaled_max_error(Y, ref) < test::forward_tol<T>);
      // Same bits for 2 threads (fixed column panels).
      std::vector<T> Y2(n * out);
      linear_forward<T>({Y2.data(), n, out}, {X.data(), n, in},
                        {{W.data(), out, in}, bias ? b.data() : nullptr}, 2);
      CHECK(Y2 == Y);
    }
  }
}

TEST_CASE("linear backward equals central finite differences (double, rel. err < 1e-6)") {
  eigen_single_thread_guard guard;
  // Small enough for sanitizer builds; 70 outputs cross the 64-column panel boundary.
  const shape3 fd_shapes[] = {{1, 1, 1}, {3, 5, 7}, {4, 17, 65}, {2, 9, 70}};
  for (auto [n, in, out] : fd_shapes) {
    CAPTURE(n);
    CAPTURE(in);
    CAPTURE(out);
    auto X = test::uniform_vector<double>(n * in, 10),
         W = test::uniform_vector<double>(out * in, 11), b = test::uniform_vector<double>(out, 12),
         R = test::uniform_vector<double>(n * out, 13);
    // L = Σ R ⊙ Y, so dY = R.
    auto loss = [&] {
      std::vector<double> Y(n * out);
      linear_forward<double>({Y.data(), n, out}, {X.data(), n, in},
                             {{W.data(), out, in}, b.data()});
      double s = 0;
      for (index_t i = 0; i < Y.size(); ++i) s += R[i] * Y[i];
      return s;
    };
    // Accumulators start non-zero: backward must add.
    std::vector<double> dX(n * in, 0.5), dW(out * in, -0.25), db(out, 1.0);
    const auto gX = test::numeric_gradient(loss, X.data(), X.size());
    const auto gW = test::numeric_gradient(loss, W.data(), W.size());
    const auto gb = test::numeric_gradient(loss, b.data(), b.size());
    for (int threads : {1, 2}) {
      std::vector<double> dXt(dX), dWt(dW), dbt(db);
      linear_backward<double>({dXt.data(), n, in}, {{dWt.data(), out, in}, dbt.data()},
                              {R.data(), n, out}, {X.data(), n, in},
                              {{W.data(), out, in}, b.data()}, threads);
      for (index_t i = 0; i < dXt.size(); ++i) dXt[i] -= 0.5;
      for (index_t i = 0; i < dWt.size(); ++i) dWt[i] += 0.25;
      for (index_t i = 0; i < dbt.size(); ++i) dbt[i] -= 1.0;
      CHECK(test::relative_error(dXt, gX) < 1e-6);
      CHECK(test::relative_error(dWt, gW) < 1e-6);
      CHECK(test::relative_error(dbt, gb) < 1e-6);
    }
  }
}

TEST_CASE_TEMPLATE("linear backward: 1 and 2 threads give the same bits; null views are skipped", T,
                   float, double) {
  eigen_single_thread_guard guard;
  const index_t n = 37, in = 70, out = 129;
  auto X = test::uniform_vector<T>(n * in, 21), W = test::uniform_vector<T>(out * in, 22),
       R = test::uniform_vector<T>(n * out, 23);
  std::vector<std::vector<T>> results;
  for (int threads : {1, 2}) {
    std::vector<T> dX(n * in, T(0)), dW(out * in, T(0)), db(out, T(0));
    linear_backward<T>({dX.data(), n, in}, {{dW.data(), out, in}, db.data()}, {R.data(), n, out},
                       {X.data(), n, in}, {{W.data(), out, in}, nullptr}, threads);
    results.push_back(dX);
    results.push_back(dW);
    results.push_back(db);
  }
  CHECK(results[0] == results[3]);
  CHECK(results[1] == results[4]);
  CHECK(results[2] == results[5]);
  // Only dW requested: dX untouched, no crash on null db.
  std::vector<T> dW(out * in, T(0));
  linear_backward<T>({}, {{dW.data(), out, in}, nullptr}, {R.data(), n, out}, {X.data(), n, in},
                     {{W.data(), out, in}, nullptr});
  CHECK(dW == results[1]);
}

TEST_CASE("linear shape errors name the shapes") {
  std::vector<float> X(12), W(20), Y(15);
  try {
    linear_forward<float>({Y.data(), 3, 5}, {X.data(), 3, 4}, {{W.data(), 5, 3}, nullptr});
    FAIL("no exception");
  } catch (const std::invalid_argument& e) {
    const std::string m = e.what();
    CHECK(m.find("(5, 3)") != std::string::npos);
    CHECK(m.find("4") != std::string::npos);
  }
  CHECK_THROWS_AS(
      linear_forward<float>({Y.data(), 3, 4}, {X.data(), 3, 4}, {{W.data(), 5, 4}, nullptr}),
      std::invalid_argument);
  CHECK_THROWS_AS(linear_backward<float>({X.data(), 3, 4}, {}, {Y.data(), 3, 4}, {X.data(), 3, 4},
                                         {{W.data(), 5, 4}, nullptr}),
                  std::invalid_argument);
}

}  // namespace test_nn_linear
