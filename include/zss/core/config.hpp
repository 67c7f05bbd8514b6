// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/core/config.hpp
 * Basic types and concepts shared by every header.
 *
 * Sizes are `std::size_t` (`index_t`). Every kernel is templated over the scalar type and
 * constrained by `zss::real_scalar` (float or double), so a call with `int` or `long double`
 * fails with one readable concept error instead of deep template noise.
 */
#include <concepts>
#include <cstddef>

namespace zss {

using index_t = std::size_t;

/// The scalar types zss computes in: `float` (the fast path) and `double` (gradient checks).
template <class T>
concept real_scalar = std::same_as<T, float> || std::same_as<T, double>;

/// Byte alignment of every buffer zss allocates (one cache line, one AVX-512 register).
inline constexpr std::size_t simd_alignment = 64;

}  // namespace zss
