// SPDX-License-Identifier: Apache-2.0
// Tests for zss/cluster/window_seeds.hpp: average-pool seeds against hand-computed values.
#include <doctest/doctest.h>

#include <stdexcept>

#include "zss/cluster/window_seeds.hpp"

namespace test_cluster_window_seeds {

using namespace zss;

namespace {
/// 3 × 5 grid, D = 2: token (y, x) = (5y + x, 10y − x).
template <class T>
tensor<T, 2> grid_tokens() {
  tensor<T, 2> t = tensor<T, 2>::from_shape({15, 2});
  for (index_t y = 0; y < 3; ++y)
    for (index_t x = 0; x < 5; ++x) {
      t(y * 5 + x, 0) = T(5 * y + x);
      t(y * 5 + x, 1) = T(10 * int(y) - int(x));
    }
  return t;
}
}  // namespace

TEST_CASE("window_seed_count is ceil(h/s) * ceil(w/s)") {
  CHECK(window_seed_count(16, 16, 2) == 64);
  CHECK(window_seed_count(16, 16, 4) == 16);
  CHECK(window_seed_count(3, 5, 2) == 6);
  CHECK(window_seed_count(3, 5, 7) == 1);
  CHECK(window_seed_count(32, 32, 16) == 4);
}

TEST_CASE_TEMPLATE("window seeds average exactly the tokens each window covers", T, float, double) {
  const auto tok = grid_tokens<T>();
  const auto s = window_seeds<T>(as_matrix(tok), 3, 5, 2);
  REQUIRE(s.shape()[0] == 6);
  REQUIRE(s.shape()[1] == 2);
  // Seed (0,0): tokens (0,0) (0,1) (1,0) (1,1) = ids 0 1 5 6; second feature 0 −1 10 9.
  CHECK(s(0, 0) == doctest::Approx(3.0));
  CHECK(s(0, 1) == doctest::Approx(4.5));
  // Seed (0,1): ids 2 3 7 8; second feature −2 −3 8 7.
  CHECK(s(1, 0) == doctest::Approx(5.0));
  CHECK(s(1, 1) == doctest::Approx(2.5));
  // Seed (0,2) is a partial window: tokens (0,4) (1,4) = ids 4 and 9; second feature −4 and 6.
  CHECK(s(2, 0) == doctest::Approx(6.5));
  CHECK(s(2, 1) == doctest::Approx(1.0));
  // Seed (1,0): bottom partial window, tokens (2,0) (2,1) = ids 10 11; second feature 20 19.
  CHECK(s(3, 0) == doctest::Approx(10.5));
  CHECK(s(3, 1) == doctest::Approx(19.5));
  // Seed (1,2): the corner, a single token (2,4) = id 14, second feature 16.
  CHECK(s(5, 0) == doctest::Approx(14.0));
  CHECK(s(5, 1) == doctest::Approx(16.0));
}

TEST_CASE_TEMPLATE("window 1 copies the tokens, a window covering the grid gives the mean", T,
                   float, double) {
  const auto tok = grid_tokens<T>();
  const auto s1 = window_seeds<T>(as_matrix(tok), 3, 5, 1);
  REQUIRE(s1.shape()[0] == 15);
  for (index_t i = 0; i < 15; ++i) {
    CHECK(s1(i, 0) == tok(i, 0));
    CHECK(s1(i, 1) == tok(i, 1));
  }
  const auto all = window_seeds<T>(as_matrix(tok), 3, 5, 8);
  REQUIRE(all.shape()[0] == 1);
  CHECK(all(0, 0) == doctest::Approx(7.0));  // mean of 0..14
  CHECK(all(0, 1) == doctest::Approx(8.0));  // mean of 10y − x: 10·1 − 2
}

TEST_CASE("window seeds of an h x w x D tensor use its grid") {
  tensor<double, 3> t = tensor<double, 3>::from_shape({2, 2, 1});
  t(0, 0, 0) = 1;
  t(0, 1, 0) = 2;
  t(1, 0, 0) = 3;
  t(1, 1, 0) = 6;
  const auto s = window_seeds(t, 2);
  REQUIRE(s.shape()[0] == 1);
  CHECK(s(0, 0) == 3.0);
}

TEST_CASE("window seeds reject a grid that does not match the data, and window 0") {
  const auto tok = grid_tokens<float>();
  CHECK_THROWS_WITH_AS(window_seeds<float>(as_matrix(tok), 4, 5, 2),
                       "window_seeds: grid 4 x 5 = 20 tokens, but the data has 15 rows",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(window_seeds<float>(as_matrix(tok), 3, 5, 0),
                       "window_seeds: window size must be >= 1, got 0", std::invalid_argument);
  tensor<float, 2> out = tensor<float, 2>::from_shape({5, 2});
  CHECK_THROWS_AS(window_seeds<float>(as_matrix(out), as_matrix(tok), 3, 5, 2),
                  std::invalid_argument);
}

}  // namespace test_cluster_window_seeds
