// SPDX-License-Identifier: Apache-2.0
// Tests for zss/plm/region_pool.hpp: masked means against the reference, backward against finite
// differences, empty regions, threads, errors.
#include <doctest/doctest.h>

#include <stdexcept>

#include "support/gradcheck.hpp"
#include "support/loss_reference.hpp"
#include "zss/plm/region_pool.hpp"

namespace test_plm_region_pool {

using namespace zss;

TEST_CASE_TEMPLATE("region_pool forward matches the reference (empty regions pool to 0)", T, float,
                   double) {
  const index_t N = 41, D = 17, L = 6;
  auto R = xt::cast<T>(test::normal_matrix<double>(N, D, 1));
  tensor<T, 2> Rt = R;
  std::vector<int> region(N);
  rng g(2);
  for (auto& r : region) r = int(g.below(L)) - 1;  // −1 … 4: region 5 stays empty
  for (int threads : {1, 2}) {
    tensor<T, 2> out = tensor<T, 2>::from_shape({L, D});
    out.fill(T(9));
    region_pool_cache cache;
    region_pool_forward(as_matrix(out), cache, as_matrix(std::as_const(Rt)),
                        std::span<const int>(region), region_pool_options{threads});
    const auto ref =
        test::ref::region_pool(test::ref::to_dmat(as_matrix(std::as_const(Rt))), region, L);
    for (index_t l = 0; l < L; ++l)
      for (index_t d = 0; d < D; ++d)
        CHECK(double(out(l, d)) == doctest::Approx(ref[l][d]).epsilon(1e-6).scale(1e-6));
    CHECK(cache.count[5] == 0);
  }
}

TEST_CASE("region_pool backward equals central finite differences and adds into dR") {
  const index_t N = 13, D = 3, L = 4;
  auto R = test::normal_matrix<double>(N, D, 3);
  const std::vector<int> region = {0, 1, -1, 1, 3, 0, 0, -1, 3, 1, 1, 0, 3};  // region 2 empty
  auto G = test::normal_matrix<double>(L, D, 4);
  auto loss = [&] {
    tensor<double, 2> out = xt::zeros<double>({L, D});
    region_pool_cache c;
    region_pool_forward(as_matrix(out), c, as_matrix(std::as_const(R)),
                        std::span<const int>(region), region_pool_options{1});
    double s = 0;
    for (std::size_t i = 0; i < out.size(); ++i) s += out.data()[i] * G.data()[i];
    return s;
  };
  tensor<double, 2> out = xt::zeros<double>({L, D});
  region_pool_cache cache;
  region_pool_forward(as_matrix(out), cache, as_matrix(std::as_const(R)),
                      std::span<const int>(region));
  tensor<double, 2> dR = xt::ones<double>({N, D});
  region_pool_backward(as_matrix(dR), as_matrix(std::as_const(G)), cache,
                       std::span<const int>(region));
  dR -= 1.0;  // adds into: the initial ones stay
  CHECK(test::relative_error(dR, test::numeric_gradient(loss, R.data(), R.size())) < 1e-6);
  for (index_t d = 0; d < D; ++d) CHECK(dR(2, d) == 0.0);
}

TEST_CASE("region_pool errors") {
  auto R = test::normal_matrix<double>(4, 3, 5);
  tensor<double, 2> out = xt::zeros<double>({2, 3});
  region_pool_cache cache;
  std::vector<int> region = {0, 1, 2, -1};
  CHECK_THROWS_WITH_AS(region_pool_forward(as_matrix(out), cache, as_matrix(std::as_const(R)),
                                           std::span<const int>(region)),
                       doctest::Contains("region id 2 of row 2"), std::invalid_argument);
  region = {0, 1};
  CHECK_THROWS_AS(region_pool_forward(as_matrix(out), cache, as_matrix(std::as_const(R)),
                                      std::span<const int>(region)),
                  std::invalid_argument);
  tensor<double, 2> wide = xt::zeros<double>({2, 4});
  region = {0, 1, 1, -1};
  CHECK_THROWS_WITH_AS(region_pool_forward(as_matrix(wide), cache, as_matrix(std::as_const(R)),
                                           std::span<const int>(region)),
                       doctest::Contains("width of pooled (4)"), std::invalid_argument);
}

}  // namespace test_plm_region_pool
