// SPDX-License-Identifier: Apache-2.0
// Tests for zss/plm/pseudo_labels.hpp: the planted scene end to end at pixel resolution,
// batch = single images, 1 vs 2 threads bitwise, token-scale invariance, errors.
#include <doctest/doctest.h>

#include <map>
#include <set>

#include "support/planted_scene.hpp"
#include "zss/plm/pseudo_labels.hpp"

namespace test_plm_pseudo_labels {

using namespace zss;

namespace {

/// The three blobs each carry one pseudo label, the labels differ, seen regions keep their class.
void check_three_segments(const tensor<std::int32_t, 2>& labels, const std::vector<int>& region,
                          index_t h, index_t w, std::int32_t num_seen) {
  const index_t Ho = labels.shape()[0], Wo = labels.shape()[1];
  std::map<int, std::set<std::int32_t>> labels_of_blob;
  std::map<std::int32_t, std::set<int>> blobs_of_label;
  for (index_t y = 0; y < Ho; ++y)
    for (index_t x = 0; x < Wo; ++x) {
      // The token under this output cell's centre (the resize rule, stated independently).
      const index_t ty = index_t((double(y) + 0.5) * double(h) / double(Ho));
      const index_t tx = index_t((double(x) + 0.5) * double(w) / double(Wo));
      const int r = region[ty * w + tx];
      const std::int32_t l = labels(y, x);
      if (r < 2) {
        CHECK(l == r);
        continue;
      }
      labels_of_blob[r].insert(l);
      blobs_of_label[l].insert(r);
    }
  REQUIRE(labels_of_blob.size() == 3);
  for (const auto& [blob, ls] : labels_of_blob) {
    CAPTURE(blob);
    REQUIRE(ls.size() == 1);
    CHECK(*ls.begin() >= num_seen);
    CHECK(*ls.begin() < num_seen + 3);
  }
  CHECK(blobs_of_label.size() == 3);
}

}  // namespace

TEST_CASE_TEMPLATE("pseudo_labels: a planted scene at 4x pixel resolution", T, float, double) {
  const index_t h = 16, w = 16;
  const auto scene = test::make_planted_scene<T>(h, w, 32, 5, 4);
  pseudo_label_options p;
  p.kmeans.windows = {2, 4};
  p.out_h = 64;
  p.out_w = 64;
  p.keep_details = true;
  const auto r = pseudo_labels(scene.tokens, scene.pixels, 2, p);
  CHECK(r.num_pseudo == 3);
  REQUIRE(r.labels.shape() == std::array<std::size_t, 2>{64, 64});
  check_three_segments(r.labels, scene.region, h, w, 2);
  check_three_segments(r.fused_tokens, scene.region, h, w, 2);
  for (index_t q = 0; q < h * w; ++q)
    CHECK(r.token_labels.data()[q] == (scene.region[q] < 2 ? scene.region[q] : -1));
  CHECK(r.scales.size() == 2);
  CHECK(r.fusion.labels.size() == h * w);

  SUBCASE("the output on the token grid by default; details dropped by default") {
    p.out_h = p.out_w = 0;
    p.keep_details = false;
    const auto s = pseudo_labels(scene.tokens, scene.pixels, 2, p);
    CHECK(s.labels == r.fused_tokens);
    CHECK(s.scales.empty());
  }
  SUBCASE("scaling tokens by positive factors changes nothing (they are normalised first)") {
    auto scaled = scene.tokens;
    for (index_t q = 0; q < h * w; ++q)
      for (index_t c = 0; c < 32; ++c) scaled.data()[q * 32 + c] *= T(0.5 + double(q % 7));
    const auto s = pseudo_labels(scaled, scene.pixels, 2, p);
    CHECK(s.num_pseudo == 3);
    check_three_segments(s.labels, scene.region, h, w, 2);
  }
  SUBCASE("windows {4, 8} find the same three segments") {
    p.kmeans.windows = {4, 8};
    check_three_segments(pseudo_labels(scene.tokens, scene.pixels, 2, p).labels, scene.region, h, w,
                         2);
  }
  SUBCASE("more seen classes shift the pseudo ids") {
    const auto s = pseudo_labels(scene.tokens, scene.pixels, 7, p);
    check_three_segments(s.labels, scene.region, h, w, 7);
  }
}

TEST_CASE_TEMPLATE("pseudo_labels_batch equals single images, bitwise, for 1 and 2 threads", T,
                   float, double) {
  const index_t B = 5, h = 12, w = 12, D = 16, H = 24, W = 36;
  tensor<T, 4> tokens = tensor<T, 4>::from_shape({B, h, w, D});
  tensor<std::int32_t, 3> pixels = tensor<std::int32_t, 3>::from_shape({B, H, W});
  for (index_t b = 0; b < B; ++b) {
    const auto s = test::make_planted_scene<T>(h, w, D, 100 + b, 1, 0.3 + 0.1 * double(b));
    std::copy(s.tokens.begin(), s.tokens.end(), tokens.data() + b * h * w * D);
    // Pixel labels on a different, non-multiple grid: resize the scene's token labels.
    const auto px = resize_nearest(s.pixels, H, W);
    std::copy(px.begin(), px.end(), pixels.data() + b * H * W);
  }
  pseudo_label_options p;
  p.kmeans.windows = {2, 3, 6};
  p.out_h = 20;
  p.out_w = 30;
  p.threads = 1;
  const auto one = pseudo_labels_batch(tokens, pixels, 2, p);
  p.threads = 2;
  const auto two = pseudo_labels_batch(tokens, pixels, 2, p);
  REQUIRE(one.size() == B);
  REQUIRE(two.size() == B);
  for (index_t b = 0; b < B; ++b) {
    CAPTURE(b);
    CHECK(one[b].labels == two[b].labels);
    CHECK(one[b].fused_tokens == two[b].fused_tokens);
    CHECK(one[b].num_pseudo == two[b].num_pseudo);
    tensor<T, 3> tb = tensor<T, 3>::from_shape({h, w, D});
    std::copy(tokens.data() + b * h * w * D, tokens.data() + (b + 1) * h * w * D, tb.data());
    tensor<std::int32_t, 2> pb = tensor<std::int32_t, 2>::from_shape({H, W});
    std::copy(pixels.data() + b * H * W, pixels.data() + (b + 1) * H * W, pb.data());
    const auto single = pseudo_labels(tb, pb, 2, p, b);
    CHECK(single.labels == one[b].labels);
    CHECK(single.num_pseudo == one[b].num_pseudo);
  }
  const auto stacked = stack_labels(two);
  CHECK(stacked.shape() == std::array<std::size_t, 3>{B, 20, 30});
  CHECK(stacked(3, 7, 11) == two[3].labels(7, 11));

  // The caller-memory overload writes the same maps into the caller's buffer, per-image labels
  // left empty; the other fields are the same.
  std::vector<std::int32_t> out(B * 20 * 30, -7);
  const auto viewed = pseudo_labels_batch<T, std::int32_t>(tokens.data(), B, h, w, D, pixels.data(),
                                                           H, W, 2, p, std::span(out));
  REQUIRE(viewed.size() == B);
  CHECK(std::equal(out.begin(), out.end(), stacked.begin()));
  for (index_t b = 0; b < B; ++b) {
    CHECK(viewed[b].labels.size() == 0);
    CHECK(viewed[b].fused_tokens == two[b].fused_tokens);
    CHECK(viewed[b].num_pseudo == two[b].num_pseudo);
  }
  std::vector<std::int32_t> short_out(B * 20 * 30 - 1);
  CHECK_THROWS_WITH_AS(
      (pseudo_labels_batch<T, std::int32_t>(tokens.data(), B, h, w, D, pixels.data(), H, W, 2, p,
                                            std::span(short_out))),
      doctest::Contains("labels_out size (2999)"), std::invalid_argument);
}

TEST_CASE("pseudo_labels errors name the problem and the image") {
  const auto scene = test::make_planted_scene<float>(8, 8, 8, 1);
  pseudo_label_options p;
  SUBCASE("a seen label out of range") {
    CHECK_THROWS_WITH_AS(pseudo_labels(scene.tokens, scene.pixels, 1, p),
                         doctest::Contains("outside [0, 1)"), std::invalid_argument);
  }
  SUBCASE("non-finite tokens") {
    auto t = scene.tokens;
    t(3, 4, 5) = std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH_AS(pseudo_labels(t, scene.pixels, 2, p), doctest::Contains("non-finite"),
                         std::invalid_argument);
    tensor<float, 4> batch = tensor<float, 4>::from_shape({3, 8, 8, 8});
    tensor<std::int32_t, 3> px = tensor<std::int32_t, 3>::from_shape({3, 8, 8});
    for (index_t b = 0; b < 3; ++b) {
      std::copy(scene.tokens.begin(), scene.tokens.end(), batch.data() + b * 512);
      std::copy(scene.pixels.begin(), scene.pixels.end(), px.data() + b * 64);
    }
    batch(2, 0, 0, 0) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH_AS(pseudo_labels_batch(batch, px, 2, p), doctest::Contains("image 2"),
                         std::invalid_argument);
    tensor<std::int32_t, 3> px2 = tensor<std::int32_t, 3>::from_shape({2, 8, 8});
    CHECK_THROWS_WITH_AS(pseudo_labels_batch(batch, px2, 2, p),
                         doctest::Contains("pixel label maps (2)"), std::invalid_argument);
  }
  SUBCASE("bad params") {
    p.out_h = 4;
    CHECK_THROWS_AS(pseudo_labels(scene.tokens, scene.pixels, 2, p), std::invalid_argument);
    p.out_h = 0;
    p.kmeans.windows = {};
    CHECK_THROWS_AS(pseudo_labels(scene.tokens, scene.pixels, 2, p), std::invalid_argument);
  }
}

}  // namespace test_plm_pseudo_labels
