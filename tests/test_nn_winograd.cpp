// SPDX-License-Identifier: Apache-2.0
// Tests for zss/nn/winograd.hpp: F(2×2, 3×3) against the direct convolution (forward, the input
// gradient's flipped filters and the weight gradient), exactness on integer data, block-size
// independence, the epilogues and the eligibility rule.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "support/conv_reference.hpp"
#include "support/random_data.hpp"
#include "zss/core/aligned.hpp"
#include "zss/core/random.hpp"
#include "zss/nn/winograd.hpp"

namespace test_nn_winograd {

using namespace zss;

namespace {
struct shape {
  index_t h, w, c, co;
};
// Odd and even sizes (partial tiles at the right and bottom edges), 1-pixel-wide images, and
// widths that are and are not whole SIMD batches.
const shape shapes[] = {{7, 5, 8, 8},  {8, 8, 8, 16},  {9, 6, 12, 20}, {1, 9, 8, 8},
                        {6, 1, 16, 8}, {4, 4, 24, 40}, {11, 10, 8, 24}};

template <class T>
struct layer {
  conv2d_geometry g;
  index_t co;
  aligned_vector<T> x, w, bias;
  layer(const shape& s, std::uint64_t seed)
      : g(conv2d_geometry::square(s.h, s.w, s.c, 3, 1, 1)), co(s.co) {
    x = test::uniform_vector<T>(s.h * s.w * s.c, seed);
    w = test::uniform_vector<T>(9 * s.c * s.co, seed + 1);
    bias = test::uniform_vector<T>(s.co, seed + 2);
  }
  // out (H × W × co) by Winograd with `block` tiles per block.
  std::vector<T> run(const T* input, const T* filters, index_t cin, index_t cout, bool flip,
                     const T* b, bool relu, bool accumulate, std::vector<T> out,
                     index_t block = 0) const {
    const auto gg = conv2d_geometry::square(g.in_h, g.in_w, cin, 3, 1, 1);
    if (block == 0) block = winograd_block_tiles<T>(gg, cout);
    aligned_vector<T> U(winograd_weight_size(cin, cout)), Up(U.size()),
        ws(winograd_workspace_size(gg, cout, block));
    detail::winograd_pack_weight(Up.data(), U.data(), filters, flip ? cout : cin, flip ? cin : cout,
                                 flip);
    detail::winograd_conv_image(out.data(), input, Up.data(), gg, cout, b, relu, accumulate,
                                ws.data(), block);
    return out;
  }
};

template <class T>
double tolerance(double scale) {
  return (std::is_same_v<T, float> ? 2e-6 : 1e-14) * (1 + scale);
}
}  // namespace

TEST_CASE_TEMPLATE("forward equals the direct convolution, with bias and ReLU", T, float, double) {
  for (const auto& s : shapes) {
    CAPTURE(s.h);
    CAPTURE(s.w);
    CAPTURE(s.c);
    CAPTURE(s.co);
    layer<T> L(s, s.h * 100 + s.c);
    REQUIRE(winograd_suits<T>(L.g, s.co));
    std::size_t oh = 0, ow = 0;
    const auto ref = test::conv2d_direct(L.x.data(), s.h, s.w, s.c, L.w.data(), L.bias.data(), s.co,
                                         3, 3, 1, 1, 1, 1, oh, ow);
    REQUIRE(oh == s.h);
    REQUIRE(ow == s.w);
    double scale = 0;
    for (double r : ref) scale = std::max(scale, std::abs(r));
    const std::vector<T> zero(s.h * s.w * s.co, T(0));
    const auto y =
        L.run(L.x.data(), L.w.data(), s.c, s.co, false, L.bias.data(), false, false, zero);
    const auto yr =
        L.run(L.x.data(), L.w.data(), s.c, s.co, false, L.bias.data(), true, false, zero);
    for (std::size_t i = 0; i < ref.size(); ++i) {
      CHECK(std::abs(double(y[i]) - ref[i]) <= tolerance<T>(scale));
      CHECK(yr[i] == std::max(y[i], T(0)));
    }
  }
}

TEST_CASE_TEMPLATE("flipped filters give the input gradient of the convolution", T, float, double) {
  for (const auto& s : shapes) {
    CAPTURE(s.h);
    CAPTURE(s.c);
    CAPTURE(s.co);
    layer<T> L(s, s.w * 10 + s.co);
    const auto dy = test::uniform_vector<T>(s.h * s.w * s.co, 77);
    // dX(y, x, c) = Σ_{a,b,o} dY(y + 1 − a, x + 1 − b, o) · w(a, b, c, o): plain loops.
    std::vector<double> ref(s.h * s.w * s.c, 0.0);
    for (index_t y = 0; y < s.h; ++y)
      for (index_t x = 0; x < s.w; ++x)
        for (index_t c = 0; c < s.c; ++c)
          for (index_t a = 0; a < 3; ++a)
            for (index_t b = 0; b < 3; ++b) {
              const long oy = long(y) + 1 - long(a), ox = long(x) + 1 - long(b);
              if (oy < 0 || ox < 0 || oy >= long(s.h) || ox >= long(s.w)) continue;
              for (index_t o = 0; o < s.co; ++o)
                ref[(y * s.w + x) * s.c + c] +=
                    double(dy[(index_t(oy) * s.w + index_t(ox)) * s.co + o]) *
                    double(L.w[((a * 3 + b) * s.c + c) * s.co + o]);
            }
    double scale = 0;
    for (double r : ref) scale = std::max(scale, std::abs(r));
    // Accumulates into what is there.
    const auto u = test::uniform_vector<T>(s.h * s.w * s.c, 78);
    const std::vector<T> before(u.begin(), u.end());
    const auto dx = L.run(dy.data(), L.w.data(), s.co, s.c, true, nullptr, false, true, before);
    for (std::size_t i = 0; i < ref.size(); ++i)
      CHECK(std::abs(double(dx[i]) - (ref[i] + double(before[i]))) <= tolerance<T>(scale));
  }
}

TEST_CASE("exact on integers whose transforms stay integers (even filters), float") {
  // G g Gᵀ of even integers is a multiple of ½·½·2·… — with filters in 4ℤ every U is an integer,
  // every V, M and output too (well below 2^24), so Winograd and the direct sum agree exactly.
  rng r(5);
  for (const auto& s : shapes) {
    CAPTURE(s.h);
    CAPTURE(s.c);
    layer<float> L(s, 1);
    for (auto& v : L.x) v = float(std::int64_t(r.below(7)) - 3);
    for (auto& v : L.w) v = float(4 * (std::int64_t(r.below(5)) - 2));
    for (auto& v : L.bias) v = float(std::int64_t(r.below(9)) - 4);
    std::size_t oh = 0, ow = 0;
    const auto ref = test::conv2d_direct(L.x.data(), s.h, s.w, s.c, L.w.data(), L.bias.data(), s.co,
                                         3, 3, 1, 1, 1, 1, oh, ow);
    const auto y = L.run(L.x.data(), L.w.data(), s.c, s.co, false, L.bias.data(), false, false,
                         std::vector<float>(ref.size(), 0.f));
    for (std::size_t i = 0; i < ref.size(); ++i) CHECK(double(y[i]) == ref[i]);
  }
}

TEST_CASE_TEMPLATE("bitwise the same for every block size", T, float, double) {
  const shape s{9, 7, 16, 24};
  layer<T> L(s, 3);
  const std::vector<T> zero(s.h * s.w * s.co, T(0));
  const auto all = L.run(L.x.data(), L.w.data(), s.c, s.co, false, L.bias.data(), true, false, zero,
                         winograd_tiles(L.g));
  for (index_t block : {1, 2, 5, 7}) {
    CAPTURE(block);
    CHECK(L.run(L.x.data(), L.w.data(), s.c, s.co, false, L.bias.data(), true, false, zero,
                block) == all);
  }
  // The default block of a small budget splits the image into balanced blocks.
  CHECK(winograd_block_tiles<T>(L.g, s.co, 16 * (16 + 24) * sizeof(T) * 7) == 7);  // 20 tiles
  CHECK(winograd_block_tiles<T>(L.g, s.co, 16 * (16 + 24) * sizeof(T) * 6) == 5);  // 4 blocks
}

namespace {
// dw (3 × 3 × C × C_out) by `winograd_weight_grad_image`, added to `dw0`, `block` tiles per block.
template <class T>
std::vector<T> weight_grad(const shape& s, const T* x, const T* dy, std::vector<T> dw0,
                           index_t block = 0) {
  const auto g = conv2d_geometry::square(s.h, s.w, s.c, 3, 1, 1);
  if (block == 0) block = winograd_weight_grad_block_tiles<T>(g, s.co);
  aligned_vector<T> ws(winograd_weight_grad_workspace_size(g, s.co, block), T(-7));
  detail::winograd_weight_grad_image(dw0.data(), dy, x, g, s.co, ws.data(), block);
  return dw0;
}

// dw(a, b, c, o) = Σ_{y,x} x(y + a − 1, x + b − 1, c) · dY(y, x, o) (zero padding), in double;
// `mag` gets the same sum of |terms| per element (the rounding scale).
template <class T>
std::vector<double> weight_grad_direct(const shape& s, const T* x, const T* dy,
                                       std::vector<double>& mag) {
  std::vector<double> ref(9 * s.c * s.co, 0.0);
  mag.assign(ref.size(), 0.0);
  for (index_t a = 0; a < 3; ++a)
    for (index_t b = 0; b < 3; ++b)
      for (index_t y = 0; y < s.h; ++y)
        for (index_t xx = 0; xx < s.w; ++xx) {
          const long iy = long(y) + long(a) - 1, ix = long(xx) + long(b) - 1;
          if (iy < 0 || ix < 0 || iy >= long(s.h) || ix >= long(s.w)) continue;
          for (index_t c = 0; c < s.c; ++c)
            for (index_t o = 0; o < s.co; ++o) {
              const double t = double(x[(index_t(iy) * s.w + index_t(ix)) * s.c + c]) *
                               double(dy[(y * s.w + xx) * s.co + o]);
              ref[((a * 3 + b) * s.c + c) * s.co + o] += t;
              mag[((a * 3 + b) * s.c + c) * s.co + o] += std::abs(t);
            }
        }
  return ref;
}
}  // namespace

TEST_CASE_TEMPLATE("weight gradient equals the direct sum over pixels, and adds into dw", T, float,
                   double) {
  for (const auto& s : shapes) {
    CAPTURE(s.h);
    CAPTURE(s.w);
    CAPTURE(s.c);
    CAPTURE(s.co);
    const auto x = test::uniform_vector<T>(s.h * s.w * s.c, 90 + s.h);
    const auto dy = test::uniform_vector<T>(s.h * s.w * s.co, 91 + s.w);
    const auto before = test::uniform_vector<T>(9 * s.c * s.co, 92);
    std::vector<double> mag;
    const auto ref = weight_grad_direct(s, x.data(), dy.data(), mag);
    const auto dw =
        weight_grad<T>(s, x.data(), dy.data(), std::vector<T>(before.begin(), before.end()));
    // The transforms add a few roundings per term: bounded by a multiple of Σ|terms|.
    const double eps = std::is_same_v<T, float> ? 1e-6 : 1e-15;
    for (std::size_t i = 0; i < ref.size(); ++i)
      CHECK(std::abs(double(dw[i]) - (ref[i] + double(before[i]))) <=
            16 * eps * (mag[i] + 1 + std::abs(double(before[i]))));
  }
}

TEST_CASE("weight gradient: exact on integers (every transformed value a multiple of ¼)") {
  rng r(6);
  for (const auto& s : shapes) {
    CAPTURE(s.h);
    CAPTURE(s.c);
    std::vector<float> x(s.h * s.w * s.c), dy(s.h * s.w * s.co);
    for (auto& v : x) v = float(std::int64_t(r.below(7)) - 3);
    for (auto& v : dy) v = float(std::int64_t(r.below(9)) - 4);
    std::vector<double> mag;
    const auto ref = weight_grad_direct(s, x.data(), dy.data(), mag);
    const auto dw = weight_grad<float>(s, x.data(), dy.data(), std::vector<float>(ref.size(), 0.f));
    for (std::size_t i = 0; i < ref.size(); ++i) CHECK(double(dw[i]) == ref[i]);
  }
}

TEST_CASE_TEMPLATE("weight gradient: bitwise the same for every block size", T, float, double) {
  // Blocks continue each dU element's FMA chain over the tiles in order, so the split is exact.
  const shape s{9, 7, 16, 24};
  const auto x = test::uniform_vector<T>(s.h * s.w * s.c, 93);
  const auto dy = test::uniform_vector<T>(s.h * s.w * s.co, 94);
  const std::vector<T> zero(9 * s.c * s.co, T(0));
  const auto g = conv2d_geometry::square(s.h, s.w, s.c, 3, 1, 1);
  const auto all = weight_grad<T>(s, x.data(), dy.data(), zero, winograd_tiles(g));
  for (index_t block : {1, 3, 7}) {
    CAPTURE(block);
    CHECK(weight_grad<T>(s, x.data(), dy.data(), zero, block) == all);
  }
}

TEST_CASE_TEMPLATE("weight gradient summed over images: dU accumulated, transformed once", T, float,
                   double) {
  // What a thread of the encoder's backward does with its images: dU summed over them by
  // winograd_weight_grad_accumulate (the first call overwrites whatever dU holds), then one
  // Gᵀ dU G into dw. Equals the direct sum of the images' gradients; exact on integers.
  rng r(11);
  for (const auto& s : {shapes[0], shapes[2], shapes[5]}) {
    CAPTURE(s.h);
    CAPTURE(s.c);
    const auto g = conv2d_geometry::square(s.h, s.w, s.c, 3, 1, 1);
    const index_t block = winograd_weight_grad_block_tiles<T>(g, s.co);
    aligned_vector<T> ws(winograd_weight_grad_workspace_size(g, s.co, block), T(-7));
    aligned_vector<T> dU(16 * s.c * s.co, T(123));  // garbage: the first call must overwrite it
    for (bool integers : {true, false}) {
      std::vector<double> ref(9 * s.c * s.co, 0.0), mag_all(ref.size(), 0.0);
      for (int image = 0; image < 3; ++image) {
        std::vector<T> x(s.h * s.w * s.c), dy(s.h * s.w * s.co);
        if (integers) {
          for (auto& v : x) v = T(std::int64_t(r.below(7)) - 3);
          for (auto& v : dy) v = T(std::int64_t(r.below(9)) - 4);
        } else {
          const auto ux = test::uniform_vector<T>(x.size(), 200 + image);
          const auto ud = test::uniform_vector<T>(dy.size(), 300 + image);
          std::copy(ux.begin(), ux.end(), x.begin());
          std::copy(ud.begin(), ud.end(), dy.begin());
        }
        std::vector<double> mag;
        const auto one = weight_grad_direct(s, x.data(), dy.data(), mag);
        for (std::size_t i = 0; i < ref.size(); ++i) ref[i] += one[i], mag_all[i] += mag[i];
        detail::winograd_weight_grad_accumulate(dU.data(), dy.data(), x.data(), g, s.co, ws.data(),
                                                block, image > 0);
      }
      std::vector<T> dw(ref.size(), T(0));
      detail::winograd_weight_gradient_transform(dw.data(), static_cast<const T*>(dU.data()), s.c,
                                                 s.co);
      const double eps = std::is_same_v<T, float> ? 1e-6 : 1e-15;
      for (std::size_t i = 0; i < ref.size(); ++i) {
        if (integers)
          CHECK(double(dw[i]) == ref[i]);
        else
          CHECK(std::abs(double(dw[i]) - ref[i]) <= 16 * eps * (mag_all[i] + 1));
      }
    }
  }
}

TEST_CASE("eligibility: 3×3, stride 1, padding 1, at least 8 channels in and out") {
  const auto g = conv2d_geometry::square(8, 8, 8, 3, 1, 1);
  CHECK(winograd_suits<float>(g, 8));
  CHECK_FALSE(winograd_suits<float>(g, 7));
  CHECK_FALSE(winograd_suits<float>(conv2d_geometry::square(8, 8, 3, 3, 1, 1), 32));
  CHECK_FALSE(winograd_suits<float>(conv2d_geometry::square(8, 8, 8, 3, 2, 1), 8));
  CHECK_FALSE(winograd_suits<float>(conv2d_geometry::square(8, 8, 8, 3, 1, 0), 8));
  CHECK_FALSE(winograd_suits<float>(conv2d_geometry::square(8, 8, 8, 5, 1, 2), 8));
  CHECK_FALSE(winograd_suits<float>(conv2d_geometry::square(8, 8, 8, 1, 1, 0), 8));
  CHECK(winograd_tiles(conv2d_geometry::square(7, 5, 8, 3, 1, 1)) == 4 * 3);
}

}  // namespace test_nn_winograd
