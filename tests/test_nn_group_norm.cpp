// SPDX-License-Identifier: Apache-2.0
// Tests for zss/nn/group_norm.hpp: forward against a two-pass direct reference, backward against
// finite differences.
#include <doctest/doctest.h>

#include <cmath>

#include "support/gradcheck.hpp"
#include "support/random_data.hpp"
#include "zss/nn/group_norm.hpp"

namespace test_nn_group_norm {

using namespace zss;

namespace {
template <class T>
tensor<T, 4> gn_random4(index_t a, index_t b, index_t c, index_t d, std::uint64_t seed,
                        T offset = T(0)) {
  tensor<T, 4> t = tensor<T, 4>::from_shape({a, b, c, d});
  auto v = test::uniform_vector<T>(t.size(), seed);
  for (index_t i = 0; i < t.size(); ++i) t.data()[i] = v[i] + offset;
  return t;
}
}  // namespace

TEST_CASE_TEMPLATE("forward equals the two-pass definition for G = 1, 2, C", T, float, double) {
  const index_t B = 3, H = 5, W = 3, C = 6;
  auto x =
      gn_random4<T>(B, H, W, C, 1, T(3));  // an offset: the one-pass sums must still be accurate
  auto gam = test::uniform_vector<T>(C, 2), bet = test::uniform_vector<T>(C, 3);
  for (index_t G : {1, 2, 6}) {
    CAPTURE(G);
    tensor<T, 4> y = tensor<T, 4>::from_shape(x.shape());
    group_norm_cache<T> cache;
    group_norm_forward(y, cache, x, gam.data(), bet.data(), G, T(1e-5), 2);
    const index_t cg = C / G;
    for (index_t b = 0; b < B; ++b)
      for (index_t g = 0; g < G; ++g) {
        double mu = 0, var = 0;
        for (index_t p = 0; p < H * W; ++p)
          for (index_t c = g * cg; c < (g + 1) * cg; ++c)
            mu += double(x.data()[(b * H * W + p) * C + c]);
        mu /= double(H * W * cg);
        for (index_t p = 0; p < H * W; ++p)
          for (index_t c = g * cg; c < (g + 1) * cg; ++c) {
            const double d = double(x.data()[(b * H * W + p) * C + c]) - mu;
            var += d * d;
          }
        var /= double(H * W * cg);
        for (index_t p = 0; p < H * W; ++p)
          for (index_t c = g * cg; c < (g + 1) * cg; ++c) {
            const index_t i = (b * H * W + p) * C + c;
            const double expect =
                (double(x.data()[i]) - mu) / std::sqrt(var + 1e-5) * double(gam[c]) +
                double(bet[c]);
            CHECK(std::abs(double(y.data()[i]) - expect) <=
                  (std::is_same_v<T, float> ? 2e-5 : 1e-12));  // outputs are O(1)
          }
      }
  }
}

TEST_CASE("backward (input, gamma, beta) equals finite differences and adds into (double)") {
  const index_t B = 2, H = 4, W = 3, C = 6;
  auto x = gn_random4<double>(B, H, W, C, 5, 0.5);
  auto r = gn_random4<double>(B, H, W, C, 6);
  auto gam = test::uniform_vector<double>(C, 7), bet = test::uniform_vector<double>(C, 8);
  for (index_t G : {1, 3, 6}) {
    CAPTURE(G);
    group_norm_cache<double> cache;
    auto loss = [&] {
      tensor<double, 4> y = tensor<double, 4>::from_shape(x.shape());
      group_norm_cache<double> c2;
      group_norm_forward(y, c2, x, gam.data(), bet.data(), G, 1e-5, 1);
      double l = 0;
      for (index_t i = 0; i < y.size(); ++i) l += y.data()[i] * r.data()[i];
      return l;
    };
    tensor<double, 4> y = tensor<double, 4>::from_shape(x.shape());
    group_norm_forward(y, cache, x, gam.data(), bet.data(), G, 1e-5, 1);
    tensor<double, 4> dx = xt::zeros<double>(x.shape());
    std::vector<double> dg(C, 0.0), db(C, 0.0);
    group_norm_backward(&dx, dg.data(), db.data(), r, cache, x, gam.data(), G, 2);
    CHECK(test::relative_error(dx, test::numeric_gradient(loss, x.data(), x.size())) < 1e-6);
    CHECK(test::relative_error(dg, test::numeric_gradient(loss, gam.data(), C)) < 1e-6);
    CHECK(test::relative_error(db, test::numeric_gradient(loss, bet.data(), C)) < 1e-6);
    const auto dg1 = dg;
    group_norm_backward<double>(nullptr, dg.data(), db.data(), r, cache, x, gam.data(), G, 1);
    for (index_t c = 0; c < C; ++c) CHECK(dg[c] == doctest::Approx(2 * dg1[c]));
  }
}

TEST_CASE("groups must divide the channels; shapes are checked") {
  tensor<float, 4> x = xt::zeros<float>({1, 2, 2, 6});
  std::vector<float> g(6, 1.f), b(6, 0.f);
  group_norm_cache<float> cache;
  CHECK_THROWS_WITH_AS(group_norm_forward(x, cache, x, g.data(), b.data(), 4),
                       doctest::Contains("channels (6)"), std::invalid_argument);
  tensor<float, 4> y = xt::zeros<float>({1, 2, 3, 6});
  CHECK_THROWS_WITH_AS(group_norm_forward(y, cache, x, g.data(), b.data(), 2),
                       doctest::Contains("(1, 2, 3, 6)"), std::invalid_argument);
}

}  // namespace test_nn_group_norm
