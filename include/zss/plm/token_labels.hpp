// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/plm/token_labels.hpp
 * Pixel labels → token labels, and nearest-neighbour resizing of label maps
 * (DESIGN.md §2.3, the preamble and step 5).
 *
 * Legend: H × W pixel grid, h × w token grid (Q = h·w tokens), H' × W' a target grid.
 *
 * Label conventions. Pixel labels are integers: a seen class id c ≥ 0, or *ignored*: −1 or 255
 * (`token_label_options::ignore_value`, the VOC/COCO "void" value; set it to −1 to make 255 an
 * ordinary class). Any other negative value is an error. Token labels and every label map zss
 * produces use −1 (`ignore_label`) for ignored.
 *
 * Area mapping (H need not be a multiple of h, nor W of w, and H < h is allowed). Token (i, j)
 * covers the pixel-space rectangle [i·H/h, (i+1)·H/h) × [j·W/w, (j+1)·W/w); every pixel counts
 * with the area it shares with that rectangle. A token is ignored when the ignored area is
 * ≥ `ignored_fraction` (default 0.5) of its area; otherwise it takes the seen label with the
 * largest area, ties to the lowest label. The areas are computed exactly in integers (pixel
 * coordinates scaled by h and w), so the 50 % threshold and the ties are exact. When h divides
 * H and w divides W this is plain counting over H/h × W/w blocks. (Alternatives: assigning each
 * pixel to the token under its centre loses tokens when H < h and biases edge tokens; area
 * weighting is the average-pooling the teacher's patch embedding implies.)
 */
#include <algorithm>
#include <concepts>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "zss/core/check.hpp"
#include "zss/core/tensor.hpp"

namespace zss {

/// The ignored label in token labels and in every label map zss writes.
inline constexpr std::int32_t ignore_label = -1;

/// Options of `token_labels`.
struct token_label_options {
  std::int64_t ignore_value = 255;  ///< a second pixel value meaning "ignored" (−1 always is)
  double ignored_fraction =
      0.5;  ///< a token is ignored when ≥ this fraction of its area is ignored; in (0, 1]
  std::int64_t num_seen = 0;  ///< when > 0, seen labels must lie in [0, num_seen) (else an error)
};

namespace detail {

/// One pixel row (or column) overlapping a token: pixel index and shared length (in 1/n units).
struct axis_overlap {
  index_t pixel;
  std::int64_t weight;
};

/// For each of `n` token cells along an axis of `N` pixels: the pixels it overlaps with weights.
/// Coordinates are scaled by n: pixel p spans [p·n, (p+1)·n), cell i spans [i·N, (i+1)·N).
inline std::vector<std::vector<axis_overlap>> axis_overlaps(index_t N, index_t n) {
  std::vector<std::vector<axis_overlap>> out(n);
  for (index_t i = 0; i < n; ++i) {
    const index_t lo = i * N, hi = (i + 1) * N;
    for (index_t p = lo / n; p < N && p * n < hi; ++p) {
      const index_t a = std::max(lo, p * n), b = std::min(hi, (p + 1) * n);
      if (b > a) out[i].push_back({p, static_cast<std::int64_t>(b - a)});
    }
  }
  return out;
}

}  // namespace detail

/**
 * Token labels of one image (see the file comment for the rules).
 * @param out    h·w token labels, row-major over the token grid: a seen label or −1.
 * @param pixels H·W pixel labels, row-major.
 * @throws std::invalid_argument on an empty grid, `out` of the wrong size, an invalid
 *         `ignored_fraction`, a negative label other than −1, or a label ≥ `num_seen` (when set),
 *         naming the value and its pixel.
 */
template <std::integral L>
void token_labels(std::span<std::int32_t> out, const L* pixels, index_t H, index_t W, index_t h,
                  index_t w, const token_label_options& p = {}) {
  constexpr const char* where = "token_labels";
  require(H > 0 && W > 0, std::string(where) + ": pixel grid " + std::to_string(H) + " x " +
                              std::to_string(W) + " is empty");
  require(h > 0 && w > 0, std::string(where) + ": token grid " + std::to_string(h) + " x " +
                              std::to_string(w) + " is empty");
  check_extent(where, "out size", out.size(), "h * w", h * w);
  require(p.ignored_fraction > 0 && p.ignored_fraction <= 1,
          std::string(where) + ": ignored_fraction must be in (0, 1], got " +
              std::to_string(p.ignored_fraction));
  auto ignored = [&](std::int64_t v) { return v == -1 || v == p.ignore_value; };
  for (index_t i = 0; i < H * W; ++i) {
    const auto v = static_cast<std::int64_t>(pixels[i]);
    if (ignored(v)) continue;
    if (v < 0 || (p.num_seen > 0 && v >= p.num_seen) ||
        v > std::numeric_limits<std::int32_t>::max())
      throw std::invalid_argument(
          std::string(where) + ": pixel (" + std::to_string(i / W) + ", " + std::to_string(i % W) +
          ") has label " + std::to_string(v) +
          (p.num_seen > 0 ? ", outside [0, " + std::to_string(p.num_seen) + ")"
                          : ", expected a class id >= 0") +
          " (ignored pixels are -1 or " + std::to_string(p.ignore_value) + ")");
  }
  const auto rows = detail::axis_overlaps(H, h), cols = detail::axis_overlaps(W, w);
  const double area =
      static_cast<double>(H) * static_cast<double>(W);       // each token's area in scaled units
  std::vector<std::pair<std::int32_t, std::int64_t>> votes;  // (label, area), few per token
  for (index_t i = 0; i < h; ++i) {
    for (index_t j = 0; j < w; ++j) {
      votes.clear();
      std::int64_t ignored_area = 0;
      for (const auto& r : rows[i]) {
        for (const auto& c : cols[j]) {
          const auto v = static_cast<std::int64_t>(pixels[r.pixel * W + c.pixel]);
          const std::int64_t a = r.weight * c.weight;
          if (ignored(v)) {
            ignored_area += a;
            continue;
          }
          const auto label = static_cast<std::int32_t>(v);
          auto it = std::find_if(votes.begin(), votes.end(),
                                 [&](const auto& e) { return e.first == label; });
          if (it == votes.end())
            votes.emplace_back(label, a);
          else
            it->second += a;
        }
      }
      std::int32_t best = ignore_label;
      if (static_cast<double>(ignored_area) < p.ignored_fraction * area) {
        std::int64_t best_area = -1;
        for (const auto& [label, a] : votes)
          if (a > best_area || (a == best_area && label < best)) best = label, best_area = a;
      }
      out[i * w + j] = best;
    }
  }
}

/**
 * Token labels of an H × W pixel label map on an h × w token grid.
 * @returns h × w labels (seen class or −1).
 * @throws std::invalid_argument as the span overload.
 */
template <std::integral L>
tensor<std::int32_t, 2> token_labels(const tensor<L, 2>& pixels, index_t h, index_t w,
                                     const token_label_options& p = {}) {
  tensor<std::int32_t, 2> out = tensor<std::int32_t, 2>::from_shape({h, w});
  token_labels<L>(std::span<std::int32_t>(out.data(), out.size()), pixels.data(), pixels.shape()[0],
                  pixels.shape()[1], h, w, p);
  return out;
}

/**
 * Nearest-neighbour resize of a label map (up or down; DESIGN §2.3 step 5).
 * Target cell (y, x) takes source cell (⌊(y + ½)·h/H'⌋, ⌊(x + ½)·w/W'⌋): the source cell under
 * the target cell's centre (PyTorch's `nearest-exact`; for integer factors identical to plain
 * block replication). Computed in integers: ⌊(2y + 1)·h / (2H')⌋.
 * @param out  H'·W' labels (row-major).
 * @param in   h·w labels (row-major).
 * @throws std::invalid_argument on an empty grid or a wrong `out` size.
 */
template <class L>
void resize_nearest(std::span<L> out, index_t Ht, index_t Wt, std::span<const L> in, index_t h,
                    index_t w) {
  require(h > 0 && w > 0 && Ht > 0 && Wt > 0,
          "resize_nearest: empty grid (" + std::to_string(h) + " x " + std::to_string(w) + " to " +
              std::to_string(Ht) + " x " + std::to_string(Wt) + ")");
  check_extent("resize_nearest", "in size", in.size(), "h * w", h * w);
  check_extent("resize_nearest", "out size", out.size(), "H' * W'", Ht * Wt);
  std::vector<index_t> src_x(Wt);
  for (index_t x = 0; x < Wt; ++x) src_x[x] = ((2 * x + 1) * w) / (2 * Wt);
  for (index_t y = 0; y < Ht; ++y) {
    const index_t sy = ((2 * y + 1) * h) / (2 * Ht);
    for (index_t x = 0; x < Wt; ++x) out[y * Wt + x] = in[sy * w + src_x[x]];
  }
}

/// Nearest-neighbour resize of an h × w label map to H' × W' (see the span overload).
template <class L>
tensor<L, 2> resize_nearest(const tensor<L, 2>& in, index_t Ht, index_t Wt) {
  tensor<L, 2> out = tensor<L, 2>::from_shape({Ht, Wt});
  resize_nearest<L>(std::span<L>(out.data(), out.size()), Ht, Wt,
                    std::span<const L>(in.data(), in.size()), in.shape()[0], in.shape()[1]);
  return out;
}

}  // namespace zss
