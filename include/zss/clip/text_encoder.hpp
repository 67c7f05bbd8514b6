// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/clip/text_encoder.hpp
 * mini-CLIP's text encoder, forward and backward (DESIGN.md §4, the learned teacher):
 *
 *     x_b = (1/n_b) Σ_{t ∈ caption b} E[t]      mean of the token embeddings   (B × E)
 *     y_b = W x_b + c                            linear projection to D          (B × D)
 *     t_b = n(y_b)                               L2 normalisation                (B × D)
 *
 * Legend: B captions, V vocabulary entries, E token-embedding width, D embedding width,
 * n_b tokens of caption b; captions are one flat token array with B + 1 offsets.
 *
 * Backward (adds into every gradient): `dy = (dt − t⟨t, dt⟩)/‖y‖` (nn/normalize.hpp),
 * `dW += dyᵀ x`, `dc += Σ dy`, `dx = dy W` (nn/linear.hpp), `dE[t] += dx_b / n_b` for every
 * token of caption b. The scatter into dE runs on one thread in caption order: deterministic
 * and independent of `threads`. Mean pooling is a bag of words: word order is invisible
 * (that is the point of `name_tokens::words`, see vocabulary.hpp).
 *
 * Parameters (`text_encoder_ids::declare`): `<prefix>embedding` (V, E), `<prefix>proj.weight`
 * (D, E), `<prefix>proj.bias` (D).
 */
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "zss/core/aligned.hpp"
#include "zss/core/check.hpp"
#include "zss/core/eigen_map.hpp"
#include "zss/core/param_buffer.hpp"
#include "zss/core/random.hpp"
#include "zss/core/tensor.hpp"
#include "zss/nn/linear.hpp"
#include "zss/nn/normalize.hpp"

namespace zss::clip {

/// Views of the text encoder's parameters.
template <real_scalar T>
struct text_encoder_params {
  matrix_ref<const T> embedding;  ///< V × E token embeddings
  linear_params<T> proj;          ///< W (D × E), c (D)
};

/// Gradient accumulators (add into); a null `dembedding.data` skips the embeddings.
template <real_scalar T>
struct text_encoder_grads {
  matrix_ref<T> dembedding;  ///< V × E
  linear_grads<T> proj;      ///< dW (D × E), dc (D)
};

/// Ids of the text encoder's tensors in a `param_buffer`.
struct text_encoder_ids {
  index_t vocabulary = 0, width = 0, dim = 0;  ///< V, E, D
  index_t embedding = 0, proj_w = 0, proj_b = 0;

  /// Declares the three tensors in `buf` (before `allocate()`) behind `prefix`.
  template <real_scalar T>
  static text_encoder_ids declare(param_buffer<T>& buf, index_t vocabulary, index_t width,
                                  index_t dim, const std::string& prefix = "text.") {
    require(vocabulary > 0 && width > 0 && dim > 0,
            "clip::text_encoder_ids: vocabulary, width and dim must be >= 1");
    text_encoder_ids ids;
    ids.vocabulary = vocabulary, ids.width = width, ids.dim = dim;
    ids.embedding = buf.add(prefix + "embedding", {vocabulary, width});
    ids.proj_w = buf.add(prefix + "proj.weight", {dim, width});
    ids.proj_b = buf.add(prefix + "proj.bias", {dim});
    return ids;
  }
  template <real_scalar T>
  text_encoder_params<T> params(const param_buffer<T>& buf) const {
    return {{buf.value(embedding), vocabulary, width},
            {{buf.value(proj_w), dim, width}, buf.value(proj_b)}};
  }
  template <real_scalar T>
  text_encoder_grads<T> grads(param_buffer<T>& buf) const {
    return {{buf.grad(embedding), vocabulary, width},
            {{buf.grad(proj_w), dim, width}, buf.grad(proj_b)}};
  }
  /// Token embeddings N(0, 1) (as CLIP's nn.Embedding), W Xavier-uniform-like N(0, 1/E), c = 0;
  /// tensor i draws from stream `stream + i`.
  template <real_scalar T>
  void init(param_buffer<T>& buf, std::uint64_t seed, std::uint64_t stream = 0) const {
    rng ge(seed, stream);
    T* e = buf.value(embedding);
    for (index_t i = 0; i < vocabulary * width; ++i) e[i] = T(ge.normal<double>());
    rng gw(seed, stream + 1);
    const double sd = 1.0 / std::sqrt(double(width));
    T* w = buf.value(proj_w);
    for (index_t i = 0; i < dim * width; ++i) w[i] = T(sd * gw.normal<double>());
    std::fill_n(buf.value(proj_b), dim, T(0));
  }
};

/// What backward needs: the pooled x, the projection y, the normalised t and the norms.
template <real_scalar T>
struct text_encoder_cache {
  aligned_vector<T> pooled;   ///< B × E
  aligned_vector<T> proj;     ///< B × D (before normalisation)
  aligned_vector<T> dproj;    ///< B × D scratch
  aligned_vector<T> dpooled;  ///< B × E scratch
  normalize_cache<T> norm;
  index_t batch = 0;
};

namespace detail {
inline void text_check_tokens(std::string_view where, std::span<const std::int32_t> tokens,
                              std::span<const index_t> offsets, index_t vocabulary) {
  require(offsets.size() >= 2 && offsets.front() == 0 && offsets.back() == tokens.size(),
          std::string(where) + ": offsets must be B + 1 >= 2 entries from 0 to the " +
              std::to_string(tokens.size()) + " tokens");
  for (index_t b = 0; b + 1 < offsets.size(); ++b)
    require(offsets[b] < offsets[b + 1], std::string(where) + ": caption " + std::to_string(b) +
                                             " is empty (offsets " + std::to_string(offsets[b]) +
                                             ", " + std::to_string(offsets[b + 1]) + ")");
  for (index_t i = 0; i < tokens.size(); ++i)
    require(tokens[i] >= 0 && index_t(tokens[i]) < vocabulary,
            std::string(where) + ": token " + std::to_string(i) + " has id " +
                std::to_string(tokens[i]) + ", outside [0, " + std::to_string(vocabulary) + ")");
}
}  // namespace detail

/**
 * Forward: unit text embeddings of B captions.
 * @param out     B × D (overwritten).
 * @param cache   filled for backward (resized).
 * @param tokens  all captions' token ids, concatenated.
 * @param offsets B + 1 offsets into `tokens`; every caption has ≥ 1 token.
 * @param p       the parameters.
 * @throws std::invalid_argument on bad offsets, ids outside the vocabulary, mismatched shapes.
 */
template <real_scalar T>
void text_encoder_forward(matrix_ref<T> out, text_encoder_cache<T>& cache,
                          std::span<const std::int32_t> tokens, std::span<const index_t> offsets,
                          const text_encoder_params<T>& p, int threads = 0) {
  eigen_single_thread_guard guard;  // one thread pool: ours (nn/detail/panel_gemm.hpp)
  constexpr const char* where = "clip::text_encoder_forward";
  const index_t V = p.embedding.rows, E = p.embedding.cols, D = p.proj.W.rows;
  detail::text_check_tokens(where, tokens, offsets, V);
  check_extent(where, "columns of proj.weight", p.proj.W.cols, "embedding width E", E);
  const index_t B = offsets.size() - 1;
  check_shape(where, "out", out, B, D);
  cache.batch = B;
  cache.pooled.assign(B * E, T(0));
  cache.proj.resize(B * D);
  for (index_t b = 0; b < B; ++b) {
    T* x = cache.pooled.data() + b * E;
    for (index_t i = offsets[b]; i < offsets[b + 1]; ++i)
      simd::axpy(T(1), p.embedding.row(index_t(tokens[i])), x, E);
    simd::scale(T(1) / T(offsets[b + 1] - offsets[b]), x, E);
  }
  linear_forward(matrix_ref<T>(cache.proj.data(), B, D),
                 matrix_ref<const T>(cache.pooled.data(), B, E), p.proj, threads);
  normalize_rows_forward(out, cache.norm, matrix_ref<const T>(cache.proj.data(), B, D),
                         normalize_eps<T>, threads);
}

/**
 * Backward: **adds** the parameter gradients of `dout = ∂L/∂t` into `g`.
 * @param g       gradient accumulators.
 * @param dout    B × D upstream gradient.
 * @param cache   from the forward.
 * @param out     B × D the forward's output.
 * @param tokens, offsets, p  as in the forward.
 */
template <real_scalar T>
void text_encoder_backward(const text_encoder_grads<T>& g, const_matrix_ref<T> dout,
                           text_encoder_cache<T>& cache, const_matrix_ref<T> out,
                           std::span<const std::int32_t> tokens, std::span<const index_t> offsets,
                           const text_encoder_params<T>& p, int threads = 0) {
  eigen_single_thread_guard guard;  // one thread pool: ours (nn/detail/panel_gemm.hpp)
  constexpr const char* where = "clip::text_encoder_backward";
  const index_t V = p.embedding.rows, E = p.embedding.cols, D = p.proj.W.rows;
  detail::text_check_tokens(where, tokens, offsets, V);
  const index_t B = offsets.size() - 1;
  check_extent(where, "cached captions", cache.batch, "captions", B);
  check_shape(where, "dout", dout, B, D);
  check_shape(where, "out", out, B, D);
  cache.dproj.assign(B * D, T(0));
  normalize_rows_backward(matrix_ref<T>(cache.dproj.data(), B, D), dout, cache.norm, out, threads);
  cache.dpooled.assign(B * E, T(0));
  linear_backward(g.dembedding.data ? matrix_ref<T>(cache.dpooled.data(), B, E) : matrix_ref<T>(),
                  g.proj, matrix_ref<const T>(cache.dproj.data(), B, D),
                  matrix_ref<const T>(cache.pooled.data(), B, E), p.proj, threads);
  if (!g.dembedding.data) return;
  check_shape(where, "dembedding", g.dembedding, V, E);
  for (index_t b = 0; b < B; ++b) {
    const T s = T(1) / T(offsets[b + 1] - offsets[b]);
    for (index_t i = offsets[b]; i < offsets[b + 1]; ++i)
      simd::axpy(s, cache.dpooled.data() + b * E, g.dembedding.row(index_t(tokens[i])), E);
  }
}

}  // namespace zss::clip
