// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file tests/support/planted_scene.hpp  A token grid with known regions, for PLM tests.
 *
 * An h × w grid (h, w ≥ 8). Left half annotated: top rows seen class 0, bottom rows class 1.
 * Right half ignored, cut into three irregular blobs (regions 2, 3, 4) that no window aligns
 * with. Each region has its own random direction; a token is its region's direction plus small
 * Gaussian noise, normalised. Pixel labels are the token labels replicated `scale` × `scale`
 * (ignored pixels alternate between −1 and 255).
 */
#include <cmath>
#include <cstdint>
#include <vector>

#include "zss/core/random.hpp"
#include "zss/core/tensor.hpp"

namespace zss::test {

template <class T>
struct planted_scene {
  tensor<T, 3> tokens;      ///< h × w × D, unit rows
  std::vector<int> region;  ///< h·w: 0, 1 (seen classes), 2, 3, 4 (blobs in the ignored half)
  tensor<std::int32_t, 2> pixels;  ///< (h·scale) × (w·scale) pixel labels
};

inline int planted_region(index_t y, index_t x, index_t h, index_t w) {
  const index_t half = w / 2;
  if (x < half) return 2 * y < h ? 0 : 1;
  // Blob boundaries as fractions of the grid, slanted so no window size aligns with them.
  const double u = double(x - half) / double(w - half), v = double(y) / double(h);
  if (v + 0.25 * u < 0.34) return 2;
  if (v - 0.15 * u < 0.70) return 3;
  return 4;
}

template <class T>
planted_scene<T> make_planted_scene(index_t h, index_t w, index_t d, std::uint64_t seed,
                                    index_t scale = 1, double noise = 0.1) {
  rng g(seed);
  std::vector<std::vector<double>> dir(5, std::vector<double>(d));
  for (auto& v : dir) {
    double n = 0;
    for (auto& x : v) x = g.normal<double>(), n += x * x;
    for (auto& x : v) x /= std::sqrt(n);
  }
  planted_scene<T> s;
  s.tokens = tensor<T, 3>::from_shape({h, w, d});
  s.region.resize(h * w);
  s.pixels = tensor<std::int32_t, 2>::from_shape({h * scale, w * scale});
  const double sigma = noise / std::sqrt(double(d));  // noise vector norm ≈ `noise`
  for (index_t y = 0; y < h; ++y)
    for (index_t x = 0; x < w; ++x) {
      const int r = planted_region(y, x, h, w);
      s.region[y * w + x] = r;
      double n = 0;
      T* z = &s.tokens(y, x, 0);
      for (index_t c = 0; c < d; ++c) {
        const double v = dir[r][c] + sigma * g.normal<double>();
        z[c] = T(v);
        n += v * v;
      }
      for (index_t c = 0; c < d; ++c) z[c] = T(double(z[c]) / std::sqrt(n));
      for (index_t py = y * scale; py < (y + 1) * scale; ++py)
        for (index_t px = x * scale; px < (x + 1) * scale; ++px)
          s.pixels(py, px) = r < 2 ? r : ((py + px) % 2 ? -1 : 255);
    }
  return s;
}

}  // namespace zss::test
