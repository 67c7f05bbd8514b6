// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/clip/model.hpp
 * mini-CLIP: the image encoder, the text encoder and the log logit scale θ in one parameter
 * buffer (STYLE §5), and what a teacher reads from it (DESIGN.md §4, the learned teacher).
 *
 * Legend: B images or captions, H × W pixels, Q = h·w grid tokens, D embedding width.
 *
 * Tensors, in buffer order: `image.trunk.…` and `image.pool.…` (image_encoder.hpp),
 * `text.embedding`, `text.proj.weight`, `text.proj.bias` (text_encoder.hpp), `logit_scale`
 * (one value, θ). Initialisation from one seed: He-normal trunk, CLIP's head and text init,
 * θ₀ = ln(1/τ₀).
 *
 * Images enter as the student's do: pixels in [0, 1] → `2·(x − 0.5)` (train/toy.hpp).
 */
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "zss/clip/config.hpp"
#include "zss/clip/image_encoder.hpp"
#include "zss/clip/text_encoder.hpp"
#include "zss/clip/vocabulary.hpp"
#include "zss/core/param_buffer.hpp"
#include "zss/core/tensor.hpp"
#include "zss/toy/scenes.hpp"

namespace zss::clip {

template <real_scalar T>
class model {
 public:
  /// Declares, allocates and initialises every tensor from `seed`.
  model(const model_options& o, std::uint64_t seed)
      : options_(o),
        image_(o.image, o.dim, params_, "image."),
        text_(text_encoder_ids::declare(params_, vocabulary_size(), o.text_width, o.dim, "text.")) {
    require(o.temperature > 0 && o.max_scale >= 1,
            "clip::model: temperature must be > 0 and max_scale >= 1");
    scale_id_ = params_.add("logit_scale", {1});
    params_.allocate();
    image_.init(seed);
    text_.init(params_, seed, 0x7e47);
    *params_.value(scale_id_) = T(std::log(1 / o.temperature));
  }
  model(const model&) = delete;
  model& operator=(const model&) = delete;

  const model_options& options() const noexcept { return options_; }
  param_buffer<T>& parameters() noexcept { return params_; }
  const param_buffer<T>& parameters() const noexcept { return params_; }
  image_encoder<T>& image() noexcept { return image_; }
  const image_encoder<T>& image() const noexcept { return image_; }
  const text_encoder_ids& text_ids() const noexcept { return text_; }
  text_encoder_params<T> text() const { return text_.params(params_); }
  index_t dim() const noexcept { return options_.dim; }

  /// θ, the log logit scale.
  T log_scale() const noexcept { return *params_.value(scale_id_); }
  T& log_scale() noexcept { return *params_.value(scale_id_); }
  T& dlog_scale() noexcept { return *params_.grad(scale_id_); }
  /// θ ← min(θ, ln max_scale) (CLIP clamps after each optimiser step); also keeps θ ≥ 0.
  void clamp_scale() noexcept {
    log_scale() = std::clamp(log_scale(), T(0), T(std::log(options_.max_scale)));
  }

  /// Unit embeddings of token sequences (B × D).
  tensor<T, 2> encode_text(const std::vector<std::vector<std::int32_t>>& captions,
                           int threads = 0) const {
    std::vector<std::int32_t> tokens;
    std::vector<index_t> offsets = {0};
    for (const auto& c : captions) {
      tokens.insert(tokens.end(), c.begin(), c.end());
      offsets.push_back(tokens.size());
    }
    tensor<T, 2> out = tensor<T, 2>::from_shape({captions.size(), dim()});
    text_encoder_cache<T> cache;
    text_encoder_forward(as_matrix(out), cache, std::span<const std::int32_t>(tokens),
                         std::span<const index_t>(offsets), text(), threads);
    return out;
  }

  /// The 21 classes' zero-shot embeddings from "a photo of a {name}" (21 × D unit rows).
  tensor<T, 2> class_embeddings(name_tokens mode, int threads = 0) const {
    std::vector<std::vector<std::int32_t>> prompts;
    for (std::int32_t k = 0; k < std::int32_t(toy::class_count); ++k)
      prompts.push_back(class_prompt(k, mode));
    return encode_text(prompts, threads);
  }

 private:
  model_options options_;
  param_buffer<T> params_;  // declared before the encoders: they declare into it
  image_encoder<T> image_;
  text_encoder_ids text_;
  index_t scale_id_ = 0;
};

/// Image tensor of scenes (B × H × W × 3, pixels as 2·(x − 0.5)), image b mirrored when
/// `flips[b]` (flips may be empty).
template <real_scalar T>
tensor<T, 4> scene_images(std::span<const toy::scene* const> scenes,
                          std::span<const char> flips = {}) {
  require(!scenes.empty(), "clip::scene_images: no scenes");
  const index_t B = scenes.size(), H = scenes[0]->image.shape()[0], W = scenes[0]->image.shape()[1];
  tensor<T, 4> out = tensor<T, 4>::from_shape({B, H, W, 3});
  for (index_t b = 0; b < B; ++b) {
    const auto& im = scenes[b]->image;
    require(im.shape()[0] == H && im.shape()[1] == W,
            "clip::scene_images: scenes of different sizes");
    const bool f = !flips.empty() && flips[b];
    for (index_t y = 0; y < H; ++y)
      for (index_t x = 0; x < W; ++x)
        for (index_t c = 0; c < 3; ++c)
          out(b, y, x, c) = T(2) * (T(im(y, f ? W - 1 - x : x, c)) - T(0.5));
  }
  return out;
}

}  // namespace zss::clip
