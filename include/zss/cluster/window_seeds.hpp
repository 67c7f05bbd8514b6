// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/cluster/window_seeds.hpp
 * Window seeds: average-pool of an h × w token grid with window s and stride s
 * (DESIGN.md §2.3 step 1).
 *
 * Legend: Q = h·w tokens (row-major grid: token (y, x) is row y·w + x), D width,
 * K_s = ⌈h/s⌉·⌈w/s⌉ seeds, seed (i, j) is row i·⌈w/s⌉ + j. A window that runs over the grid's
 * right or bottom edge averages only the tokens it covers (no zero padding).
 */
#include <algorithm>
#include <string>

#include "zss/core/check.hpp"
#include "zss/core/tensor.hpp"

namespace zss {

/// ⌈h/s⌉·⌈w/s⌉, the number of window seeds (s ≥ 1).
constexpr index_t window_seed_count(index_t h, index_t w, index_t s) noexcept {
  return s == 0 ? 0 : ((h + s - 1) / s) * ((w + s - 1) / s);
}

namespace detail {
inline void check_window_args(std::string_view where, index_t rows, index_t h, index_t w,
                              index_t s) {
  require(s >= 1, std::string(where) + ": window size must be >= 1, got 0");
  require(h >= 1 && w >= 1, std::string(where) + ": grid " + std::to_string(h) + " x " +
                                std::to_string(w) + " is empty");
  if (h * w != rows)
    throw std::invalid_argument(std::string(where) + ": grid " + std::to_string(h) + " x " +
                                std::to_string(w) + " = " + std::to_string(h * w) +
                                " tokens, but the data has " + std::to_string(rows) + " rows");
}
}  // namespace detail

/**
 * Writes the window seeds of `tokens` into `seeds`.
 * @param seeds  K_s × D output (any row stride), K_s = window_seed_count(h, w, s).
 * @param tokens Q × D tokens of an h × w grid, row-major over the grid.
 * @param h, w   grid extents (h·w = Q).
 * @param s      window size and stride (≥ 1; s ≥ max(h, w) gives one seed, the mean token).
 * @throws std::invalid_argument when h·w ≠ Q, s = 0, or `seeds` has the wrong shape.
 */
template <real_scalar T>
void window_seeds(matrix_ref<T> seeds, const_matrix_ref<T> tokens, index_t h, index_t w,
                  index_t s) {
  detail::check_window_args("window_seeds", tokens.rows, h, w, s);
  const index_t gh = (h + s - 1) / s, gw = (w + s - 1) / s, d = tokens.cols;
  check_shape("window_seeds", "seeds", seeds, gh * gw, d);
  for (index_t i = 0; i < gh; ++i) {
    for (index_t j = 0; j < gw; ++j) {
      T* out = seeds.row(i * gw + j);
      std::fill(out, out + d, T(0));
      const index_t y1 = std::min(h, (i + 1) * s), x1 = std::min(w, (j + 1) * s);
      for (index_t y = i * s; y < y1; ++y)
        for (index_t x = j * s; x < x1; ++x) {
          const T* t = tokens.row(y * w + x);
          for (index_t c = 0; c < d; ++c) out[c] += t[c];
        }
      const T inv = T(1) / static_cast<T>((y1 - i * s) * (x1 - j * s));
      for (index_t c = 0; c < d; ++c) out[c] *= inv;
    }
  }
}

/**
 * The window seeds of `tokens` as a new K_s × D tensor (see the overload above).
 * @throws std::invalid_argument when h·w ≠ Q or s = 0.
 */
template <real_scalar T>
tensor<T, 2> window_seeds(matrix_ref<const T> tokens, index_t h, index_t w, index_t s) {
  detail::check_window_args("window_seeds", tokens.rows, h, w, s);
  tensor<T, 2> seeds = tensor<T, 2>::from_shape({window_seed_count(h, w, s), tokens.cols});
  window_seeds(as_matrix(seeds), tokens, h, w, s);
  return seeds;
}

/// Window seeds of an h × w × D token tensor.
template <real_scalar T>
tensor<T, 2> window_seeds(const tensor<T, 3>& tokens, index_t s) {
  const index_t h = tokens.shape()[0], w = tokens.shape()[1], d = tokens.shape()[2];
  return window_seeds(matrix_ref<const T>(tokens.data(), h * w, d), h, w, s);
}

}  // namespace zss
