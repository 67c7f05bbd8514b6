// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/toy/text_embeddings.hpp
 * The toy world's "text embeddings" of the 21 class names (DESIGN.md §4).
 *
 * `t_k = n(a·e_colour(k) + a·e_texture(k) + b·r_k)` for object classes and `t_0 = n(r_0)` for
 * background, from fixed seeded Gaussian vectors with entries N(0, 1/D) (so each has norm ≈ 1).
 * The class-own part `r_k` means an unseen class's embedding cannot be derived from the seen
 * classes' embeddings alone — as with real CLIP text embeddings.
 */
#include <cstdint>

#include "zss/core/check.hpp"
#include "zss/core/random.hpp"
#include "zss/core/tensor.hpp"
#include "zss/nn/normalize.hpp"
#include "zss/toy/classes.hpp"

namespace zss::toy {

struct text_options {
  index_t dim = 64;     ///< D
  double shared = 1.0;  ///< a: weight of the colour and texture parts
  double own = 0.6;     ///< b: weight of the class-own part
  std::uint64_t seed = 0;
};

/// 21 × D unit rows, row k the embedding of class k.
template <real_scalar T = float>
tensor<T, 2> make_text_embeddings(const text_options& p) {
  require(p.dim >= 2, "toy::make_text_embeddings: dim must be >= 2, got " + std::to_string(p.dim));
  require(p.own > 0, "toy::make_text_embeddings: the class-own weight b must be > 0");
  const index_t D = p.dim;
  rng g(p.seed, 0x7e47);  // the text stream of the world's seed
  const double sd = 1.0 / std::sqrt(double(D));
  auto gaussian_rows = [&](index_t n) {
    tensor<double, 2> m = tensor<double, 2>::from_shape({n, D});
    for (auto& v : m) v = g.normal() * sd;
    return m;
  };
  const auto e_colour = gaussian_rows(colour_count), e_texture = gaussian_rows(texture_count),
             r = gaussian_rows(class_count);
  tensor<double, 2> t = tensor<double, 2>::from_shape({class_count, D});
  for (index_t k = 0; k < class_count; ++k)
    for (index_t d = 0; d < D; ++d) {
      if (k == 0) {
        t(k, d) = r(k, d);
      } else {
        const auto c = colour_of(std::int32_t(k)), x = index_t(texture_of(std::int32_t(k)));
        t(k, d) = p.shared * (e_colour(c, d) + e_texture(x, d)) + p.own * r(k, d);
      }
    }
  t = normalize_rows(t);
  tensor<T, 2> out = tensor<T, 2>::from_shape({class_count, D});
  std::copy(t.begin(), t.end(), out.begin());
  return out;
}

}  // namespace zss::toy
