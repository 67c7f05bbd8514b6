// SPDX-License-Identifier: Apache-2.0
// Tests for zss/nn/relu.hpp.
#include <doctest/doctest.h>

#include <vector>

#include "support/gradcheck.hpp"
#include "support/random_data.hpp"
#include "zss/nn/relu.hpp"

namespace test_nn_relu {

using namespace zss;

TEST_CASE_TEMPLATE("relu forward clamps negatives and backward adds the masked gradient", T, float,
                   double) {
  std::vector<T> x = {T(-2), T(0), T(3), T(-0.5), T(7)}, y(5);
  relu_forward<T>(y, x);
  const std::vector<T> expect = {0, 0, 3, 0, 7};
  CHECK(y == expect);
  std::vector<T> dy = {1, 2, 3, 4, 5}, dx = {10, 10, 10, 10, 10};
  relu_backward<T>(dx, dy, y);
  const std::vector<T> expect_dx = {10, 10, 13, 10, 15};  // zero at x = 0 (PyTorch's convention)
  CHECK(dx == expect_dx);
  relu_forward<T>(x, x);  // in place
  CHECK(x == expect);
}

TEST_CASE("relu backward matches finite differences away from 0 (double)") {
  auto x = test::uniform_vector<double>(40, 3);
  auto w = test::uniform_vector<double>(40, 4);
  for (auto& v : x) v += v > 0 ? 0.1 : -0.1;  // keep away from the kink
  std::vector<double> y(40), dx(40, 0.0);
  relu_forward<double>(y, x);
  relu_backward<double>(dx, std::span<const double>(w.data(), 40), y);
  auto g = test::numeric_gradient(
      [&] {
        std::vector<double> t(40);
        relu_forward<double>(t, std::span<const double>(x.data(), 40));
        double s = 0;
        for (int i = 0; i < 40; ++i) s += t[i] * w[i];
        return s;
      },
      x.data(), 40);
  CHECK(test::relative_error(dx, g) < 1e-6);
}

TEST_CASE("relu size mismatches throw") {
  std::vector<float> a(3), b(4);
  CHECK_THROWS_WITH_AS(relu_forward<float>(a, b),
                       doctest::Contains("out size (3) must equal in size (4)"),
                       std::invalid_argument);
  CHECK_THROWS_AS(relu_backward<float>(a, b, b), std::invalid_argument);
}

}  // namespace test_nn_relu
