// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/clip/image_encoder.hpp
 * mini-CLIP's image encoder, forward and backward (DESIGN.md §4, the learned teacher): a conv
 * trunk (nn/encoder.hpp), CLIP-ResNet's attention-pooling head for the CLS embedding and
 * MaskCLIP's dense tokens from the same head (attention_pool.hpp).
 *
 * Legend: B images, H × W pixels, h × w the trunk's grid, Q = h·w, C the trunk's output width,
 * A attention width, D embedding width.
 *
 *     X   = trunk(images)                       (B·Q × C; conv layers + ReLU, a 1×1 projection)
 *     c_b = n(attention_pool(X_b))              CLS embedding                       (B × D)
 *     z_bq = n(W_o (W_v x_bq + b_v) + b_o)      dense tokens (no backward needed in training;
 *                                               attention_pool.hpp has one)        (B·Q × D)
 *
 * Default trunk (`image_encoder_options`): conv3×3 3→32 s2, 32→64 s2, 64→64 s1 (ReLU), 1×1
 * 64→64: output stride 4, a 16 × 16 grid on 64 × 64 scenes — the simulated teacher's patch grid,
 * so the PLM windows {2, 4} mean the same — and ≈ 60 k parameters; the head adds ≈ 16.6 k at
 * A = D = 64.
 *
 * Parameters live in a shared `param_buffer` (the trunk's as `<prefix>trunk.…`, the head's as
 * `<prefix>pool.…`); determinism and threads as in nn/encoder.hpp.
 */
#include <string>
#include <vector>

#include "zss/clip/attention_pool.hpp"
#include "zss/core/check.hpp"
#include "zss/core/option_fields.hpp"
#include "zss/core/param_buffer.hpp"
#include "zss/core/tensor.hpp"
#include "zss/nn/encoder.hpp"
#include "zss/nn/normalize.hpp"

namespace zss::clip {

/// Architecture of the image encoder (defaults: see the file comment).
struct image_encoder_options {
  std::vector<index_t> widths = {32, 64, 64};  ///< output channels of the k×k conv layers
  std::vector<index_t> strides = {2, 2, 1};    ///< their strides
  index_t kernel = 3;                          ///< k (odd)
  index_t token_width = 64;                    ///< C, the trunk's 1×1 projection
  index_t attn_width = 64;                     ///< A
  index_t norm_groups = 0;                     ///< GroupNorm groups after each conv (0 = none)

  /// The trunk as an `encoder_options` (its embed_dim is C).
  encoder_options trunk() const {
    encoder_options e;
    e.widths = widths, e.strides = strides, e.kernel = kernel, e.embed_dim = token_width,
    e.norm_groups = norm_groups;
    return e;
  }
};

/// The image encoder's trunk and head: ids in a (shared) `param_buffer`.
template <real_scalar T>
struct image_encoder {
  image_encoder_options config;
  index_t dim = 0;  ///< D
  encoder<T> trunk;
  attention_pool_ids pool;

  /// Declares the trunk's and the head's tensors in `buf` (allocate it afterwards).
  image_encoder(const image_encoder_options& cfg, index_t D, param_buffer<T>& buf,
                const std::string& prefix = "image.")
      : config(cfg),
        dim(D),
        trunk(cfg.trunk(), buf, prefix + "trunk."),
        pool(attention_pool_ids::declare(buf, cfg.token_width, cfg.attn_width, D,
                                         prefix + "pool.")) {}
  image_encoder(const image_encoder&) = delete;
  image_encoder& operator=(const image_encoder&) = delete;

  /// He-normal trunk (encoder_init), CLIP's head init; streams from `seed`.
  void init(std::uint64_t seed) {
    encoder_init(trunk, seed);
    pool.init(trunk.params, seed ^ 0x9001u);
  }
  /// The trunk's grid `{h, w}` of an `H × W` image.
  std::array<index_t, 2> grid(index_t H, index_t W) const { return trunk.output_grid(H, W); }
  attention_pool_params<T> head() const { return pool.params(trunk.params); }
  /// Forward FLOPs of one `H × W` image (2 per multiply-add): the trunk, then the head's mean,
  /// scores and weighted sum over Q + 1 memory rows and its four C·A- or A·D-sized products.
  double forward_flops(index_t H, index_t W) const {
    const auto [h, w] = grid(H, W);
    const double Q = double(h * w), C = double(config.token_width), A = double(config.attn_width);
    return trunk.forward_flops(H, W) + Q * C +
           2.0 * (2 * (Q + 1) * C + 3 * C * A + A * double(dim));
  }
};

/// Activations the backward needs, and scratch.
template <real_scalar T>
struct image_encoder_cache {
  encoder_cache<T> trunk;
  tensor<T, 3> tokens, dtokens;  ///< B × Q × C trunk output and its gradient
  attention_pool_cache<T> pool;
  aligned_vector<T> pooled, dpooled;  ///< B × D before normalisation
  normalize_cache<T> norm;
  dense_tokens_cache<T> dense;
};

/**
 * Forward: unit CLS embeddings of a batch.
 * @param out    B × D (overwritten).
 * @param images B × H × W × 3 (NHWC; the toy's pixels as 2·(x − 0.5)).
 */
template <real_scalar T>
void image_encoder_forward(matrix_ref<T> out, image_encoder_cache<T>& cache,
                           const tensor<T, 4>& images, const image_encoder<T>& net,
                           int threads = 0) {
  const index_t B = images.shape()[0];
  const auto [h, w] = net.grid(images.shape()[1], images.shape()[2]);
  const index_t Q = h * w, C = net.config.token_width, D = net.dim;
  check_shape("clip::image_encoder_forward", "out", out, B, D);
  if (cache.tokens.shape() != std::array<std::size_t, 3>{B, Q, C})
    cache.tokens = tensor<T, 3>::from_shape({B, Q, C});
  encoder_forward(cache.tokens, cache.trunk, images, net.trunk, threads);
  cache.pooled.resize(B * D);
  attention_pool_forward(matrix_ref<T>(cache.pooled.data(), B, D), cache.pool,
                         matrix_ref<const T>(cache.tokens.data(), B * Q, C), Q, net.head(),
                         threads);
  normalize_rows_forward(out, cache.norm, matrix_ref<const T>(cache.pooled.data(), B, D),
                         normalize_eps<T>, threads);
}

/**
 * Backward: **adds** the parameter gradients of `dout = ∂L/∂out` into the buffer's gradients.
 * Call after `image_encoder_forward` with the same images, output and cache.
 */
template <real_scalar T>
void image_encoder_backward(image_encoder<T>& net, const_matrix_ref<T> dout,
                            image_encoder_cache<T>& cache, const_matrix_ref<T> out,
                            const tensor<T, 4>& images, int threads = 0) {
  const index_t B = images.shape()[0], D = net.dim;
  const index_t Q = cache.tokens.shape()[1], C = cache.tokens.shape()[2];
  check_shape("clip::image_encoder_backward", "dout", dout, B, D);
  check_extent("clip::image_encoder_backward", "cached images", cache.tokens.shape()[0], "B", B);
  cache.dpooled.assign(B * D, T(0));
  normalize_rows_backward(matrix_ref<T>(cache.dpooled.data(), B, D), dout, cache.norm, out,
                          threads);
  if (cache.dtokens.shape() != cache.tokens.shape())
    cache.dtokens = tensor<T, 3>::from_shape(cache.tokens.shape());
  cache.dtokens.fill(T(0));
  attention_pool_backward(
      matrix_ref<T>(cache.dtokens.data(), B * Q, C), net.pool.grads(net.trunk.params),
      matrix_ref<const T>(cache.dpooled.data(), B, D), cache.pool,
      matrix_ref<const T>(cache.tokens.data(), B * Q, C), Q, net.head(), threads);
  encoder_backward(net.trunk, cache.dtokens, cache.trunk, images, threads);
}

/**
 * MaskCLIP dense tokens of a batch: unit rows `z_bq` (B·Q × D, image b's at rows b·Q …) on the
 * trunk's grid, and the unit CLS embeddings `cls` (B × D) of the same forward.
 */
template <real_scalar T>
void image_encoder_dense(matrix_ref<T> tokens, matrix_ref<T> cls, image_encoder_cache<T>& cache,
                         const tensor<T, 4>& images, const image_encoder<T>& net, int threads = 0) {
  const index_t B = images.shape()[0];
  const auto [h, w] = net.grid(images.shape()[1], images.shape()[2]);
  const index_t Q = h * w, C = net.config.token_width, D = net.dim;
  check_shape("clip::image_encoder_dense", "tokens", tokens, B * Q, D);
  image_encoder_forward(cls, cache, images, net, threads);
  dense_tokens_forward(tokens, cache.dense, matrix_ref<const T>(cache.tokens.data(), B * Q, C),
                       net.head(), threads);
  normalize_cache<T> nc;
  normalize_rows_forward(tokens, nc, matrix_ref<const T>(tokens), normalize_eps<T>, threads);
}

}  // namespace zss::clip
