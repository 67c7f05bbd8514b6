// SPDX-License-Identifier: Apache-2.0
// Tests for zss/core/param_buffer.hpp.
#include <doctest/doctest.h>

#include <cstdint>

#include "zss/core/param_buffer.hpp"

namespace test_core_param_buffer {

using namespace zss;

TEST_CASE_TEMPLATE("named views tile one aligned buffer", T, float, double) {
  param_buffer<T> p;
  const auto w = p.add("conv1.weight", {3, 5});
  const auto b = p.add("conv1.bias", {3});
  const auto s = p.add("scale", {});
  CHECK_THROWS_WITH_AS(p.add("conv1.bias", {2}), doctest::Contains("duplicate"),
                       std::invalid_argument);
  p.allocate();
  CHECK_THROWS_AS(p.add("late", {1}), std::invalid_argument);
  CHECK(p.parameter_count() == 15 + 3 + 1);
  for (auto id : {w, b, s}) {
    CHECK(reinterpret_cast<std::uintptr_t>(p.value(id)) % simd_alignment == 0);
    CHECK(reinterpret_cast<std::uintptr_t>(p.grad(id)) % simd_alignment == 0);
  }
  // Entries never overlap.
  for (index_t i = 0; i < 15; ++i) p.value(w)[i] = T(1);
  for (index_t i = 0; i < 3; ++i) CHECK(p.value(b)[i] == T(0));
  CHECK(p.value_matrix(w).rows == 3);
  CHECK(p.value_matrix(w).cols == 5);
  CHECK(p.id("conv1.bias") == b);
  CHECK_THROWS_WITH_AS(p.id("nope"), doctest::Contains("nope"), std::invalid_argument);
  p.grad(b)[2] = T(4);
  p.zero_grad();
  CHECK(p.grad(b)[2] == T(0));
}

}  // namespace test_core_param_buffer
