// SPDX-License-Identifier: Apache-2.0
// Tests for zss/core/check.hpp: errors name the shapes and values.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>

#include "zss/core/check.hpp"
#include "zss/core/tensor.hpp"

namespace test_core_check {

using namespace zss;

namespace {
template <class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "<no exception>";
}
}  // namespace

TEST_CASE("shape_string formats extents") {
  CHECK(shape_string({3, 4}) == "(3, 4)");
  CHECK(shape_string({}) == "()");
  CHECK(shape_string(std::array<std::size_t, 1>{7}) == "(7)");
}

TEST_CASE("check_shape and check_rank throw with both shapes in the message") {
  tensor<float, 2> x = tensor<float, 2>::from_shape({3, 5});
  CHECK_NOTHROW(check_shape("f", "X", x, {3, 5}));
  const auto msg = message_of([&] { check_shape("normalize", "X", x, {3, 4}); });
  CHECK(msg.find("normalize") != std::string::npos);
  CHECK(msg.find("(3, 5)") != std::string::npos);
  CHECK(msg.find("(3, 4)") != std::string::npos);
  CHECK(message_of([&] {
          check_shape("f", "X", x, {3, 5, 1});
        }).find("(3, 5, 1)") != std::string::npos);
  const auto rank = message_of([&] { check_rank("f", "X", x, 3); });
  CHECK(rank.find("rank 2") != std::string::npos);
  CHECK(rank.find("expected rank 3") != std::string::npos);
  const auto ext = message_of([] { check_extent("kmeans", "k", 9, "the number of points", 7); });
  CHECK(ext == "kmeans: k (9) must equal the number of points (7)");
  CHECK_THROWS_AS(require(false, "x"), std::invalid_argument);
}

TEST_CASE_TEMPLATE("check_finite names the first bad value and its index", T, float, double) {
  std::vector<T> v(10, T(1));
  CHECK_NOTHROW(check_finite("f", "v", v.data(), v.size()));
  v[6] = std::numeric_limits<T>::quiet_NaN();
  v[8] = std::numeric_limits<T>::infinity();
  const auto msg = message_of([&] { check_finite("fit", "X", v.data(), v.size()); });
  CHECK(msg.find("fit: X") != std::string::npos);
  CHECK(msg.find("flat index 6 of 10") != std::string::npos);
  tensor<T, 1> t = {T(0), std::numeric_limits<T>::infinity()};
  CHECK(message_of([&] { check_finite("g", "t", t); }).find("index 1") != std::string::npos);
}

}  // namespace test_core_check
