// SPDX-License-Identifier: Apache-2.0
#pragma once
/** @file tests/support/random_data.hpp  Seeded test data: random and integer-valued matrices. */
#include <vector>

#include "zss/core/aligned.hpp"
#include "zss/core/random.hpp"
#include "zss/core/tensor.hpp"

namespace zss::test {

/// n values uniform in [lo, hi).
template <class T>
aligned_vector<T> uniform_vector(index_t n, std::uint64_t seed, T lo = T(-1), T hi = T(1)) {
  rng g(seed);
  aligned_vector<T> v(n);
  for (auto& x : v) x = g.uniform<T>(lo, hi);
  return v;
}

/// n integers in [-range, range] as T: sums of products stay exact in float.
template <class T>
aligned_vector<T> integer_vector(index_t n, std::uint64_t seed, int range = 8) {
  rng g(seed);
  aligned_vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(static_cast<int>(g.below(2 * range + 1)) - range);
  return v;
}

/// rows × cols tensor with standard normal entries.
template <class T>
tensor<T, 2> normal_matrix(index_t rows, index_t cols, std::uint64_t seed) {
  rng g(seed);
  tensor<T, 2> m = tensor<T, 2>::from_shape({rows, cols});
  for (auto& x : m) x = g.normal<T>();
  return m;
}

/// The sizes around the SIMD widths every kernel is tested at.
inline std::vector<index_t> kernel_sizes() {
  std::vector<index_t> s = {15, 16, 17, 31, 33, 64, 512};
  for (index_t n = 1; n <= 67; ++n) s.push_back(n);
  return s;
}

}  // namespace zss::test
