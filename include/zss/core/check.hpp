// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/core/check.hpp
 * Input validation that throws `std::invalid_argument` with the shapes and values in the message.
 *
 * Validate loudly, up front (STYLE §10): every public entry point checks its arguments with
 * these helpers before touching memory, so a mismatch reads like
 * "normalize_forward: Y has shape (3, 5), expected (3, 4)". Finiteness checks cost one pass over
 * the data; public entry points expose them as an option (`check_finite`), inner kernels never
 * check.
 */
#include <cmath>
#include <cstddef>
#include <initializer_list>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

#include "zss/core/config.hpp"

namespace zss {

/// "(3, 4)" for any range of extents (xtensor shapes, std::array, initializer lists).
template <class Shape>
std::string shape_string(const Shape& shape) {
  std::ostringstream os;
  os << '(';
  bool first = true;
  for (auto e : shape) {
    if (!first) os << ", ";
    os << e;
    first = false;
  }
  os << ')';
  return os.str();
}

inline std::string shape_string(std::initializer_list<std::size_t> shape) {
  return shape_string<std::initializer_list<std::size_t>>(shape);
}

/// Throws `std::invalid_argument(message)` when `condition` is false.
inline void require(bool condition, const std::string& message) {
  if (!condition) throw std::invalid_argument(message);
}

/// Checks that `e` (anything with `.dimension()` and `.shape()`) has rank `rank`.
template <class E>
void check_rank(std::string_view where, std::string_view name, const E& e, std::size_t rank) {
  if (e.dimension() != rank) {
    std::ostringstream os;
    os << where << ": " << name << " has rank " << e.dimension() << " (shape "
       << shape_string(e.shape()) << "), expected rank " << rank;
    throw std::invalid_argument(os.str());
  }
}

/// Checks that `e` has exactly the shape `expected`.
template <class E>
void check_shape(std::string_view where, std::string_view name, const E& e,
                 std::initializer_list<std::size_t> expected) {
  bool same = e.dimension() == expected.size();
  if (same) {
    std::size_t i = 0;
    for (auto x : expected) same = same && static_cast<std::size_t>(e.shape()[i++]) == x;
  }
  if (!same) {
    std::ostringstream os;
    os << where << ": " << name << " has shape " << shape_string(e.shape()) << ", expected "
       << shape_string(expected);
    throw std::invalid_argument(os.str());
  }
}

/// Checks one extent: "where: name (got) must equal what (expected)".
inline void check_extent(std::string_view where, std::string_view name, std::size_t got,
                         std::string_view what, std::size_t expected) {
  if (got != expected) {
    std::ostringstream os;
    os << where << ": " << name << " (" << got << ") must equal " << what << " (" << expected
       << ")";
    throw std::invalid_argument(os.str());
  }
}

/// Throws naming the first non-finite value and its flat index.
template <real_scalar T>
void check_finite(std::string_view where, std::string_view name, const T* data, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(data[i])) {
      std::ostringstream os;
      os << where << ": " << name << " contains a non-finite value (" << data[i]
         << ") at flat index " << i << " of " << n;
      throw std::invalid_argument(os.str());
    }
  }
}

/// `check_finite` over an xtensor container or view with contiguous storage.
template <class E>
requires requires(const E& e) {
  e.data();
  e.size();
}
void check_finite(std::string_view where, std::string_view name, const E& e) {
  check_finite(where, name, e.data(), e.size());
}

}  // namespace zss
