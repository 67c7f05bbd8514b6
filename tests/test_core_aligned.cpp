// SPDX-License-Identifier: Apache-2.0
// Tests for zss/core/aligned.hpp.
#include <doctest/doctest.h>

#include <cstdint>

#include "zss/core/aligned.hpp"

namespace test_core_aligned {

using namespace zss;

TEST_CASE("round_up and padded_cols") {
  CHECK(round_up(0, 16) == 0);
  CHECK(round_up(1, 16) == 16);
  CHECK(round_up(16, 16) == 16);
  CHECK(round_up(17, 16) == 32);
  CHECK(padded_cols<float>(17) == 32);
  CHECK(padded_cols<double>(17) == 24);
  CHECK(padded_cols<float>(512) == 512);
}

TEST_CASE_TEMPLATE("padded_matrix rows are aligned and padding is zero", T, float, double) {
  std::vector<T> src(5 * 7);
  for (std::size_t i = 0; i < src.size(); ++i) src[i] = T(i + 1);
  padded_matrix<T> m;
  m.assign(src.data(), 5, 7, 7);
  CHECK(m.stride() == padded_cols<T>(7));
  for (index_t i = 0; i < 5; ++i) {
    CHECK(reinterpret_cast<std::uintptr_t>(m.row(i)) % simd_alignment == 0);
    for (index_t j = 0; j < 7; ++j) CHECK(m.row(i)[j] == src[i * 7 + j]);
    for (index_t j = 7; j < m.stride(); ++j) CHECK(m.row(i)[j] == T(0));
  }
  CHECK_THROWS_AS(m.assign(src.data(), 5, 7, 6), std::invalid_argument);
  aligned_vector<T> v(3);
  CHECK(reinterpret_cast<std::uintptr_t>(v.data()) % simd_alignment == 0);
}

}  // namespace test_core_aligned
