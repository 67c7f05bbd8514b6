// SPDX-License-Identifier: Apache-2.0
// Tests for zss/clip/evaluate.hpp: average precision against hand-computed cases and a brute
// force; image-level zero-shot at its extremes (perfect scores, scores that ignore the image);
// the cosine statistics on a constructed teacher.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "support/random_data.hpp"
#include "zss/clip/captions.hpp"
#include "zss/clip/evaluate.hpp"

namespace test_clip_evaluate {

using namespace zss;
using namespace zss::clip;

TEST_CASE("average precision: hand-computed cases and ties") {
  const std::vector<double> s = {0.9, 0.8, 0.7, 0.6};
  CHECK(average_precision(s, std::vector<char>{1, 1, 0, 0}) == 1.0);
  CHECK(average_precision(s, std::vector<char>{0, 0, 1, 1}) ==
        doctest::Approx((1.0 / 3 + 2.0 / 4) / 2));
  CHECK(average_precision(s, std::vector<char>{1, 0, 1, 0}) == doctest::Approx((1 + 2.0 / 3) / 2));
  CHECK(std::isnan(average_precision(s, std::vector<char>{0, 0, 0, 0})));
  // Ties keep index order.
  CHECK(average_precision(std::vector<double>{1, 1}, std::vector<char>{0, 1}) == 0.5);
  CHECK_THROWS_AS(average_precision(s, std::vector<char>{1}), std::invalid_argument);
}

TEST_CASE("image zero-shot: perfect scores give 1, image-blind scores give about chance") {
  const index_t N = 400, D = 21;
  rng g(3);
  std::vector<std::array<bool, 21>> present(N);
  tensor<float, 2> text = tensor<float, 2>::from_shape({21, D});
  text.fill(0);
  for (index_t k = 0; k < 21; ++k) text(k, k) = 1;  // orthonormal class embeddings
  tensor<float, 2> perfect = tensor<float, 2>::from_shape({N, D}), blind = perfect;
  for (index_t i = 0; i < N; ++i) {
    present[i][0] = true;
    for (index_t k = 1; k < 21; ++k) present[i][k] = g.uniform() < 0.15;
    double n = 0;
    for (index_t k = 0; k < 21; ++k) n += present[i][k];
    for (index_t k = 0; k < 21; ++k) {
      perfect(i, k) = float(present[i][k] / std::sqrt(n));
      blind(i, k) = float(1 / std::sqrt(21.0));  // the same for every image
    }
  }
  const auto split = toy::class_split::standard();
  const auto p = image_zero_shot<float>(as_matrix(perfect), present, as_matrix(text), split);
  CHECK(p.map_objects == 1.0);
  CHECK(p.map_unseen == 1.0);
  CHECK(p.r_precision == 1.0);
  CHECK(p.chance_objects == doctest::Approx(0.15).epsilon(0.2));
  const auto b = image_zero_shot<float>(as_matrix(blind), present, as_matrix(text), split);
  // Constant scores: the ranking is the image order, i.e. random with respect to presence.
  CHECK(std::abs(b.map_objects - b.chance_objects) < 0.05);
  CHECK(std::abs(b.r_precision - b.r_precision_chance) < 0.05);
}

TEST_CASE("cosine statistics of a teacher whose tokens are its classes' prompts") {
  toy::scene_options so;
  so.height = so.width = 16;
  std::vector<toy::scene> scenes;
  std::vector<toy::teacher_output<double>> teach;
  const index_t D = 21;
  tensor<double, 2> text = tensor<double, 2>::from_shape({21, D});
  text.fill(0);
  for (index_t k = 0; k < 21; ++k) text(k, k) = 1;
  std::vector<std::array<bool, 21>> present;
  tensor<double, 2> caps = tensor<double, 2>::from_shape({6, D});
  for (std::uint64_t i = 0; i < 6; ++i) {
    scenes.push_back(toy::make_scene(so, 1, i));
    const auto& s = scenes.back();
    present.push_back(visible_classes(s, 16));
    toy::teacher_output<double> t;
    t.grid_h = t.grid_w = 4;
    t.tokens = tensor<double, 2>::from_shape({16, D});
    t.tokens.fill(0);
    for (index_t q = 0; q < 16; ++q) {  // the one-hot of the patch's majority class
      std::array<int, 21> n{};
      for (index_t y = 0; y < 4; ++y)
        for (index_t x = 0; x < 4; ++x) {
          const auto l = s.labels((q / 4) * 4 + y, (q % 4) * 4 + x);
          if (l >= 0) ++n[index_t(l)];
        }
      t.tokens(q, index_t(std::max_element(n.begin(), n.end()) - n.begin())) = 1;
    }
    t.cls = tensor<double, 1>::from_shape({D});
    t.cls.fill(0);
    double n = 0;
    for (index_t k = 0; k < 21; ++k) n += present.back()[k];
    for (index_t k = 0; k < 21; ++k)
      t.cls(k) = present.back()[k] / std::sqrt(n), caps(i, k) = t.cls(k);
    teach.push_back(t);
  }
  const auto st = cosine_stats<double>(scenes, teach, as_matrix(caps), as_matrix(text), present);
  CHECK(st.matching.mean() == doctest::Approx(1.0));
  CHECK(st.matching.n == 6);
  CHECK(st.non_matching.n == 30);
  CHECK(st.non_matching.mean() < 1.0);
  CHECK(st.token_own.n > 0);
  CHECK(st.token_own.mean() == doctest::Approx(1.0));  // pure tokens take their own class
  CHECK(st.token_other.mean() == doctest::Approx(0.0));
  CHECK(st.prompt_prompt.mean() == doctest::Approx(0.0));
  CHECK(st.gap == doctest::Approx(0.0).epsilon(1e-12));
}

}  // namespace test_clip_evaluate
