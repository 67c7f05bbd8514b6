// SPDX-License-Identifier: Apache-2.0
// Tests for zss/plm/targets.hpp: the fused map on the student grid, its regions and the
// region-pooled teacher tokens.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <vector>

#include "zss/core/random.hpp"
#include "zss/plm/targets.hpp"

namespace test_plm_targets {

using namespace zss;

namespace {

template <class T>
tensor<T, 2> random_matrix(index_t r, index_t c, std::uint64_t seed) {
  rng g(seed, 7);
  tensor<T, 2> m = tensor<T, 2>::from_shape({r, c});
  for (auto& v : m) v = g.normal<T>();
  return m;
}

}  // namespace

TEST_CASE("targets_from_fused: regions are present seen classes then renumbered pseudo classes") {
  const index_t Ks = 4;
  // 4 × 4 teacher grid, student 2 × 2 (nearest neighbour takes cells (1,1), (1,3), (3,1), (3,3)).
  std::vector<std::int32_t> fused(16, -1);
  fused[5] = 2;        // (1,1) seen 2
  fused[7] = Ks + 3;   // (1,3) pseudo 3
  fused[13] = Ks + 1;  // (3,1) pseudo 1
  fused[0] = Ks + 0;   // pseudo 0: not on the student grid → dropped
  fused[15] = 1;       // (3,3) seen 1
  const auto tokens = random_matrix<double>(16, 3, 5);
  const auto t = targets_from_fused<double>(fused, as_matrix(tokens), 4, 4, 2, 2, Ks);
  CHECK(t.pseudo_count == 2);
  CHECK(t.labels == std::vector<std::int32_t>{2, std::int32_t(Ks + 1), std::int32_t(Ks + 0), 1});
  CHECK(t.region_label == std::vector<std::int32_t>{1, 2, -1, -1});
  CHECK(t.region_of(2) == 1);
  CHECK(t.region_of(std::int32_t(Ks + 1)) == 3);
  // u_l is the mean teacher token of the region (on the teacher grid): single tokens here.
  for (index_t d = 0; d < 3; ++d) {
    CHECK(t.region_tokens(0, d) == doctest::Approx(tokens(15, d)));
    CHECK(t.region_tokens(2, d) == doctest::Approx(tokens(13, d)));
    CHECK(t.region_tokens(3, d) == doctest::Approx(tokens(7, d)));
  }
  CHECK(t.teacher_map[0] == -1);  // the dropped pseudo class is ignored in the picture map too
}

namespace {

/// Targets with `L` random region tokens each (only `region_label` and `region_tokens` matter).
std::vector<image_targets<double>> random_region_targets(std::vector<index_t> regions, index_t D,
                                                         std::uint64_t seed) {
  std::vector<image_targets<double>> out(regions.size());
  for (index_t i = 0; i < regions.size(); ++i) {
    out[i].region_label.assign(regions[i], -1);
    out[i].pseudo_count = regions[i];
    out[i].region_tokens = random_matrix<double>(regions[i], D, seed + i);
    for (index_t r = 0; r < regions[i]; ++r)
      out[i].region_tokens(r, 0) += 3.0;  // an off-centre cone
  }
  return out;
}

}  // namespace

TEST_CASE("shift_modality_gap: every token is n(u) − mean n(u) + mean n(t), by a plain reference") {
  const index_t D = 5;
  auto targets = random_region_targets({3, 0, 4, 1}, D, 11);
  const auto before = targets;
  auto text = random_matrix<double>(6, D, 99);
  for (index_t k = 0; k < 6; ++k) text(k, 1) -= 2.0;  // the text cone elsewhere
  const auto g =
      shift_modality_gap<double>(std::span<image_targets<double>>(targets), as_matrix(text));
  CHECK(g.regions == 8);
  // Reference: the two means from scratch.
  std::vector<double> mu(D, 0.0), mt(D, 0.0);
  auto unit = [&](auto&& row) {
    double n = 0;
    for (index_t d = 0; d < D; ++d) n += row(d) * row(d);
    std::vector<double> v(D);
    for (index_t d = 0; d < D; ++d) v[d] = row(d) / std::sqrt(n);
    return v;
  };
  for (const auto& t : before)
    for (index_t r = 0; r < t.regions(); ++r) {
      const auto v = unit([&](index_t d) { return t.region_tokens(r, d); });
      for (index_t d = 0; d < D; ++d) mu[d] += v[d] / 8.0;
    }
  for (index_t k = 0; k < 6; ++k) {
    const auto v = unit([&](index_t d) { return text(k, d); });
    for (index_t d = 0; d < D; ++d) mt[d] += v[d] / 6.0;
  }
  for (index_t d = 0; d < D; ++d) {
    CHECK(g.token_mean[d] == doctest::Approx(mu[d]).epsilon(1e-12));
    CHECK(g.text_mean[d] == doctest::Approx(mt[d]).epsilon(1e-12));
  }
  std::vector<double> mean_after(D, 0.0);
  for (index_t i = 0; i < targets.size(); ++i)
    for (index_t r = 0; r < targets[i].regions(); ++r) {
      const auto v = unit([&](index_t d) { return before[i].region_tokens(r, d); });
      for (index_t d = 0; d < D; ++d) {
        CHECK(targets[i].region_tokens(r, d) ==
              doctest::Approx(v[d] - mu[d] + mt[d]).epsilon(1e-12));
        mean_after[d] += targets[i].region_tokens(r, d) / 8.0;
      }
    }
  // So the shifted tokens are centred where the texts are.
  for (index_t d = 0; d < D; ++d) CHECK(mean_after[d] == doctest::Approx(mt[d]).epsilon(1e-12));
  // The cosine between the two means, as reported.
  double tt = 0, xx = 0, tx = 0;
  for (index_t d = 0; d < D; ++d) tt += mu[d] * mu[d], xx += mt[d] * mt[d], tx += mu[d] * mt[d];
  CHECK(g.cos_means == doctest::Approx(tx / std::sqrt(tt * xx)).epsilon(1e-12));
  CHECK(g.cos_means < 0.9);  // the fixture's cones really differ
}

TEST_CASE("shift_modality_gap: no regions is a no-op; bad widths and no text are refused") {
  const auto text = random_matrix<double>(3, 4, 1);
  auto none = random_region_targets({0, 0}, 4, 2);
  const auto g =
      shift_modality_gap<double>(std::span<image_targets<double>>(none), as_matrix(text));
  CHECK(g.regions == 0);
  auto wide = random_region_targets({2}, 5, 3);
  CHECK_THROWS_WITH_AS(
      shift_modality_gap<double>(std::span<image_targets<double>>(wide), as_matrix(text)),
      doctest::Contains("region token width"), std::invalid_argument);
  const tensor<double, 2> empty = tensor<double, 2>::from_shape({0, 4});
  auto some = random_region_targets({2}, 4, 4);
  CHECK_THROWS_WITH_AS(
      shift_modality_gap<double>(std::span<image_targets<double>>(some), as_matrix(empty)),
      doctest::Contains("no class embeddings"), std::invalid_argument);
}

}  // namespace test_plm_targets
