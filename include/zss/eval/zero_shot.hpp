// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/eval/zero_shot.hpp
 * The teacher's own zero-shot segmentation (MaskCLIP-style), the reference every student is
 * compared with: each dense token takes the class whose text embedding is most similar (dot
 * product; ties to the class listed first), upsampled to the pixels by nearest neighbour.
 *
 * Legend: h × w token grid (Q = h·w), D width, K classes, H × W pixels.
 */
#include <cstdint>
#include <limits>
#include <span>

#include "zss/core/check.hpp"
#include "zss/core/simd.hpp"
#include "zss/core/tensor.hpp"

namespace zss::eval {

/**
 * @param tokens  Q × D teacher tokens on an h × w grid (row-major).
 * @param text    K' × D text embeddings (rows indexed by the class ids).
 * @param classes the candidate class ids (rows of `text`), in tie-breaking order.
 * @returns H × W class ids.
 * @throws std::invalid_argument on an empty class list, mismatched widths or a class id outside
 *         the text rows.
 */
template <real_scalar T>
tensor<std::int32_t, 2> classify_tokens(matrix_ref<const T> tokens, index_t h, index_t w,
                                        const tensor<T, 2>& text,
                                        std::span<const std::int32_t> classes, index_t H,
                                        index_t W) {
  constexpr const char* where = "eval::classify_tokens";
  require(!classes.empty(), std::string(where) + ": empty class list");
  const index_t D = text.shape()[1];
  check_extent(where, "token width", tokens.cols, "text width", D);
  check_extent(where, "tokens", tokens.rows, "h * w", h * w);
  for (auto k : classes)
    require(k >= 0 && index_t(k) < text.shape()[0],
            std::string(where) + ": class id " + std::to_string(k) + " has no text row");
  std::vector<std::int32_t> token_label(tokens.rows);
  for (index_t q = 0; q < token_label.size(); ++q) {
    T best = -std::numeric_limits<T>::infinity();
    for (auto k : classes) {
      const T s = simd::dot(tokens.row(q), &text(index_t(k), 0), D);
      if (s > best) best = s, token_label[q] = k;
    }
  }
  tensor<std::int32_t, 2> out = tensor<std::int32_t, 2>::from_shape({H, W});
  for (index_t y = 0; y < H; ++y)
    for (index_t x = 0; x < W; ++x) out(y, x) = token_label[(y * h / H) * w + x * w / W];
  return out;
}

}  // namespace zss::eval
