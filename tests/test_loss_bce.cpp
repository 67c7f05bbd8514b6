// SPDX-License-Identifier: Apache-2.0
// Tests for zss/loss/bce.hpp: values against the textbook formula, finite-difference gradient,
// huge logits without overflow, soft targets, errors.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "support/gradcheck.hpp"
#include "support/nn_reference.hpp"
#include "support/random_data.hpp"
#include "zss/loss/bce.hpp"

namespace test_loss_bce {

using namespace zss;

TEST_CASE_TEMPLATE("bce forward matches −y log σ − (1−y) log(1−σ)", T, float, double) {
  for (auto [n, k] : {std::array<index_t, 2>{1, 1}, {3, 5}, {7, 16}}) {
    auto Z = test::uniform_vector<T>(n * k, n + k, T(-8), T(8));
    auto Y = test::uniform_vector<T>(n * k, 2 * n + k, T(0), T(1));  // soft targets
    for (index_t i = 0; i < n * k; i += 3) Y[i] = T(i % 2);          // and hard ones
    T loss = -1;
    bce_with_logits_forward<T>(loss, {Z.data(), n, k}, {Y.data(), n, k});
    const double ref = test::ref::bce_mean(test::to_double(Z), test::to_double(Y));
    CHECK(double(loss) == doctest::Approx(ref).epsilon(sizeof(T) == 4 ? 1e-5 : 1e-12));
  }
  // Hand values: ℓ(0, y) = log 2, ℓ(z, 1) = log(1 + e^{−z}).
  T z[2] = {T(0), T(2)}, y[2] = {T(0.3), T(1)};
  CHECK(bce_with_logits(z[0], y[0]) == doctest::Approx(std::log(2.0)));
  CHECK(bce_with_logits(z[1], y[1]) == doctest::Approx(std::log1p(std::exp(-2.0))));
}

TEST_CASE("bce backward equals central finite differences (double, rel. err < 1e-6)") {
  const index_t n = 4, k = 6;
  auto Z = test::uniform_vector<double>(n * k, 7, -5.0, 5.0);
  auto Y = test::uniform_vector<double>(n * k, 8, 0.0, 1.0);
  for (double dloss : {1.0, -2.5}) {
    auto loss = [&] {
      double l = 0;
      bce_with_logits_forward<double>(l, {Z.data(), n, k}, {Y.data(), n, k});
      return dloss * l;
    };
    std::vector<double> dZ(n * k, 3.0);
    bce_with_logits_backward<double>({dZ.data(), n, k}, dloss, {Z.data(), n, k}, {Y.data(), n, k});
    for (auto& v : dZ) v -= 3.0;  // adds into
    CHECK(test::relative_error(dZ, test::numeric_gradient(loss, Z.data(), Z.size())) < 1e-6);
  }
}

TEST_CASE_TEMPLATE("bce with huge logits stays finite and exact", T, float, double) {
  const T big = T(1e30);
  T Z[4] = {big, -big, big, -big}, Y[4] = {T(1), T(0), T(0), T(1)};
  T loss = 0;
  bce_with_logits_forward<T>(loss, {Z, 2, 2}, {Y, 2, 2});
  // Right answers cost 0, wrong ones cost |z|: mean = 2·1e30 / 4.
  CHECK(std::isfinite(loss));
  CHECK(double(loss) == doctest::Approx(0.5e30).epsilon(1e-6));
  T dZ[4] = {0, 0, 0, 0};
  bce_with_logits_backward<T>({dZ, 2, 2}, T(1), {Z, 2, 2}, {Y, 2, 2});
  CHECK(dZ[0] == T(0));
  CHECK(dZ[1] == T(0));
  CHECK(dZ[2] == doctest::Approx(0.25));   // (σ − y)/4 = (1 − 0)/4
  CHECK(dZ[3] == doctest::Approx(-0.25));  // (0 − 1)/4
  // Moderately large (exp would overflow float at 89): still finite, gradient saturates.
  T z2 = T(200), y2 = T(0);
  CHECK(bce_with_logits(z2, y2) == doctest::Approx(200));
  CHECK(sigmoid(T(-200)) >= T(0));
  CHECK(sigmoid(T(-200)) < T(1e-30));
}

TEST_CASE("bce on an empty matrix is 0 and its gradient a no-op; shape errors name the shapes") {
  float loss = 5;
  bce_with_logits_forward<float>(loss, {nullptr, 0, 3}, {nullptr, 0, 3});
  CHECK(loss == 0.0f);
  std::vector<float> Z(6), Y(8), dZ(6);
  CHECK_THROWS_WITH_AS(bce_with_logits_forward<float>(loss, {Z.data(), 2, 3}, {Y.data(), 2, 4}),
                       doctest::Contains("(2, 4)"), std::invalid_argument);
  CHECK_THROWS_AS(
      bce_with_logits_backward<float>({dZ.data(), 3, 2}, 1.0f, {Z.data(), 2, 3}, {Y.data(), 2, 3}),
      std::invalid_argument);
}

}  // namespace test_loss_bce
