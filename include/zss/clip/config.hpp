// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/clip/config.hpp
 * Every number of a mini-CLIP run in one struct, with one description per field
 * (core/option_fields.hpp): captions, the two encoders, the loss and the optimisation. The seed
 * and the toy world's scenes come from the caller (the world the teacher serves).
 *
 * Defaults: CLIP's where it has one (τ₀ = 0.07, logit scale clamped at 100, AdamW β₂ = 0.98 and
 * ε = 1e-6, cosine schedule with warm-up), measured on the toy world otherwise
 * (docs/EXPERIMENTS.md, the mini-CLIP stop): the default size trains in under 2 minutes on
 * 2 cores.
 */
#include <cmath>
#include <cstdint>
#include <string>

#include "zss/clip/captions.hpp"
#include "zss/clip/image_encoder.hpp"
#include "zss/core/check.hpp"
#include "zss/core/option_fields.hpp"
#include "zss/optim/adamw.hpp"
#include "zss/optim/schedule.hpp"

namespace zss::clip {

/// The two encoders and the logit scale.
struct model_options {
  image_encoder_options image;  ///< trunk and attention-pooling head
  index_t text_width = 64;      ///< E, token-embedding width
  index_t dim = 64;             ///< D, the shared embedding width (= the toy's text width)
  double temperature = 0.07;    ///< initial τ: θ₀ = ln(1/τ) (CLIP)
  double max_scale = 100;       ///< the logit scale e^θ is clamped to at most this (CLIP)
};

/// The optimisation.
struct training_options {
  index_t corpus = 4096;  ///< pretraining scenes (indices disjoint from the toy's train/test)
  index_t batch = 64;     ///< image–caption pairs per step
  index_t queue = 0;      ///< queued embeddings of past steps as extra negatives (0 = none)
  adamw_options adamw{.lr = 2e-3, .beta1 = 0.9, .beta2 = 0.98, .eps = 1e-6, .weight_decay = 0.1};
  cosine_schedule schedule{.base_lr = 2e-3, .min_lr = 2e-5, .warmup_steps = 50, .total_steps = 600};
  double clip = 5.0;  ///< max global gradient norm (0 = off)
  bool flip = true;   ///< random horizontal flips (a mirrored scene keeps its caption)
};

/// A mini-CLIP run.
struct options {
  caption_options captions;
  model_options model;
  training_options train;

  std::uint64_t steps() const noexcept { return train.schedule.total_steps; }
  /// Throws `std::invalid_argument` naming the first bad value.
  void validate() const;
};

/**
 * The description of every field; flags carry a `clip-` prefix when nested by the example
 * (`v.nested("mini_clip.", o, "clip-")`: the trainer already has a field named "clip").
 */
template <class V>
void describe(V& v, options& o) {
  using namespace checks;
  v.nested("captions.", o.captions);
  auto& m = o.model;
  v.field("model.widths", m.image.widths, "image trunk: output channels of the conv layers",
          at_least(1), "widths");
  v.field("model.strides", m.image.strides, "image trunk: their strides", at_least(1), "strides");
  v.field("model.kernel", m.image.kernel, "image trunk: conv kernel size (odd)", at_least(1),
          "kernel");
  v.field("model.token_width", m.image.token_width, "image trunk output width C", at_least(1),
          "token-width");
  v.field("model.attn_width", m.image.attn_width, "attention-pooling width A", at_least(1),
          "attn-width");
  v.field("model.norm_groups", m.image.norm_groups, "GroupNorm groups in the trunk (0 = none)", {},
          "norm-groups");
  v.field("model.text_width", m.text_width, "token-embedding width E", at_least(1), "text-width");
  v.field("model.dim", m.dim, "embedding width D (= the toy's text width)", at_least(1));
  v.field("model.temperature", m.temperature, "initial temperature tau (logit scale 1/tau)",
          positive(), "temperature");
  v.field("model.max_scale", m.max_scale, "the logit scale is clamped to at most this", at_least(1),
          "max-scale");
  auto& t = o.train;
  v.field("train.corpus", t.corpus, "pretraining scenes", at_least(1), "corpus");
  v.field("train.batch", t.batch, "image-caption pairs per step", at_least(2), "batch");
  v.field("train.queue", t.queue, "queued past embeddings as extra negatives (0 = none)", {},
          "queue");
  v.field("train.steps", t.schedule.total_steps, "optimiser steps", at_least(1), "steps");
  v.field("train.lr", t.schedule.base_lr, "peak learning rate", positive(), "lr");
  v.field("train.min_lr", t.schedule.min_lr, "final learning rate", non_negative(), "min-lr");
  v.field("train.warmup", t.schedule.warmup_steps, "linear warm-up steps", {}, "warmup");
  v.field("train.weight_decay", t.adamw.weight_decay, "AdamW weight decay", non_negative(),
          "weight-decay");
  v.field("train.beta2", t.adamw.beta2, "AdamW beta2", interval(0, 1, false, true), "beta2");
  v.field("train.eps", t.adamw.eps, "AdamW epsilon", positive(), "adam-eps");
  v.field("train.clip", t.clip, "max global gradient norm (0 = off)", non_negative(), "grad-clip");
  v.field("train.flip", t.flip, "random horizontal flips", "flip");
}

inline void options::validate() const {
  auto copy = *this;
  option_fields(copy).validate("clip::options");
  captions.validate();
  model.image.trunk().validate();
  require(train.schedule.min_lr <= train.schedule.base_lr,
          "clip::options: train.min_lr must be <= train.lr");
  require(train.schedule.warmup_steps <= train.schedule.total_steps,
          "clip::options: train.warmup (" + std::to_string(train.schedule.warmup_steps) +
              ") must be <= train.steps (" + std::to_string(train.schedule.total_steps) + ")");
  require(std::log(model.max_scale) >= std::log(1 / model.temperature),
          "clip::options: the initial logit scale 1/temperature (" +
              readable_number(1 / model.temperature) + ") exceeds model.max_scale (" +
              readable_number(model.max_scale) + ")");
}

}  // namespace zss::clip
