// SPDX-License-Identifier: Apache-2.0
// Tests for zss/nn/im2col.hpp: columns against a direct gather, col2im as the exact adjoint.
#include <doctest/doctest.h>

#include "support/random_data.hpp"
#include "zss/nn/im2col.hpp"

namespace test_nn_im2col {

using namespace zss;

namespace {
struct geo_case {
  index_t h, w, c, kh, kw, sh, sw, ph, pw;
};
const geo_case geo_cases[] = {
    {5, 7, 3, 3, 3, 1, 1, 1, 1}, {6, 6, 2, 3, 3, 2, 2, 1, 1}, {7, 5, 1, 5, 5, 1, 1, 2, 2},
    {4, 9, 4, 1, 1, 1, 1, 0, 0}, {9, 4, 3, 2, 3, 3, 2, 0, 1}, {3, 3, 5, 3, 3, 1, 1, 0, 0},
    {1, 1, 2, 3, 3, 1, 1, 1, 1}, {8, 7, 3, 4, 2, 2, 3, 2, 1}, {5, 5, 2, 1, 1, 2, 2, 0, 0}};
}  // namespace

TEST_CASE_TEMPLATE("im2col equals a direct gather with zero padding, for any tile", T, float,
                   double) {
  for (const auto& k : geo_cases) {
    const conv2d_geometry g{k.h, k.w, k.c, k.kh, k.kw, k.sh, k.sw, k.ph, k.pw};
    CAPTURE(k.h);
    CAPTURE(k.w);
    CAPTURE(k.kh);
    CAPTURE(k.kw);
    CAPTURE(k.sh);
    CAPTURE(k.ph);
    CAPTURE(k.pw);
    g.validate("test");
    tensor<T, 3> img = tensor<T, 3>::from_shape({k.h, k.w, k.c});
    auto v = test::integer_vector<T>(img.size(), 7);
    std::copy(v.begin(), v.end(), img.begin());
    const auto col = im2col(img, g);
    const index_t OH = (k.h + 2 * k.ph - k.kh) / k.sh + 1, OW = (k.w + 2 * k.pw - k.kw) / k.sw + 1;
    REQUIRE(col.shape()[0] == OH * OW);
    REQUIRE(col.shape()[1] == k.kh * k.kw * k.c);
    for (index_t oy = 0; oy < OH; ++oy)
      for (index_t ox = 0; ox < OW; ++ox)
        for (index_t ky = 0; ky < k.kh; ++ky)
          for (index_t kx = 0; kx < k.kw; ++kx)
            for (index_t c = 0; c < k.c; ++c) {
              const long iy = long(oy * k.sh + ky) - long(k.ph),
                         ix = long(ox * k.sw + kx) - long(k.pw);
              const T expect = (iy < 0 || ix < 0 || iy >= long(k.h) || ix >= long(k.w))
                                   ? T(0)
                                   : img(index_t(iy), index_t(ix), c);
              CHECK(col(oy * OW + ox, (ky * k.kw + kx) * k.c + c) == expect);
            }
    // A tile [p0, p1) gives the same rows.
    if (OH * OW > 2) {
      std::vector<T> tile((OH * OW - 2) * g.patch());
      im2col(tile.data(), img.data(), g, 1, OH * OW - 1);
      for (index_t i = 0; i < tile.size(); ++i) CHECK(tile[i] == col.data()[g.patch() + i]);
    }
  }
}

TEST_CASE_TEMPLATE("col2im_add is the adjoint of im2col and adds into its output", T, float,
                   double) {
  for (const auto& k : geo_cases) {
    const conv2d_geometry g{k.h, k.w, k.c, k.kh, k.kw, k.sh, k.sw, k.ph, k.pw};
    const index_t P = g.out_pixels(), K = g.patch(), N = k.h * k.w * k.c;
    auto x = test::integer_vector<T>(N, 11), y = test::integer_vector<T>(P * K, 12);
    std::vector<T> col(P * K);
    im2col(col.data(), x.data(), g, 0, P);
    std::vector<T> back(N, T(1));
    col2im_add(back.data(), y.data(), g, 0, P);
    double lhs = 0, rhs = 0;
    for (index_t i = 0; i < P * K; ++i) lhs += double(col[i]) * double(y[i]);
    for (index_t i = 0; i < N; ++i)
      rhs += double(x[i]) * (double(back[i]) - 1.0);  // minus the initial 1s
    CHECK(lhs == rhs);                                // integer data: exact
    // Direct scatter reference.
    std::vector<double> ref(N, 1.0);
    for (index_t p = 0; p < P; ++p)
      for (index_t ky = 0; ky < k.kh; ++ky)
        for (index_t kx = 0; kx < k.kw; ++kx) {
          const long iy = long((p / g.out_w()) * k.sh + ky) - long(k.ph);
          const long ix = long((p % g.out_w()) * k.sw + kx) - long(k.pw);
          if (iy < 0 || ix < 0 || iy >= long(k.h) || ix >= long(k.w)) continue;
          for (index_t c = 0; c < k.c; ++c)
            ref[(index_t(iy) * k.w + index_t(ix)) * k.c + c] +=
                double(y[p * K + (ky * k.kw + kx) * k.c + c]);
        }
    for (index_t i = 0; i < N; ++i) CHECK(double(back[i]) == ref[i]);
  }
}

TEST_CASE("invalid geometries and image shapes are rejected with the shapes in the message") {
  const conv2d_geometry bad{2, 2, 1, 5, 5, 1, 1, 1, 1};  // padded 4x4 < 5x5 kernel
  CHECK_THROWS_WITH_AS(bad.validate("conv"), doctest::Contains("input 2x2x1, kernel 5x5"),
                       std::invalid_argument);
  const conv2d_geometry zero_stride{4, 4, 1, 3, 3, 0, 1, 1, 1};
  CHECK_THROWS_AS(zero_stride.validate("conv"), std::invalid_argument);
  const auto g = conv2d_geometry::square(4, 4, 3, 3, 1, 1);
  tensor<float, 3> img = xt::zeros<float>({4, 5, 3});
  CHECK_THROWS_WITH_AS(im2col(img, g), doctest::Contains("(4, 5, 3)"), std::invalid_argument);
}

}  // namespace test_nn_im2col
