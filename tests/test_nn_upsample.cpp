// SPDX-License-Identifier: Apache-2.0
// Tests for zss/nn/upsample.hpp: PyTorch's align_corners=False values, adjoint, finite differences.
#include <doctest/doctest.h>

#include <cmath>

#include "support/gradcheck.hpp"
#include "support/random_data.hpp"
#include "zss/nn/upsample.hpp"

namespace test_nn_upsample {

using namespace zss;

TEST_CASE_TEMPLATE("2x2 -> 4x4 gives PyTorch's bilinear (align_corners=False) values", T, float,
                   double) {
  tensor<T, 4> in = tensor<T, 4>::from_shape({1, 2, 2, 1});
  in(0, 0, 0, 0) = 1, in(0, 0, 1, 0) = 2, in(0, 1, 0, 0) = 3, in(0, 1, 1, 0) = 4;
  tensor<T, 4> out = tensor<T, 4>::from_shape({1, 4, 4, 1});
  upsample_bilinear_forward(out, in);
  // F.interpolate(torch.tensor([[[[1.,2.],[3.,4.]]]]), size=(4,4), mode="bilinear",
  // align_corners=False)
  const double expect[4][4] = {{1.0, 1.25, 1.75, 2.0},
                               {1.5, 1.75, 2.25, 2.5},
                               {2.5, 2.75, 3.25, 3.5},
                               {3.0, 3.25, 3.75, 4.0}};
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) CHECK(double(out(0, y, x, 0)) == doctest::Approx(expect[y][x]));
  // 1x3 -> 1x5 along x: scale 0.6, sources max(0.6x - 0.2, 0) = 0, 0.4, 1.0, 1.6, 2.2 -> clamped at
  // the end.
  tensor<T, 4> r = tensor<T, 4>::from_shape({1, 1, 3, 1});
  r(0, 0, 0, 0) = 0, r(0, 0, 1, 0) = 10, r(0, 0, 2, 0) = 20;
  tensor<T, 4> ro = tensor<T, 4>::from_shape({1, 1, 5, 1});
  upsample_bilinear_forward(ro, r);
  const double ex[5] = {0, 4, 10, 16, 20};
  for (int x = 0; x < 5; ++x) CHECK(double(ro(0, 0, x, 0)) == doctest::Approx(ex[x]).epsilon(1e-6));
}

namespace {
// Direct reference: separable weights from the definition, per output pixel.
double ref_value(const tensor<double, 4>& in, index_t b, index_t oy, index_t ox, index_t c,
                 index_t H, index_t W) {
  const index_t h = in.shape()[1], w = in.shape()[2];
  auto src = [](index_t o, index_t n_in, index_t n_out) {
    return std::max((o + 0.5) * double(n_in) / double(n_out) - 0.5, 0.0);
  };
  const double sy = src(oy, h, H), sx = src(ox, w, W);
  const index_t y0 = index_t(std::floor(sy)), x0 = index_t(std::floor(sx));
  const index_t y1 = std::min(y0 + 1, h - 1), x1 = std::min(x0 + 1, w - 1);
  const double ly = sy - double(y0), lx = sx - double(x0);
  return (1 - ly) * ((1 - lx) * in(b, y0, x0, c) + lx * in(b, y0, x1, c)) +
         ly * ((1 - lx) * in(b, y1, x0, c) + lx * in(b, y1, x1, c));
}
}  // namespace

TEST_CASE("forward matches the direct formula for odd and down-sampling sizes, any thread count") {
  const index_t sizes[][4] = {
      {3, 5, 12, 20}, {4, 4, 16, 16}, {5, 3, 7, 11}, {7, 6, 3, 4}, {1, 1, 3, 2}};
  for (const auto& s : sizes) {
    tensor<double, 4> in = tensor<double, 4>::from_shape({2, s[0], s[1], 3});
    auto v = test::uniform_vector<double>(in.size(), 5);
    std::copy(v.begin(), v.end(), in.begin());
    for (int threads : {1, 2}) {
      tensor<double, 4> out = tensor<double, 4>::from_shape({2, s[2], s[3], 3});
      upsample_bilinear_forward(out, in, threads);
      for (index_t b = 0; b < 2; ++b)
        for (index_t y = 0; y < s[2]; ++y)
          for (index_t x = 0; x < s[3]; ++x)
            for (index_t c = 0; c < 3; ++c)
              CHECK(out(b, y, x, c) ==
                    doctest::Approx(ref_value(in, b, y, x, c, s[2], s[3])).epsilon(1e-12));
    }
  }
}

TEST_CASE("backward equals central finite differences and adds into din (double)") {
  const index_t sizes[][4] = {{3, 5, 12, 20}, {5, 3, 7, 11}, {6, 6, 4, 3}};
  for (const auto& s : sizes) {
    tensor<double, 4> in = tensor<double, 4>::from_shape({2, s[0], s[1], 2});
    tensor<double, 4> wt = tensor<double, 4>::from_shape({2, s[2], s[3], 2});
    auto v = test::uniform_vector<double>(in.size(), 8),
         u = test::uniform_vector<double>(wt.size(), 9);
    std::copy(v.begin(), v.end(), in.begin());
    std::copy(u.begin(), u.end(), wt.begin());
    tensor<double, 4> din = xt::zeros<double>(in.shape());
    upsample_bilinear_backward(din, wt, 2);
    auto g = test::numeric_gradient(
        [&] {
          tensor<double, 4> o = tensor<double, 4>::from_shape(wt.shape());
          upsample_bilinear_forward(o, in, 1);
          double l = 0;
          for (index_t i = 0; i < o.size(); ++i) l += o.data()[i] * wt.data()[i];
          return l;
        },
        in.data(), in.size());
    CHECK(test::relative_error(din, g) < 1e-6);
    const tensor<double, 4> once = din;
    upsample_bilinear_backward(din, wt, 1);
    for (index_t i = 0; i < din.size(); ++i)
      CHECK(din.data()[i] == doctest::Approx(2 * once.data()[i]));
  }
}

TEST_CASE("mismatched batch or channels throw with both shapes") {
  tensor<float, 4> in = xt::zeros<float>({2, 3, 3, 4});
  tensor<float, 4> out = xt::zeros<float>({2, 6, 6, 5});
  CHECK_THROWS_WITH_AS(upsample_bilinear_forward(out, in), doctest::Contains("(2, 3, 3, 4)"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(upsample_bilinear_backward(in, out), doctest::Contains("(2, 6, 6, 5)"),
                       std::invalid_argument);
}

}  // namespace test_nn_upsample
