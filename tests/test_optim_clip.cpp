// SPDX-License-Identifier: Apache-2.0
// Tests for zss/optim/clip.hpp.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "zss/optim/clip.hpp"

namespace test_optim_clip {

using namespace zss;

TEST_CASE_TEMPLATE("clip_grad_norm scales to max_norm and returns the norm before clipping", T,
                   float, double) {
  std::vector<T> g = {T(3), T(0), T(-4)};
  CHECK(clip_grad_norm(std::span<T>(g), 10.0) == doctest::Approx(5.0));
  CHECK(g == std::vector<T>{T(3), T(0), T(-4)});  // under the limit: untouched
  CHECK(clip_grad_norm(std::span<T>(g), 1.0) == doctest::Approx(5.0));
  CHECK(double(g[0]) == doctest::Approx(3.0 / (5.0 + 1e-6)));
  CHECK(double(g[2]) == doctest::Approx(-4.0 / (5.0 + 1e-6)));
  CHECK(grad_norm(std::span<const T>(g)) == doctest::Approx(1.0).epsilon(1e-6));
}

TEST_CASE("non-finite norms: untouched and reported, or an exception on request") {
  std::vector<double> g = {1.0, std::numeric_limits<double>::quiet_NaN()};
  CHECK(std::isnan(clip_grad_norm(std::span<double>(g), 1.0)));
  CHECK(g[0] == 1.0);
  CHECK_THROWS_AS(clip_grad_norm(std::span<double>(g), 1.0, true), std::domain_error);
  CHECK_THROWS_AS(clip_grad_norm(std::span<double>(g), 0.0), std::invalid_argument);
}

}  // namespace test_optim_clip
