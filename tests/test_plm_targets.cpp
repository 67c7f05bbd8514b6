// SPDX-License-Identifier: Apache-2.0
// Tests for zss/plm/targets.hpp: the fused map on the student grid, its regions and the
// region-pooled teacher tokens.
#include <doctest/doctest.h>

#include <cstdint>
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

}  // namespace test_plm_targets
