// SPDX-License-Identifier: Apache-2.0
// Tests for zss/loss/info_nce.hpp: InfoNCE forward/backward.
#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>

#include "support/gradcheck.hpp"
#include "support/loss_reference.hpp"
#include "zss/loss/info_nce.hpp"

namespace test_loss_info_nce {

using namespace zss;

TEST_CASE_TEMPLATE("info_nce forward matches the formula", T, float, double) {
  auto Q = test::normal_matrix<double>(4, 9, 1), K = test::normal_matrix<double>(6, 9, 2);
  const std::vector<int> y = {0, 5, 2, 2};
  tensor<T, 2> Qt = xt::cast<T>(Q), Kt = xt::cast<T>(K);
  info_nce_cache<T> cache;
  T loss = 0;
  info_nce_forward(loss, cache, as_matrix(std::as_const(Qt)), as_matrix(std::as_const(Kt)),
                   std::span<const int>(y), info_nce_options{T(0.5)});
  double ref = 0;
  for (index_t i = 0; i < 4; ++i) {
    std::vector<double> z;
    for (index_t j = 0; j < 6; ++j) {
      double s = 0;
      for (index_t d = 0; d < 9; ++d) s += Q(i, d) * K(j, d);
      z.push_back(s / 0.5);
    }
    ref += test::ref::lse(z) - z[std::size_t(y[i])];
  }
  CHECK(double(loss) == doctest::Approx(ref / 4).epsilon(std::is_same_v<T, float> ? 1e-5 : 1e-12));
}

TEST_CASE("info_nce gradients equal central finite differences (queries and keys)") {
  auto Q = test::normal_matrix<double>(3, 5, 3), K = test::normal_matrix<double>(5, 5, 4);
  const std::vector<int> y = {1, 1, 4};
  info_nce_options prm{0.3};
  auto L = [&] {
    info_nce_cache<double> c;
    double l = 0;
    info_nce_forward(l, c, as_matrix(std::as_const(Q)), as_matrix(std::as_const(K)),
                     std::span<const int>(y), prm);
    return l;
  };
  info_nce_cache<double> cache;
  double loss = 0;
  info_nce_forward(loss, cache, as_matrix(std::as_const(Q)), as_matrix(std::as_const(K)),
                   std::span<const int>(y), prm);
  tensor<double, 2> dQ = xt::zeros<double>(Q.shape()), dK = xt::zeros<double>(K.shape());
  info_nce_backward(as_matrix(dQ), as_matrix(dK), 1.0, cache, as_matrix(std::as_const(Q)),
                    as_matrix(std::as_const(K)), std::span<const int>(y), prm);
  CHECK(test::relative_error(dQ, test::numeric_gradient(L, Q.data(), Q.size())) < 1e-6);
  CHECK(test::relative_error(dK, test::numeric_gradient(L, K.data(), K.size())) < 1e-6);
}

TEST_CASE("info_nce: shards with the batch's query count add up to the batch") {
  auto Q = test::normal_matrix<double>(5, 4, 7), K = test::normal_matrix<double>(7, 4, 8);
  const std::vector<int> y = {0, 1, 2, 3, 4};
  const info_nce_options prm{0.2};
  info_nce_cache<double> cache;
  double full = 0;
  info_nce_forward(full, cache, as_matrix(std::as_const(Q)), as_matrix(std::as_const(K)),
                   std::span<const int>(y), prm);
  tensor<double, 2> dQ = xt::zeros<double>(Q.shape()), dK = xt::zeros<double>(K.shape());
  info_nce_backward(as_matrix(dQ), as_matrix(dK), 1.5, cache, as_matrix(std::as_const(Q)),
                    as_matrix(std::as_const(K)), std::span<const int>(y), prm);
  double sum = 0;
  tensor<double, 2> dQs = xt::zeros<double>(Q.shape()), dKs = xt::zeros<double>(K.shape());
  for (const auto& [i0, n] : {std::pair<index_t, index_t>{0, 2}, {2, 3}}) {
    const matrix_ref<const double> Qs(Q.data() + i0 * 4, n, 4);
    info_nce_cache<double> c;
    double l = 0;
    info_nce_forward(l, c, Qs, as_matrix(std::as_const(K)), std::span<const int>(y.data() + i0, n),
                     prm, 5);
    info_nce_backward(matrix_ref<double>(dQs.data() + i0 * 4, n, 4), as_matrix(dKs), 1.5, c, Qs,
                      as_matrix(std::as_const(K)), std::span<const int>(y.data() + i0, n), prm);
    sum += l;
  }
  CHECK(sum == doctest::Approx(full).epsilon(1e-14));
  CHECK(test::relative_error(dQs, dQ) < 1e-14);
  CHECK(test::relative_error(dKs, dK) < 1e-14);
  double l = 0;
  CHECK_THROWS_WITH_AS(
      info_nce_forward(l, cache, as_matrix(std::as_const(Q)), as_matrix(std::as_const(K)),
                       std::span<const int>(y), prm, 4),
      doctest::Contains("fewer than this shard's 5"), std::invalid_argument);
}

TEST_CASE("info_nce: large logits stay finite; bad targets throw") {
  auto Q = test::normal_matrix<double>(2, 3, 5), K = test::normal_matrix<double>(3, 3, 6);
  std::vector<int> y = {0, 2};
  info_nce_cache<double> cache;
  double loss = 0;
  info_nce_forward(loss, cache, as_matrix(std::as_const(Q)), as_matrix(std::as_const(K)),
                   std::span<const int>(y), info_nce_options{1e-5});
  CHECK(std::isfinite(loss));
  y[1] = 3;
  CHECK_THROWS_WITH_AS(
      info_nce_forward(loss, cache, as_matrix(std::as_const(Q)), as_matrix(std::as_const(K)),
                       std::span<const int>(y), info_nce_options{}),
      doctest::Contains("target 3 of query 1"), std::invalid_argument);
}

}  // namespace test_loss_info_nce
