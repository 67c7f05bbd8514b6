// SPDX-License-Identifier: Apache-2.0
// Tests for zss/plm/token_labels.hpp: hand-computed token labels (divisible and not), a
// super-sampling oracle for the area rule, validation, and nearest-neighbour resizing.
#include <doctest/doctest.h>

#include <map>

#include "zss/core/random.hpp"
#include "zss/plm/token_labels.hpp"

namespace test_plm_token_labels {

using namespace zss;

namespace {

/// Oracle: replicate every pixel into an h × w block of sub-pixels; token (i, j) is then exactly
/// the H × W block of sub-pixels at (i·H, j·W), and areas are plain counts.
tensor<std::int32_t, 2> token_labels_by_supersampling(const tensor<std::int32_t, 2>& px, index_t h,
                                                      index_t w) {
  const index_t H = px.shape()[0], W = px.shape()[1];
  tensor<std::int32_t, 2> out = tensor<std::int32_t, 2>::from_shape({h, w});
  for (index_t i = 0; i < h; ++i)
    for (index_t j = 0; j < w; ++j) {
      std::map<std::int32_t, long> count;
      long ignored = 0;
      for (index_t sy = i * H; sy < (i + 1) * H; ++sy)
        for (index_t sx = j * W; sx < (j + 1) * W; ++sx) {
          const std::int32_t v = px(sy / h, sx / w);
          if (v == -1 || v == 255)
            ++ignored;
          else
            ++count[v];
        }
      std::int32_t best = -1;
      long best_n = 0;
      if (2 * ignored < long(H * W))
        for (auto [label, n] :
             count)  // std::map: ascending labels, so ">" keeps the lowest on ties
          if (n > best_n) best = label, best_n = n;
      out(i, j) = best;
    }
  return out;
}

}  // namespace

TEST_CASE("token_labels: 4 x 4 pixels to 2 x 2 tokens, by hand") {
  // Blocks: top-left {0, 0, 1, 255}: 1/4 ignored, majority 0.  top-right {255, 255, 1, 0}: half
  // ignored → ignored.  bottom-left {1, 1, 0, 0}: tie → lowest, 0.  bottom-right {-1, 2, 2, 2} → 2.
  tensor<std::int32_t, 2> px = {{0, 0, 255, 255},  //
                                {1, 255, 1, 0},
                                {1, 1, -1, 2},
                                {0, 0, 2, 2}};
  const auto t = token_labels(px, 2, 2);
  CHECK(t == tensor<std::int32_t, 2>{{0, -1}, {0, 2}});
}

TEST_CASE("token_labels: 3 x 3 pixels to 2 x 2 tokens weigh shared pixels by area") {
  // Token (0, 0) covers pixel rows/cols [0, 1.5): pixel (0,0) area 1, (0,1) and (1,0) area ½,
  // (1,1) area ¼; total 2¼.  Token (1, 1) mirrors it around pixel (2, 2).
  tensor<std::int32_t, 2> px = {{5, 7, 7},  //
                                {7, 255, 3},
                                {9, 3, 4}};
  // (0,0): 5 → 1, 7 → ½ + ½ = 1, ignored ¼ → tie 5/7 at area 1 → 5.
  // (0,1): pixels (0,1) ½·1=½ [7], (0,2) 1 [7], (1,1) ¼ [ign], (1,2) ½ [3] → 7 (1½).
  // (1,0): (1,0) ½ [7], (1,1) ¼ [ign], (2,0) 1 [9], (2,1) ½ [3] → 9 (1) vs 7 (½) vs 3 (½) → 9.
  // (1,1): (1,1) ¼ [ign], (1,2) ½ [3], (2,1) ½ [3], (2,2) 1 [4] → 3 (1) ties 4 (1) → 3.
  CHECK(token_labels(px, 2, 2) == tensor<std::int32_t, 2>{{5, 7}, {9, 3}});

  SUBCASE("exactly half ignored is ignored; just under half is not") {
    // Token (0,0): ignore (0,0) [1] and (1,1) [¼] = 1¼ of 2¼ → > ½ → ignored.
    tensor<std::int32_t, 2> a = {{-1, 7, 7}, {7, 255, 3}, {9, 3, 4}};
    CHECK(token_labels(a, 2, 2)(0, 0) == -1);
    // 2 x 1 pixels into 1 x 1 token: exactly half ignored → ignored.
    tensor<std::int32_t, 2> b = {{255}, {6}};
    CHECK(token_labels(b, 1, 1)(0, 0) == -1);
    token_label_options p;
    p.ignored_fraction = 0.75;
    CHECK(token_labels(b, 1, 1, p)(0, 0) == 6);
  }
}

TEST_CASE("token_labels: fewer pixels than tokens, and one token for the whole image") {
  tensor<std::int32_t, 2> px = {{1, 255}, {2, 3}};
  CHECK(token_labels(px, 4, 4) ==
        tensor<std::int32_t, 2>{{1, 1, -1, -1}, {1, 1, -1, -1}, {2, 2, 3, 3}, {2, 2, 3, 3}});
  CHECK(token_labels(px, 1, 1)(0, 0) == 1);  // 1, 2, 3 each a quarter, one quarter ignored: tie → 1
  tensor<std::uint8_t, 2> u8 = {{4, 4}, {255, 255}};
  CHECK(token_labels(u8, 1, 1)(0, 0) == -1);
}

TEST_CASE("token_labels agrees with the super-sampling oracle on random maps") {
  rng g(11);
  for (int trial = 0; trial < 60; ++trial) {
    const index_t H = 1 + g.below(13), W = 1 + g.below(13), h = 1 + g.below(7), w = 1 + g.below(7);
    tensor<std::int32_t, 2> px = tensor<std::int32_t, 2>::from_shape({H, W});
    for (auto& v : px) {
      const auto r = g.below(6);
      v = r == 0 ? -1 : r == 1 ? 255 : static_cast<std::int32_t>(g.below(3));
    }
    CAPTURE(H);
    CAPTURE(W);
    CAPTURE(h);
    CAPTURE(w);
    CHECK(token_labels(px, h, w) == token_labels_by_supersampling(px, h, w));
  }
}

TEST_CASE("token_labels validates its input") {
  tensor<std::int32_t, 2> px = {{0, 1}, {2, -3}};
  CHECK_THROWS_WITH_AS(token_labels(px, 1, 1), doctest::Contains("pixel (1, 1) has label -3"),
                       std::invalid_argument);
  tensor<std::int32_t, 2> ok = {{0, 1}, {2, 255}};
  token_label_options p;
  p.num_seen = 2;
  CHECK_THROWS_WITH_AS(token_labels(ok, 1, 1, p), doctest::Contains("label 2, outside [0, 2)"),
                       std::invalid_argument);
  p.num_seen = 0;
  p.ignore_value = -1;  // 255 becomes an ordinary class
  CHECK(token_labels(ok, 2, 2)(1, 1) == -1);
  CHECK(token_labels(ok, 2, 2, p)(1, 1) == 255);
  p.ignored_fraction = 0;
  CHECK_THROWS_AS(token_labels(ok, 1, 1, p), std::invalid_argument);
  CHECK_THROWS_AS(token_labels(ok, 0, 1), std::invalid_argument);
  std::vector<std::int32_t> wrong(3);
  CHECK_THROWS_AS(token_labels(std::span<std::int32_t>(wrong), ok.data(), 2, 2, 2, 2),
                  std::invalid_argument);
}

TEST_CASE("resize_nearest takes the source cell under each target centre") {
  tensor<std::int32_t, 2> a = {{1, 2}, {3, -1}};
  SUBCASE("integer factor: block replication") {
    CHECK(resize_nearest(a, 4, 4) ==
          tensor<std::int32_t, 2>{{1, 1, 2, 2}, {1, 1, 2, 2}, {3, 3, -1, -1}, {3, 3, -1, -1}});
    CHECK(resize_nearest(a, 2, 2) == a);
  }
  SUBCASE("non-integer factors, by hand") {
    // 2 → 5 rows: centres 0.1, 0.3, 0.5, 0.7, 0.9 of the height → source rows 0, 0, 1, 1, 1.
    // 2 → 3 cols: centres 1/6, 1/2, 5/6 → source cols 0, 1, 1.
    CHECK(resize_nearest(a, 5, 3) ==
          tensor<std::int32_t, 2>{{1, 2, 2}, {1, 2, 2}, {3, -1, -1}, {3, -1, -1}, {3, -1, -1}});
  }
  SUBCASE("down-sampling") {
    tensor<std::int32_t, 2> b = {{1, 2, 3}, {4, 5, 6}, {7, 8, 9}};
    // 3 → 2: centres 0.25, 0.75 of the extent → cells 0 and 2.
    CHECK(resize_nearest(b, 2, 2) == tensor<std::int32_t, 2>{{1, 3}, {7, 9}});
  }
  CHECK_THROWS_AS(resize_nearest(a, 0, 3), std::invalid_argument);
}

}  // namespace test_plm_token_labels
