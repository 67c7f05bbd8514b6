// SPDX-License-Identifier: Apache-2.0
// Tests for zss/core/random.hpp: reproducible streams and correct distributions.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <set>

#include "zss/core/random.hpp"

namespace test_core_random {

using namespace zss;

static_assert(std::uniform_random_bit_generator<rng>);

TEST_CASE("the same (seed, stream) repeats; different ones differ") {
  rng a(5, 3), b(5, 3), c(5, 4), d(6, 3);
  std::set<std::uint64_t> firsts;
  for (int i = 0; i < 100; ++i) {
    const auto x = a();
    CHECK(x == b());
    if (i == 0) {
      firsts.insert(x);
      firsts.insert(c());
      firsts.insert(d());
      firsts.insert(rng(5, thread_stream(0))());
      firsts.insert(rng(5, thread_stream(1))());
    }
  }
  CHECK(firsts.size() == 5);
}

TEST_CASE("splitmix64 matches the published reference values") {
  // First outputs of splitmix64 seeded with 1234567 (Vigna's splitmix64.c).
  std::uint64_t s = 1234567;
  CHECK(splitmix64(s) == 6457827717110365317ull);
  CHECK(splitmix64(s) == 3203168211198807973ull);
}

TEST_CASE_TEMPLATE("uniform lies in [0,1) with mean 1/2 and variance 1/12", T, float, double) {
  rng g(11);
  const int n = 200000;
  double s = 0, s2 = 0;
  for (int i = 0; i < n; ++i) {
    const double u = g.uniform<T>();
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
    s += u;
    s2 += u * u;
  }
  const double mean = s / n, var = s2 / n - mean * mean;
  // 5 standard errors.
  CHECK(std::abs(mean - 0.5) < 5 * std::sqrt(1.0 / 12 / n));
  CHECK(std::abs(var - 1.0 / 12) < 5e-3 / 12 * 12 * 0.1 + 1e-3);
  const double v = g.uniform<T>(T(2), T(3));
  CHECK(v >= 2.0);
  CHECK(v < 3.0);
}

TEST_CASE("below(n) is uniform over [0, n) (chi-square)") {
  rng g(21);
  for (std::uint64_t n : {1ull, 2ull, 7ull, 10ull}) {
    std::vector<int> counts(n, 0);
    const int draws = 70000;
    for (int i = 0; i < draws; ++i) {
      const auto k = g.below(n);
      REQUIRE(k < n);
      counts[k]++;
    }
    double chi2 = 0, e = double(draws) / double(n);
    for (int c : counts) chi2 += (c - e) * (c - e) / e;
    // 99.9% quantile of chi-square with ≤ 9 degrees of freedom is 27.9.
    CHECK(chi2 < 27.9);
  }
}

TEST_CASE_TEMPLATE("normal has mean 0, variance 1 and the right tails", T, float, double) {
  rng g(31);
  const int n = 200000;
  double s = 0, s2 = 0;
  int beyond2 = 0;
  for (int i = 0; i < n; ++i) {
    const double x = g.normal<T>();
    s += x;
    s2 += x * x;
    beyond2 += std::abs(x) > 2.0;
  }
  CHECK(std::abs(s / n) < 5 / std::sqrt(double(n)));
  CHECK(std::abs(s2 / n - 1.0) < 5 * std::sqrt(2.0 / n));
  // P(|Z| > 2) = 0.0455; binomial standard error ≈ 4.7e-4.
  CHECK(std::abs(double(beyond2) / n - 0.0455) < 2.5e-3);
}

}  // namespace test_core_random
