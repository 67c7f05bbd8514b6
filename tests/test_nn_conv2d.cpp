// SPDX-License-Identifier: Apache-2.0
// Tests for zss/nn/conv2d.hpp: forward against a direct loop, backward against finite differences.
#include <doctest/doctest.h>

#include <cmath>

#include "support/conv_reference.hpp"
#include "support/gradcheck.hpp"
#include "support/random_data.hpp"
#include "zss/nn/conv2d.hpp"

namespace test_nn_conv2d {

using namespace zss;

namespace {
struct conv_case {
  index_t h, w, c, co, kh, kw, s, p;
};
// Odd sizes, every kernel/stride/padding mix the encoder and a user may need; two are large
// enough in K for several im2col tiles (tile rows < P); the last three have C_out and K in whole
// SIMD batches at every width, so they run the register-blocked kernel (nn/detail/gemm_kernel.hpp)
// where the others fall back to Eigen.
const conv_case cases[] = {
    {7, 5, 3, 4, 3, 3, 1, 1},   {8, 8, 3, 5, 3, 3, 2, 1},  {9, 7, 2, 3, 5, 5, 1, 2},
    {6, 9, 4, 6, 1, 1, 1, 0},   {7, 7, 3, 2, 1, 1, 2, 0},  {5, 6, 2, 3, 2, 2, 2, 0},
    {11, 10, 3, 4, 3, 3, 3, 0}, {4, 4, 5, 2, 4, 4, 1, 1},  {10, 9, 64, 3, 3, 3, 1, 1},
    {9, 9, 40, 2, 3, 3, 1, 1},  {9, 8, 8, 16, 3, 3, 1, 1}, {6, 6, 8, 32, 3, 3, 2, 1},
    {6, 5, 16, 48, 1, 1, 1, 0}};

template <class T>
tensor<T, 4> random4(index_t a, index_t b, index_t c, index_t d, std::uint64_t seed) {
  tensor<T, 4> t = tensor<T, 4>::from_shape({a, b, c, d});
  auto v = test::uniform_vector<T>(t.size(), seed);
  std::copy(v.begin(), v.end(), t.begin());
  return t;
}
}  // namespace

TEST_CASE_TEMPLATE("forward equals the direct convolution; thread count does not change it", T,
                   float, double) {
  for (const auto& k : cases) {
    CAPTURE(k.h);
    CAPTURE(k.w);
    CAPTURE(k.c);
    CAPTURE(k.kh);
    CAPTURE(k.s);
    CAPTURE(k.p);
    const conv2d_geometry g{k.h, k.w, k.c, k.kh, k.kw, k.s, k.s, k.p, k.p};
    const index_t B = 3;
    auto x = random4<T>(B, k.h, k.w, k.c, 1);
    auto wv = test::uniform_vector<T>(g.patch() * k.co, 2);
    auto bv = test::uniform_vector<T>(k.co, 3);
    tensor<T, 4> out1 = tensor<T, 4>::from_shape({B, g.out_h(), g.out_w(), k.co}), out2 = out1;
    conv2d_cache<T> cache;
    const matrix_ref<const T> W(wv.data(), g.patch(), k.co);
    conv2d_forward(out1, cache, x, W, bv.data(), g, 1);
    conv2d_forward(out2, cache, x, W, bv.data(), g, 2);
    CHECK(out1 == out2);
    conv2d_cache<T>
        tiny_tiles;  // many tiles of 5 pixels (and a shorter one): same values up to rounding
    tiny_tiles.tile_bytes = sizeof(T) * g.patch() * 5;
    conv2d_forward(out2, tiny_tiles, x, W, bv.data(), g, 2);
    const double tol = std::is_same_v<T, float> ? 2e-5 : 1e-12;
    for (index_t b = 0; b < B; ++b) {
      index_t OH = 0, OW = 0;
      auto ref = test::conv2d_direct(x.data() + b * k.h * k.w * k.c, k.h, k.w, k.c, wv.data(),
                                     bv.data(), k.co, k.kh, k.kw, k.s, k.s, k.p, k.p, OH, OW);
      REQUIRE(OH == g.out_h());
      REQUIRE(OW == g.out_w());
      double scale = 0;
      for (double r : ref) scale = std::max(scale, std::abs(r));
      for (index_t i = 0; i < ref.size(); ++i) {
        CHECK(std::abs(double(out1.data()[b * ref.size() + i]) - ref[i]) <= tol * (1 + scale));
        CHECK(std::abs(double(out2.data()[b * ref.size() + i]) - ref[i]) <= tol * (1 + scale));
      }
    }
  }
}

TEST_CASE_TEMPLATE("forward and backward equal plain loops exactly on integer-valued inputs", T,
                   float, double) {
  // Every partial sum is a small integer, so the register-blocked kernel (SSE2, AVX2 or AVX-512,
  // whichever this build targets), Eigen and any tiling must give the loops' values bitwise.
  for (const auto& k : cases) {
    CAPTURE(k.h);
    CAPTURE(k.c);
    CAPTURE(k.co);
    CAPTURE(k.kh);
    CAPTURE(k.s);
    const conv2d_geometry g{k.h, k.w, k.c, k.kh, k.kw, k.s, k.s, k.p, k.p};
    const index_t B = 2, K = g.patch(), OH = g.out_h(), OW = g.out_w(), C = k.c, Co = k.co;
    tensor<T, 4> x = tensor<T, 4>::from_shape({B, k.h, k.w, C});
    tensor<T, 4> dy = tensor<T, 4>::from_shape({B, OH, OW, Co});
    const auto xv = test::integer_vector<T>(x.size(), 30, 4);
    const auto dyv = test::integer_vector<T>(dy.size(), 31, 4);
    std::copy(xv.begin(), xv.end(), x.begin());
    std::copy(dyv.begin(), dyv.end(), dy.begin());
    const auto wv = test::integer_vector<T>(K * Co, 32, 4), bv = test::integer_vector<T>(Co, 33, 4);
    // Plain loops in double: out, dX, dW, db.
    std::vector<double> out(dy.size(), 0.0), dx(x.size(), 0.0), dw(K * Co, 0.0), db(Co, 0.0);
    for (index_t b = 0; b < B; ++b)
      for (index_t oy = 0; oy < OH; ++oy)
        for (index_t ox = 0; ox < OW; ++ox)
          for (index_t o = 0; o < Co; ++o) {
            const index_t at = ((b * OH + oy) * OW + ox) * Co + o;
            const double gy = double(dy.data()[at]);
            double acc = double(bv[o]);
            db[o] += gy;
            for (index_t ky = 0; ky < k.kh; ++ky)
              for (index_t kx = 0; kx < k.kw; ++kx) {
                // index_t is unsigned: test the padding before subtracting it
                if (oy * k.s + ky < k.p || ox * k.s + kx < k.p) continue;
                const index_t iy = oy * k.s + ky - k.p, ix = ox * k.s + kx - k.p;
                if (iy >= k.h || ix >= k.w) continue;
                for (index_t c = 0; c < C; ++c) {
                  const index_t xi = ((b * k.h + iy) * k.w + ix) * C + c,
                                wi = ((ky * k.kw + kx) * C + c) * Co + o;
                  acc += double(x.data()[xi]) * double(wv[wi]);
                  dx[xi] += double(wv[wi]) * gy;
                  dw[wi] += double(x.data()[xi]) * gy;
                }
              }
            out[at] = acc;
          }
    conv2d_cache<T> cache;
    const matrix_ref<const T> W(wv.data(), K, Co);
    tensor<T, 4> y = tensor<T, 4>::from_shape(dy.shape());
    conv2d_forward(y, cache, x, W, bv.data(), g, 2);
    tensor<T, 4> gx = xt::zeros<T>(x.shape());
    std::vector<T> gw(K * Co, T(0)), gb(Co, T(0));
    conv2d_backward(&gx, matrix_ref<T>(gw.data(), K, Co), gb.data(), dy, cache, x, W, g, 2);
    for (index_t i = 0; i < y.size(); ++i) REQUIRE(double(y.data()[i]) == out[i]);
    for (index_t i = 0; i < gx.size(); ++i) REQUIRE(double(gx.data()[i]) == dx[i]);
    for (index_t i = 0; i < K * Co; ++i) REQUIRE(double(gw[i]) == dw[i]);
    for (index_t i = 0; i < Co; ++i) REQUIRE(double(gb[i]) == db[i]);
  }
}

TEST_CASE("backward (input, weight, bias) equals central finite differences (double)") {
  for (const auto& k : cases) {
    if (k.c == 64)
      continue;  // forward-only case (the 40-channel one covers several tiles in double)
    CAPTURE(k.h);
    CAPTURE(k.w);
    CAPTURE(k.c);
    CAPTURE(k.kh);
    CAPTURE(k.s);
    CAPTURE(k.p);
    const conv2d_geometry g{k.h, k.w, k.c, k.kh, k.kw, k.s, k.s, k.p, k.p};
    const index_t B = 2, K = g.patch();
    conv2d_cache<double> cache;
    if (k.c == 40) {  // small tiles: several per image, forward and backward
      cache.tile_bytes = 16 * 1024;
      REQUIRE(conv2d_tile_rows<double>(g, cache.tile_bytes) * 2 < g.out_pixels());
    }
    auto x = random4<double>(B, k.h, k.w, k.c, 10);
    auto wv = test::uniform_vector<double>(K * k.co, 11);
    auto bv = test::uniform_vector<double>(k.co, 12);
    auto r = random4<double>(B, g.out_h(), g.out_w(), k.co, 13);  // L = Σ out ⊙ r, so dout = r
    const matrix_ref<const double> W(wv.data(), K, k.co);
    auto loss = [&] {
      tensor<double, 4> o = tensor<double, 4>::from_shape(r.shape());
      conv2d_forward(o, cache, x, W, bv.data(), g, 1);
      double l = 0;
      for (index_t i = 0; i < o.size(); ++i) l += o.data()[i] * r.data()[i];
      return l;
    };
    tensor<double, 4> dx = xt::zeros<double>(x.shape());
    std::vector<double> dw(K * k.co, 0.0), db(k.co, 0.0);
    conv2d_backward(&dx, matrix_ref<double>(dw.data(), K, k.co), db.data(), r, cache, x, W, g, 2);
    CHECK(test::relative_error(dx, test::numeric_gradient(loss, x.data(), x.size())) < 1e-6);
    CHECK(test::relative_error(dw, test::numeric_gradient(loss, wv.data(), wv.size())) < 1e-6);
    CHECK(test::relative_error(db, test::numeric_gradient(loss, bv.data(), bv.size())) < 1e-6);
    // Adds into: a second call doubles everything; no input gradient when din is null.
    auto dx1 = dx;
    auto dw1 = dw;
    conv2d_backward(&dx, matrix_ref<double>(dw.data(), K, k.co), db.data(), r, cache, x, W, g, 1);
    for (index_t i = 0; i < dx.size(); ++i)
      CHECK(dx.data()[i] == doctest::Approx(2 * dx1.data()[i]));
    conv2d_backward<double>(nullptr, matrix_ref<double>(dw.data(), K, k.co), nullptr, r, cache, x,
                            W, g, 1);
    for (index_t i = 0; i < dw.size(); ++i) CHECK(dw[i] == doctest::Approx(3 * dw1[i]));
  }
}

TEST_CASE_TEMPLATE(
    "weight gradients: deterministic per thread count, equal up to rounding across counts", T,
    float, double) {
  const conv2d_geometry g = conv2d_geometry::square(12, 12, 8, 3, 1, 1);
  const index_t B = 5, K = g.patch(), Co = 16;
  auto x = random4<T>(B, 12, 12, 8, 20);
  auto dy = random4<T>(B, 12, 12, Co, 21);
  auto wv = test::uniform_vector<T>(K * Co, 22);
  conv2d_cache<T> cache;
  auto grads = [&](int threads) {
    std::vector<T> dw(K * Co + Co, T(0));
    tensor<T, 4> dx = xt::zeros<T>(x.shape());
    conv2d_backward(&dx, matrix_ref<T>(dw.data(), K, Co), dw.data() + K * Co, dy, cache, x,
                    matrix_ref<const T>(wv.data(), K, Co), g, threads);
    return std::make_pair(dw, dx);
  };
  const auto [w1, x1] = grads(1);
  const auto [w2, x2] = grads(2);
  const auto [w2b, x2b] = grads(2);
  CHECK(w2 == w2b);  // same thread count: bitwise
  CHECK(x1 == x2);   // input gradients are per image: bitwise across counts
  CHECK(test::relative_error(w1, w2) < (std::is_same_v<T, float> ? 1e-6 : 1e-14));
}

TEST_CASE("shape mismatches throw with the shapes in the message") {
  const auto g = conv2d_geometry::square(6, 6, 3, 3, 1, 1);
  tensor<float, 4> x = xt::zeros<float>({2, 6, 6, 3});
  std::vector<float> w(27 * 4), b(4);
  conv2d_cache<float> cache;
  tensor<float, 4> out = xt::zeros<float>({2, 6, 5, 4});
  CHECK_THROWS_WITH_AS(
      conv2d_forward(out, cache, x, matrix_ref<const float>(w.data(), 27, 4), b.data(), g),
      doctest::Contains("out has shape (2, 6, 5, 4), expected (2, 6, 6, 4)"),
      std::invalid_argument);
  tensor<float, 4> out_ok = xt::zeros<float>({2, 6, 6, 4});
  CHECK_THROWS_WITH_AS(
      conv2d_forward(out_ok, cache, x, matrix_ref<const float>(w.data(), 26, 4), b.data(), g),
      doctest::Contains("weight rows (26) must equal kh*kw*C (27)"), std::invalid_argument);
  tensor<float, 4> x5 = xt::zeros<float>({2, 6, 6, 5});
  CHECK_THROWS_WITH_AS(
      conv2d_forward(out_ok, cache, x5, matrix_ref<const float>(w.data(), 27, 4), b.data(), g),
      doctest::Contains("in.shape[3] (C) (5)"), std::invalid_argument);
  tensor<float, 4> dx = xt::zeros<float>({2, 6, 6, 2});
  CHECK_THROWS_WITH_AS(conv2d_backward(&dx, matrix_ref<float>(w.data(), 27, 4), b.data(), out_ok,
                                       cache, x, matrix_ref<const float>(w.data(), 27, 4), g),
                       doctest::Contains("din has shape (2, 6, 6, 2)"), std::invalid_argument);
}

}  // namespace test_nn_conv2d
