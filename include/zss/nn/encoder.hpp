// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/nn/encoder.hpp
 * The compact per-pixel encoder of DESIGN.md §3 (the student), forward and backward.
 *
 * Legend: B images, H × W input pixels, C_in input channels (3), h × w feature grid
 * (H, W divided by the output stride, rounding as a padded 3×3 convolution does), P = h·w,
 * D embedding width.
 *
 * Net (defaults = DESIGN §3): conv3×3 3→32 s1, 32→64 s2, 64→64 s1, 64→128 s2, 128→128 s1, each
 * with padding 1 and a ReLU, then a 1×1 projection 128→D (no ReLU); output stride 4, 286,016
 * parameters at D = 64. Widths, strides, kernel size and D are configurable (`encoder_options`).
 * Layout NHWC (see conv2d.hpp): images `B × H × W × C_in`, features `B × P × D` — the row-major
 * per-image `P × D` rows every loss of the library takes.
 *
 * Parameters live in a `param_buffer<T>` (named views): the encoder's own, or one it shares with
 * other modules (the trainer keeps every trained tensor in one buffer, STYLE §5), its names then
 * behind a prefix. Names: `conv1.weight` `(3, 3, 3, 32)`,
 * `conv1.bias` `(32)`, …, `proj.weight` `(1, 1, 128, D)`, `proj.bias` `(D)`; weights are
 * `(kh, kw, C, C_out)`. Optional normalisation (`norm_groups` > 0): GroupNorm after each k×k
 * conv, before the ReLU, with `normL.weight` / `normL.bias` `(C_l)` after layer L's conv entries.
 * `encoder_init` draws He-normal weights from a seed (stream = layer index) and zero biases.
 *
 * Threads: each image runs through all layers on one thread (`parallel_for` over B; cache
 * friendly: one image's activations stay in L2), GEMMs single-threaded. Backward accumulates
 * weight gradients in one flat per-thread buffer (each thread a contiguous range of images,
 * `parallel_for_ranges`; a Winograd layer's transformed gradient summed over the range and
 * transformed back once) and adds them into `params.grads()` in thread order. Determinism: the
 * features are bitwise independent of the thread count; the parameter gradients are bitwise
 * reproducible for a fixed thread count and differ between thread counts only by float rounding.
 * The cache is sized on the first call for a (B, H, W, threads) and reused: no allocation per step
 * afterwards in zss code (Eigen's GEMM may still take its packing buffers from the heap inside a
 * product; glibc serves those from the warm heap after step 1).
 *
 * Convolutions: stride-1 3×3 layers with ≥ 8 channels in and out (layers 3 and 5 of the default
 * net) run their forward, input gradient and weight gradient by Winograd F(2×2, 3×3)
 * (nn/winograd.hpp; 2.25× fewer multiply–adds), every other layer by im2col + the
 * register-blocked GEMM (conv2d.hpp). `encoder_cache::winograd` = false selects the direct form
 * everywhere; the two agree to float rounding (tests/test_nn_encoder.cpp checks both against the
 * reference).
 *
 * Speed (bench/bench_encoder.cpp, `BM_EncoderStep`): forward 3.80 GFLOP and backward 7.50 GFLOP
 * per batch of 16 images 64×64 in the direct form's count; bench/README.md has the timings
 * with and without Winograd.
 */
#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "zss/core/aligned.hpp"
#include "zss/core/check.hpp"
#include "zss/core/eigen_map.hpp"
#include "zss/core/parallel.hpp"
#include "zss/core/param_buffer.hpp"
#include "zss/core/tensor.hpp"
#include "zss/nn/conv2d.hpp"
#include "zss/nn/group_norm.hpp"
#include "zss/nn/init.hpp"
#include "zss/nn/relu.hpp"
#include "zss/nn/winograd.hpp"

namespace zss {

/// Architecture of the encoder (defaults: DESIGN §3).
struct encoder_options {
  index_t in_channels = 3;                               ///< C_in
  std::vector<index_t> widths = {32, 64, 64, 128, 128};  ///< output channels of the k×k conv layers
  std::vector<index_t> strides = {1, 2, 1, 2, 1};        ///< their strides (same count as widths)
  index_t kernel = 3;                                    ///< k (odd); padding k/2
  index_t embed_dim = 64;                                ///< D, output of the 1×1 projection
  /// 0 = no normalisation (DESIGN §3's default net); G > 0 = GroupNorm with G groups after every
  /// k×k conv, before its ReLU (group_norm.hpp; γ = 1, β = 0 at init). Must divide every width.
  index_t norm_groups = 0;

  /// Throws `std::invalid_argument` describing the first inconsistency.
  void validate() const {
    require(in_channels > 0, "encoder_options: in_channels must be > 0");
    require(embed_dim > 0, "encoder_options: embed_dim must be > 0");
    require(!widths.empty(), "encoder_options: at least one conv layer is needed");
    require(widths.size() == strides.size(), "encoder_options: " + std::to_string(widths.size()) +
                                                 " widths but " + std::to_string(strides.size()) +
                                                 " strides");
    require(kernel % 2 == 1, "encoder_options: kernel must be odd, got " + std::to_string(kernel));
    for (std::size_t i = 0; i < widths.size(); ++i) {
      require(widths[i] > 0, "encoder_options: widths[" + std::to_string(i) + "] is 0");
      require(strides[i] > 0, "encoder_options: strides[" + std::to_string(i) + "] is 0");
      require(norm_groups == 0 || widths[i] % norm_groups == 0,
              "encoder_options: widths[" + std::to_string(i) + "] (" + std::to_string(widths[i]) +
                  ") is not a multiple of norm_groups (" + std::to_string(norm_groups) + ")");
    }
  }
  /// Product of the strides (4 for the default net).
  index_t output_stride() const noexcept {
    index_t s = 1;
    for (auto x : strides) s *= x;
    return s;
  }
  /// Number of layers including the projection.
  index_t layers() const noexcept { return widths.size() + 1; }
  /// Feature grid `{h, w}` of an `H × W` image (padded k×k convolutions; the 1×1 projection
  /// keeps the size).
  std::array<index_t, 2> output_grid(index_t H, index_t W) const {
    index_t h = H, w = W;
    for (std::size_t i = 0; i < widths.size(); ++i) {
      const auto g = conv2d_geometry::square(h, w, 1, kernel, strides[i], kernel / 2);
      h = g.out_h(), w = g.out_w();
    }
    return {h, w};
  }
};

/**
 * The encoder's architecture and its parameters: ids of named tensors in a `param_buffer`
 * (weights and gradients in one flat buffer), either its own or a shared one.
 */
template <real_scalar T>
struct encoder {
  encoder_options config;

 private:
  std::unique_ptr<param_buffer<T>> own_;  // the buffer of a stand-alone encoder

 public:
  param_buffer<T>& params;                  ///< the buffer holding the tensors below
  std::vector<index_t> weight_id, bias_id;  ///< per layer, ids into `params`
  std::vector<index_t> norm_weight_id,
      norm_bias_id;  ///< per k×k layer when `config.norm_groups` > 0
  /// The encoder's tensors are `params`' scalars `[first_scalar, first_scalar + scalars)` (with
  /// alignment gaps): the whole buffer for a stand-alone encoder.
  index_t first_scalar = 0, scalars = 0;

  /// A stand-alone encoder: declares and allocates its own buffer (all zero; call `encoder_init`).
  explicit encoder(encoder_options cfg = {})
      : config(std::move(cfg)), own_(std::make_unique<param_buffer<T>>()), params(*own_) {
    declare("");
    params.allocate();
  }
  /**
   * An encoder whose tensors are declared in `shared` under `prefix` (e.g. "encoder."). The
   * caller declares whatever else the buffer holds, then calls `shared.allocate()` before any
   * use (views are ids, valid once allocated).
   * @throws std::invalid_argument when `shared` is already allocated or the options are invalid.
   */
  encoder(encoder_options cfg, param_buffer<T>& shared, const std::string& prefix)
      : config(std::move(cfg)), params(shared) {
    declare(prefix);
  }
  encoder(const encoder&) = delete;  // views and ids refer to the buffer; copy explicitly if needed
  encoder& operator=(const encoder&) = delete;

  index_t layers() const noexcept { return config.layers(); }
  index_t out_channels(index_t l) const noexcept {
    return l + 1 == config.layers() ? config.embed_dim : config.widths[l];
  }
  index_t in_channels(index_t l) const noexcept {
    return l == 0 ? config.in_channels : config.widths[l - 1];
  }

  /// Geometry of layer `l` for an `H × W` input image.
  conv2d_geometry geometry(index_t l, index_t H, index_t W) const {
    index_t h = H, w = W;
    for (index_t i = 0; i < l; ++i) {
      const auto g = geometry_at(i, h, w);
      h = g.out_h();
      w = g.out_w();
    }
    return geometry_at(l, h, w);
  }
  /// Feature grid `{h, w}` for an `H × W` image.
  std::array<index_t, 2> output_grid(index_t H, index_t W) const {
    return config.output_grid(H, W);
  }
  /// Forward FLOPs (2 per multiply-add, biases excluded) of one `H × W` image.
  double forward_flops(index_t H, index_t W) const {
    double f = 0;
    for (index_t l = 0; l < layers(); ++l) {
      const auto g = geometry(l, H, W);
      f += 2.0 * double(g.out_pixels()) * double(g.patch()) * double(out_channels(l));
    }
    return f;
  }

 private:
  void declare(const std::string& prefix) {
    config.validate();
    index_t c = config.in_channels;
    const index_t first = params.entries().size();
    for (index_t l = 0; l < config.layers(); ++l) {
      const bool proj = l + 1 == config.layers();
      const index_t k = proj ? 1 : config.kernel, co = out_channels(l);
      const std::string name =
          prefix + (proj ? std::string("proj") : "conv" + std::to_string(l + 1));
      weight_id.push_back(params.add(name + ".weight", {k, k, c, co}));
      bias_id.push_back(params.add(name + ".bias", {co}));
      if (!proj && config.norm_groups > 0) {
        norm_weight_id.push_back(
            params.add(prefix + "norm" + std::to_string(l + 1) + ".weight", {co}));
        norm_bias_id.push_back(params.add(prefix + "norm" + std::to_string(l + 1) + ".bias", {co}));
      }
      c = co;
    }
    const auto& e = params.entries();
    first_scalar = e[first].offset;
    scalars = e.back().offset + e.back().size - first_scalar;
  }

  conv2d_geometry geometry_at(index_t l, index_t h, index_t w) const {
    if (l + 1 == config.layers()) return conv2d_geometry::square(h, w, in_channels(l), 1, 1, 0);
    return conv2d_geometry::square(h, w, in_channels(l), config.kernel, config.strides[l],
                                   config.kernel / 2);
  }
};

/**
 * He-normal weights (fan_in = kh·kw·C, stream = layer index) and zero biases from `seed`;
 * GroupNorm γ = 1, β = 0.
 * The same seed gives the same weights for float and double (drawn in double, then rounded).
 */
template <real_scalar T>
void encoder_init(encoder<T>& net, std::uint64_t seed) {
  for (index_t l = 0; l < net.layers(); ++l) {
    const auto& e = net.params.entries()[net.weight_id[l]];
    const index_t fan_in = e.shape[0] * e.shape[1] * e.shape[2];
    he_normal_init(std::span<T>(net.params.value(net.weight_id[l]), e.size), fan_in, seed, l);
    const auto& eb = net.params.entries()[net.bias_id[l]];
    constant_init(std::span<T>(net.params.value(net.bias_id[l]), eb.size), T(0));
  }
  for (index_t l = 0; l < net.norm_weight_id.size(); ++l) {
    constant_init(std::span<T>(net.params.value(net.norm_weight_id[l]), net.out_channels(l)), T(1));
    constant_init(std::span<T>(net.params.value(net.norm_bias_id[l]), net.out_channels(l)), T(0));
  }
}

/**
 * What backward needs from forward (the post-ReLU activations of every hidden layer) and the
 * per-thread workspaces. Sized on first use; reused while (B, H, W, threads) stay the same.
 */
template <real_scalar T>
struct encoder_cache {
  index_t batch = 0, height = 0, width = 0;
  int threads = 0;
  std::vector<conv2d_geometry> geom;   ///< per layer
  std::vector<aligned_vector<T>> act;  ///< per hidden layer l: B × P_l × C_l (post-ReLU)
  std::vector<aligned_vector<T>>
      pre;  ///< with GroupNorm: per hidden layer, the conv output (pre-norm)
  std::vector<aligned_vector<T>> mean,
      rstd;  ///< with GroupNorm: per hidden layer, B × G statistics
  std::vector<aligned_vector<T>> col, dcol, g0, g1,
      g2;                 ///< per thread: column tiles, activation grads
  per_thread<T> dparams;  ///< per thread: the encoder's part of the gradient buffer
  std::vector<aligned_vector<T>> wp, wtp;  ///< per layer: W and Wᵀ packed for the GEMM kernel
  std::vector<aligned_vector<T>> dy_pack;  ///< per thread: one packed tile of dY (backward)
  std::size_t tile_bytes =
      conv2d_tile_bytes;  ///< tuning knob: im2col tile size (set before first use)
  /// Stride-1 3×3 layers with ≥ 8 channels (`winograd_suits`) run their forward, input gradient
  /// and weight gradient by Winograd F(2×2, 3×3) (nn/winograd.hpp); false = the direct im2col form
  /// for every layer. Set before a forward (a backward uses its forward's choice). The two agree to
  /// rounding, not bitwise.
  bool winograd = true;
  bool reserved_winograd = false;          ///< the choice the buffers were sized for
  std::vector<aligned_vector<T>> wu, wut;  ///< per layer: Winograd filters, forward / flipped
  aligned_vector<T> wscratch;              ///< the unpacked transform while packing
  std::vector<aligned_vector<T>> wino;     ///< per thread: the Winograd V, M (dM, dU) workspace
  /// per thread: the Winograd layers' transformed weight gradients dU, summed over the thread's
  /// images and transformed into dW once (layer l's 16 · C · C_out at `wdu_offset[l]`)
  std::vector<aligned_vector<T>> wdu;
  std::vector<index_t> wdu_offset;  ///< per layer (Winograd layers only)

  /// Whether layer `l` runs by Winograd: the choice the last `reserve` (forward) saw.
  bool uses_winograd(const encoder<T>& net, index_t l) const noexcept {
    return reserved_winograd && winograd_suits<T>(geom[l], net.out_channels(l));
  }

  /// (Re)sizes for `net` on a batch of `B` images of `H × W` with `threads` threads.
  void reserve(const encoder<T>& net, index_t B, index_t H, index_t W, int nthreads) {
    if (B == batch && H == height && W == width && nthreads == threads &&
        dparams.size() == net.scalars && geom.size() == net.layers() &&
        winograd == reserved_winograd)
      return;
    batch = B, height = H, width = W, threads = nthreads, reserved_winograd = winograd;
    geom.clear();
    for (index_t l = 0; l < net.layers(); ++l) {
      geom.push_back(net.geometry(l, H, W));
      geom.back().validate("encoder: layer " + std::to_string(l + 1));
    }
    act.resize(net.layers() - 1);
    const index_t G = net.config.norm_groups;
    pre.assign(G > 0 ? net.layers() - 1 : 0, {});
    mean.assign(G > 0 ? net.layers() - 1 : 0, aligned_vector<T>(B * G));
    rstd.assign(G > 0 ? net.layers() - 1 : 0, aligned_vector<T>(B * G));
    index_t ws = 0, gmax = 0;
    for (index_t l = 0; l < net.layers(); ++l) {
      ws = std::max(ws, conv2d_workspace_size<T>(geom[l], tile_bytes));
      if (l + 1 < net.layers()) {
        const index_t n = geom[l].out_pixels() * net.out_channels(l);
        act[l].assign(B * n, T(0));
        if (G > 0) pre[l].assign(B * n, T(0));
        gmax = std::max(gmax, n);
      }
    }
    col.assign(std::size_t(nthreads), aligned_vector<T>(ws));
    dcol.assign(std::size_t(nthreads), aligned_vector<T>(ws));
    g0.assign(std::size_t(nthreads), aligned_vector<T>(gmax));
    g1.assign(std::size_t(nthreads), aligned_vector<T>(gmax));
    g2.assign(std::size_t(G > 0 ? nthreads : 0), aligned_vector<T>(gmax));
    dparams.reset(nthreads, net.scalars);
    wp.resize(net.layers());
    wtp.resize(net.layers());
    index_t dyp = 0;
    for (index_t l = 0; l < net.layers(); ++l) {
      const index_t n = uses_winograd(net, l) ? 0 : geom[l].patch() * net.out_channels(l);
      wp[l].assign(n, T(0));  // the direct form's packed weights: none for a Winograd layer
      wtp[l].assign(n, T(0));
      dyp = std::max(dyp, detail::conv2d_dy_pack_size<T>(geom[l], net.out_channels(l), tile_bytes));
    }
    dy_pack.assign(std::size_t(nthreads), aligned_vector<T>(dyp));
    wu.assign(net.layers(), {});
    wut.assign(net.layers(), {});
    index_t wmax = 0, wws = 0, wdus = 0;
    wdu_offset.assign(net.layers(), 0);
    for (index_t l = 0; l < net.layers(); ++l) {
      if (!uses_winograd(net, l)) continue;
      const index_t n = winograd_weight_size(geom[l].in_c, net.out_channels(l));
      wu[l].assign(n, T(0));
      wut[l].assign(n, T(0));
      wmax = std::max(wmax, n);
      wdu_offset[l] = wdus;
      wdus += n;
      wws = std::max(
          wws, winograd_workspace_size(geom[l], net.out_channels(l),
                                       winograd_block_tiles<T>(geom[l], net.out_channels(l))));
      const auto gb = winograd_backward_geometry(l, net);
      wws = std::max(wws, winograd_workspace_size(gb, geom[l].in_c,
                                                  winograd_block_tiles<T>(gb, geom[l].in_c)));
      wws = std::max(wws, winograd_weight_grad_workspace_size(
                              geom[l], net.out_channels(l),
                              winograd_weight_grad_block_tiles<T>(geom[l], net.out_channels(l))));
    }
    wscratch.assign(wmax, T(0));
    wino.assign(std::size_t(nthreads), aligned_vector<T>(wws));
    wdu.assign(std::size_t(nthreads), aligned_vector<T>(wdus));
  }

  /// Packs every layer's weights for this step's products: the forward's (`W`, or its Winograd
  /// transform), or the input gradient's (`Wᵀ`, or the flipped transform; none for layer 0,
  /// which has no input gradient).
  void pack_weights(const encoder<T>& net, bool backward) {
    for (index_t l = backward ? 1 : 0; l < net.layers(); ++l) {
      const T* w = net.params.value(net.weight_id[l]);
      const index_t co = net.out_channels(l);
      if (uses_winograd(net, l))
        detail::winograd_pack_weight((backward ? wut : wu)[l].data(), wscratch.data(), w,
                                     geom[l].in_c, co, backward);
      else if (backward)
        detail::conv2d_pack_weight_t(wtp[l].data(), w, geom[l].patch(), co);
      else
        detail::conv2d_pack_weight(wp[l].data(), w, geom[l].patch(), co);
    }
  }

  /// The convolution of layer `l`'s input gradient: dY (C_out channels) to dX (C_in).
  conv2d_geometry winograd_backward_geometry(index_t l, const encoder<T>& net) const {
    return conv2d_geometry::square(geom[l].out_h(), geom[l].out_w(), net.out_channels(l), 3, 1, 1);
  }
};

namespace detail {
template <real_scalar T>
void encoder_check_images(std::string_view where, const tensor<T, 4>& images,
                          const encoder<T>& net) {
  require(images.shape()[0] > 0 && images.shape()[1] > 0 && images.shape()[2] > 0,
          std::string(where) + ": images has shape " + shape_string(images.shape()) +
              ", expected a non-empty (B, H, W, " + std::to_string(net.config.in_channels) + ")");
  check_extent(where, "images.shape[3] (channels)", images.shape()[3], "config.in_channels",
               net.config.in_channels);
}
}  // namespace detail

/**
 * Forward: per-image `P × D` features of a batch.
 * @param features B × P × D (shape checked; P = h·w of `net.output_grid(H, W)`).
 * @param cache    activations for backward and workspaces (sized on first use).
 * @param images   B × H × W × C_in (NHWC).
 * @param net      the encoder.
 * @param threads  0 = OpenMP default; `features` do not depend on it.
 * @throws std::invalid_argument on shape mismatches (naming the shapes) or an image too small.
 */
template <real_scalar T>
void encoder_forward(tensor<T, 3>& features, encoder_cache<T>& cache, const tensor<T, 4>& images,
                     const encoder<T>& net, int threads = 0) {
  detail::encoder_check_images("encoder_forward", images, net);
  const index_t B = images.shape()[0], H = images.shape()[1], W = images.shape()[2];
  threads = resolve_threads(threads);
  cache.reserve(net, B, H, W, threads);
  const index_t L = net.layers(), G = net.config.norm_groups;
  check_shape("encoder_forward", "features", features,
              {B, cache.geom[L - 1].out_pixels(), net.config.embed_dim});
  const auto& pb = net.params;
  cache.pack_weights(net, false);
  eigen_single_thread_guard guard;
  parallel_for(B, threads, [&](index_t b, int t) {
    const T* in = images.data() + b * H * W * net.config.in_channels;
    for (index_t l = 0; l < L; ++l) {
      const auto& g = cache.geom[l];
      const index_t co = net.out_channels(l), n = g.out_pixels() * co;
      const bool last = l + 1 == L;
      T* out = last ? features.data() + b * n : cache.act[l].data() + b * n;
      // conv (+ bias, + ReLU unless GroupNorm follows or it is the projection) into `dst`
      const auto conv = [&](T* dst, conv2d_epilogue epi) {
        if (cache.uses_winograd(net, l)) {
          detail::winograd_conv_image(dst, in, cache.wu[l].data(), g, co, pb.value(net.bias_id[l]),
                                      epi == conv2d_epilogue::bias_relu, false,
                                      cache.wino[std::size_t(t)].data(),
                                      winograd_block_tiles<T>(g, co));
          return;
        }
        detail::conv2d_forward_image(dst, in, pb.value(net.weight_id[l]), pb.value(net.bias_id[l]),
                                     g, co, epi, cache.col[std::size_t(t)].data(),
                                     conv2d_tile_rows<T>(g, cache.tile_bytes), cache.wp[l].data());
      };
      if (!last && G > 0) {  // conv → GroupNorm → ReLU
        T* z = cache.pre[l].data() + b * n;
        conv(z, conv2d_epilogue::bias);
        detail::group_norm_forward_image(
            out, cache.mean[l].data() + b * G, cache.rstd[l].data() + b * G, z, g.out_pixels(), co,
            G, pb.value(net.norm_weight_id[l]), pb.value(net.norm_bias_id[l]), T(1e-5));
        for (index_t i = 0; i < n; ++i) out[i] = out[i] > T(0) ? out[i] : T(0);
      } else {
        conv(out, last ? conv2d_epilogue::bias : conv2d_epilogue::bias_relu);
      }
      in = out;
    }
  });
}

/**
 * Backward: **adds** `∂L/∂θ` into `net.params.grads()` given `dfeatures = ∂L/∂features`
 * (DESIGN §3; no gradient to the images). Call after `encoder_forward` with the same `images`
 * and cache. Per image: the projection's backward, then for each conv layer from the top the
 * ReLU mask (in place on the thread's activation-gradient buffer) and the conv backward
 * (columns recomputed, no input gradient for the first layer).
 * @param net       parameters (read) and gradients (adds into).
 * @param dfeatures B × P × D.
 * @param cache     from the forward.
 * @param images    B × H × W × C_in, the forward's input.
 * @param threads   0 = OpenMP default (sizes the workspaces again if it differs from forward's).
 */
template <real_scalar T>
void encoder_backward(encoder<T>& net, const tensor<T, 3>& dfeatures, encoder_cache<T>& cache,
                      const tensor<T, 4>& images, int threads = 0) {
  detail::encoder_check_images("encoder_backward", images, net);
  const index_t B = images.shape()[0], H = images.shape()[1], W = images.shape()[2];
  require(B == cache.batch && H == cache.height && W == cache.width,
          "encoder_backward: images has shape " + shape_string(images.shape()) +
              " but the cache holds a forward of (" + std::to_string(cache.batch) + ", " +
              std::to_string(cache.height) + ", " + std::to_string(cache.width) + ", ·)");
  threads = resolve_threads(threads);
  if (threads != cache.threads) {  // keep the activations, resize the per-thread parts only
    const index_t ws = cache.col.empty() ? 0 : cache.col[0].size(),
                  gm = cache.g0.empty() ? 0 : cache.g0[0].size();
    cache.col.assign(std::size_t(threads), aligned_vector<T>(ws));
    cache.dcol.assign(std::size_t(threads), aligned_vector<T>(ws));
    cache.g0.assign(std::size_t(threads), aligned_vector<T>(gm));
    cache.g1.assign(std::size_t(threads), aligned_vector<T>(gm));
    cache.g2.assign(std::size_t(net.config.norm_groups > 0 ? threads : 0), aligned_vector<T>(gm));
    const index_t dyp = cache.dy_pack.empty() ? 0 : cache.dy_pack[0].size(),
                  wws = cache.wino.empty() ? 0 : cache.wino[0].size();
    cache.dy_pack.assign(std::size_t(threads), aligned_vector<T>(dyp));
    cache.wino.assign(std::size_t(threads), aligned_vector<T>(wws));
    const index_t wdus = cache.wdu.empty() ? 0 : cache.wdu[0].size();
    cache.wdu.assign(std::size_t(threads), aligned_vector<T>(wdus));
    cache.dparams.reset(threads, net.scalars);
    cache.threads = threads;
  }
  const index_t L = net.layers(), G = net.config.norm_groups;
  check_shape("encoder_backward", "dfeatures", dfeatures,
              {B, cache.geom[L - 1].out_pixels(), net.config.embed_dim});
  cache.dparams.zero();
  const auto& pb = net.params;
  cache.pack_weights(net, true);
  eigen_single_thread_guard guard;
  const auto& entries = pb.entries();
  // Each thread runs a contiguous range of images; the Winograd layers' dU is summed over the
  // range and transformed into dW once at its end (per image, the transform was ≈ 0.1 ms of the
  // 128-channel layer's 0.75 ms weight gradient).
  parallel_for_ranges(B, threads, [&](index_t b0, index_t b1, int t) {
    T* acc = cache.dparams[t];  // the encoder's scalars, from net.first_scalar on
    T* wdu = cache.wdu[std::size_t(t)].data();
    for (index_t b = b0; b < b1; ++b) {
      T* gcur = cache.g0[std::size_t(t)].data();
      T* gnext = cache.g1[std::size_t(t)].data();
      T* col = cache.col[std::size_t(t)].data();
      T* dcol = cache.dcol[std::size_t(t)].data();
      const T* dout = nullptr;
      for (index_t l = L; l-- > 0;) {
        const auto& g = cache.geom[l];
        const index_t co = net.out_channels(l), n_out = g.out_pixels() * co;
        if (l + 1 == L) {
          dout = dfeatures.data() + b * n_out;
        } else {
          detail::relu_mask_inplace(gcur, cache.act[l].data() + b * n_out, n_out);
          dout = gcur;
          if (G > 0) {  // back through GroupNorm into the thread's third buffer
            T* dz = cache.g2[std::size_t(t)].data();
            std::fill_n(dz, n_out, T(0));
            detail::group_norm_backward_image(
                dz, acc + (entries[net.norm_weight_id[l]].offset - net.first_scalar),
                acc + (entries[net.norm_bias_id[l]].offset - net.first_scalar), gcur,
                cache.pre[l].data() + b * n_out, cache.mean[l].data() + b * G,
                cache.rstd[l].data() + b * G, g.out_pixels(), co, G,
                pb.value(net.norm_weight_id[l]));
            dout = dz;
          }
        }
        const index_t n_in = g.in_pixels() * g.in_c;
        const T* in = l == 0 ? images.data() + b * n_in : cache.act[l - 1].data() + b * n_in;
        T* din = nullptr;
        if (l > 0) {
          din = (l + 1 == L) ? gcur : gnext;
          std::fill_n(din, n_in, T(0));
        }
        T* dw = acc + (entries[net.weight_id[l]].offset - net.first_scalar);
        T* db = acc + (entries[net.bias_id[l]].offset - net.first_scalar);
        if (cache.uses_winograd(net, l)) {
          T* ws = cache.wino[std::size_t(t)].data();
          detail::conv2d_bias_grad(db, dout, g.out_pixels(), co);
          detail::winograd_weight_grad_accumulate(wdu + cache.wdu_offset[l], dout, in, g, co, ws,
                                                  winograd_weight_grad_block_tiles<T>(g, co),
                                                  b > b0);
          if (din) {  // dX += dY ⋆ flipped Wᵀ, the input gradient as a Winograd convolution
            const auto gb = cache.winograd_backward_geometry(l, net);
            detail::winograd_conv_image(din, dout, cache.wut[l].data(), gb, g.in_c,
                                        static_cast<const T*>(nullptr), false, true, ws,
                                        winograd_block_tiles<T>(gb, g.in_c));
          }
        } else {
          detail::conv2d_backward_image(din, dw, db, dout, in, pb.value(net.weight_id[l]), g, co,
                                        col, dcol, conv2d_tile_rows<T>(g, cache.tile_bytes),
                                        cache.wtp[l].data(), cache.dy_pack[std::size_t(t)].data());
        }
        if (l + 1 < L) std::swap(gcur, gnext);
      }
    }
    if (b1 == b0) return;
    for (index_t l = 0; l < L; ++l)
      if (cache.uses_winograd(net, l))
        detail::winograd_weight_gradient_transform(
            acc + (entries[net.weight_id[l]].offset - net.first_scalar),
            static_cast<const T*>(wdu + cache.wdu_offset[l]), cache.geom[l].in_c,
            net.out_channels(l));
  });
  cache.dparams.add_into(net.params.grads() + net.first_scalar);
}

}  // namespace zss
