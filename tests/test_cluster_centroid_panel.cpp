// SPDX-License-Identifier: Apache-2.0
// Tests for zss/cluster/centroid_panel.hpp: the register-tiled distance kernel against brute force.
#include <doctest/doctest.h>

#include <vector>

#include "support/cluster_reference.hpp"
#include "zss/cluster/centroid_panel.hpp"

namespace test_cluster_centroid_panel {

using namespace zss;

TEST_CASE_TEMPLATE("panel_argmin finds the exact nearest centroid on integer data at awkward sizes",
                   T, float, double) {
  // K around the lane widths and the column-block size (4 batches), D around the lane widths.
  for (index_t d : {1, 3, 17, 33}) {
    for (index_t k : {1, 2, 7, 15, 16, 17, 31, 33, 64, 65, 70}) {
      CAPTURE(d);
      CAPTURE(k);
      const index_t n = 53;  // not a multiple of any row tile
      const auto X = test::integer_matrix<T>(n, d, 10 * d + k);
      const auto C = test::integer_matrix<T>(k, d, 1000 + 10 * d + k);
      centroid_panel<T> P;
      P.pack(as_matrix(C));
      CHECK(P.k() == k);
      CHECK(P.kp() % simd::width<T> == 0);
      std::vector<index_t> got(n, 999);
      std::vector<double> val(n);
      index_t calls = 0;
      panel_argmin<T>(P, as_matrix(X), 0, n, [&](index_t i, index_t c, T v) {
        got[i] = c;
        val[i] = double(v);
        ++calls;
      });
      CHECK(calls == n);
      for (index_t i = 0; i < n; ++i) {
        // Expected: the lowest index among the exact minimisers.
        index_t best = 0;
        double bd = test::exact_sqdist(&X(i, 0), &C(0, 0), d);
        for (index_t c = 1; c < k; ++c) {
          const double dd = test::exact_sqdist(&X(i, 0), &C(c, 0), d);
          if (dd < bd) bd = dd, best = c;
        }
        CHECK(got[i] == best);
        double xn = 0;
        for (index_t j = 0; j < d; ++j) xn += double(X(i, j)) * double(X(i, j));
        CHECK(val[i] + xn == bd);  // integer data: every step exact
      }
    }
  }
}

TEST_CASE_TEMPLATE("panel_argmin breaks ties to the lowest index, also across column blocks", T,
                   float, double) {
  const index_t d = 3, k = 80;
  tensor<T, 2> C = tensor<T, 2>::from_shape({k, d});
  for (index_t c = 0; c < k; ++c)
    for (index_t j = 0; j < d; ++j) C(c, j) = T(100);  // far away
  // The same nearest centroid at 5, 37 and 70 (different column blocks for every width).
  for (index_t c : {70, 37, 5})
    for (index_t j = 0; j < d; ++j) C(c, j) = T(1);
  tensor<T, 2> X = tensor<T, 2>::from_shape({20, d});
  X.fill(T(0));
  centroid_panel<T> P;
  P.pack(as_matrix(C));
  panel_argmin<T>(P, as_matrix(X), 3, 20, [&](index_t i, index_t c, T) {
    CHECK(i >= 3);
    CHECK(c == 5);
  });
}

TEST_CASE_TEMPLATE("panel_distances returns every distance, +inf in the padding", T, float,
                   double) {
  const index_t n = 29, d = 17, k = 19;
  const auto X = test::integer_matrix<T>(n, d, 5);
  const auto C = test::integer_matrix<T>(k, d, 6);
  centroid_panel<T> P;
  P.pack(as_matrix(C));
  aligned_vector<T> scratch(12 * P.kp());
  index_t rows = 0;
  panel_distances<T>(P, as_matrix(X), 0, n, scratch.data(), [&](index_t i, const T* v) {
    ++rows;
    double xn = 0;
    for (index_t j = 0; j < d; ++j) xn += double(X(i, j)) * double(X(i, j));
    for (index_t c = 0; c < k; ++c)
      CHECK(double(v[c]) + xn == test::exact_sqdist(&X(i, 0), &C(c, 0), d));
    for (index_t c = k; c < P.kp(); ++c) CHECK(std::isinf(v[c]));
  });
  CHECK(rows == n);
}

}  // namespace test_cluster_centroid_panel
