// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file tests/support/cluster_reference.hpp
 * Brute-force oracles for the clustering tests: exact nearest centroid, exact inertia, integer
 * data (so every distance is exact in float), and label-permutation-free partition checks.
 */
#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "zss/core/random.hpp"
#include "zss/core/tensor.hpp"

namespace zss::test {

/// rows × cols tensor of integers in [-range, range].
template <class T>
tensor<T, 2> integer_matrix(index_t rows, index_t cols, std::uint64_t seed, int range = 6) {
  rng g(seed);
  tensor<T, 2> m = tensor<T, 2>::from_shape({rows, cols});
  for (auto& x : m) x = static_cast<T>(static_cast<int>(g.below(2 * range + 1)) - range);
  return m;
}

/// Exact ‖a − b‖² in double.
template <class T>
double exact_sqdist(const T* a, const T* b, index_t d) {
  double s = 0;
  for (index_t j = 0; j < d; ++j) {
    const double t = double(a[j]) - double(b[j]);
    s += t * t;
  }
  return s;
}

/// Rows `idx` of X as a tensor.
template <class T>
tensor<T, 2> gather_rows(const tensor<T, 2>& X, const std::vector<index_t>& idx) {
  const index_t d = X.shape()[1];
  tensor<T, 2> C = tensor<T, 2>::from_shape({idx.size(), d});
  for (index_t c = 0; c < idx.size(); ++c)
    for (index_t j = 0; j < d; ++j) C(c, j) = X(idx[c], j);
  return C;
}

/// Σ_i ‖x_i − c_{label_i}‖² in double.
template <class T>
double exact_inertia(const tensor<T, 2>& X, const tensor<T, 2>& C,
                     const std::vector<std::int32_t>& labels) {
  double s = 0;
  for (index_t i = 0; i < X.shape()[0]; ++i)
    s += exact_sqdist(&X(i, 0), &C(index_t(labels[i]), 0), X.shape()[1]);
  return s;
}

/// min_k ‖x_i − c_k‖² in double.
template <class T>
double nearest_sqdist(const tensor<T, 2>& X, index_t i, const tensor<T, 2>& C) {
  double best = exact_sqdist(&X(i, 0), &C(0, 0), X.shape()[1]);
  for (index_t c = 1; c < C.shape()[0]; ++c)
    best = std::min(best, exact_sqdist(&X(i, 0), &C(c, 0), X.shape()[1]));
  return best;
}

/// True when two labelings define the same partition (up to renaming the clusters).
inline bool same_partition(const std::vector<std::int32_t>& a, const std::vector<std::int32_t>& b) {
  if (a.size() != b.size()) return false;
  std::map<std::int32_t, std::int32_t> ab, ba;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto [it1, new1] = ab.emplace(a[i], b[i]);
    auto [it2, new2] = ba.emplace(b[i], a[i]);
    if (it1->second != b[i] || it2->second != a[i]) return false;
  }
  return true;
}

/// True when labels are exactly {0, …, k−1}, each used at least once.
inline bool compact_labels(const std::vector<std::int32_t>& labels, index_t k) {
  std::set<std::int32_t> used(labels.begin(), labels.end());
  if (used.size() != k) return false;
  return k == 0 || (*used.begin() == 0 && *used.rbegin() == static_cast<std::int32_t>(k - 1));
}

}  // namespace zss::test
