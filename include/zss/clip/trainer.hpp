// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/clip/trainer.hpp
 * mini-CLIP's training step (DESIGN.md §4, the learned teacher): both encoders' forward, the
 * symmetric InfoNCE with the learnable temperature, both backwards, clipping, AdamW with the
 * library's cosine schedule, the clamp of the logit scale and the queues of negatives.
 *
 * Legend: B pairs, D width, M queue length.
 *
 *     I = image_encoder(images)          (B × D unit rows)
 *     Tx = text_encoder(captions)        (B × D unit rows)
 *     L = contrastive(I, Tx, θ; text queue, image queue)
 *     dI, dTx, dθ → image_encoder_backward, text_encoder_backward
 *     clip the global gradient norm; AdamW (lr from the schedule); θ ← clamp(θ, 0, ln max_scale);
 *     push I into the image queue and Tx into the text queue (when M > 0).
 *
 * Weight decay applies to every parameter, θ included (as in the student's trainer; with λ = 0.1
 * and lr ≤ 2e-3, θ shrinks by < 0.02 % per step against Adam's steps of ~lr). Queued embeddings
 * are constants from earlier steps (MoCo-style; no momentum encoder).
 *
 * Determinism: a fixed seed and thread count give bitwise identical runs (the trunk's parameter
 * gradients depend on the thread count by rounding only, nn/encoder.hpp). `save` writes the
 * parameters, AdamW moments and step with the caller's sections atomically (io/checkpoint.hpp);
 * the queues are not saved: a loaded model is for use, not for resuming training bitwise.
 */
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "zss/clip/contrastive_loss.hpp"
#include "zss/clip/corpus.hpp"
#include "zss/clip/model.hpp"
#include "zss/core/parallel.hpp"
#include "zss/io/checkpoint.hpp"
#include "zss/loss/cls_bank.hpp"
#include "zss/optim/adamw.hpp"
#include "zss/optim/clip.hpp"
#include "zss/train/sampler.hpp"

namespace zss::clip {

/// What one step computed.
struct step_stats {
  double loss = 0;       ///< symmetric InfoNCE
  double accuracy = 0;   ///< top-1 of the matching pair, mean of both directions
  double scale = 0;      ///< the logit scale e^θ used
  double grad_norm = 0;  ///< before clipping (`step` only)
  double lr = 0;         ///< (`step` only)
};

template <real_scalar T>
class trainer {
 public:
  /// A fresh model from `seed`, a zero AdamW state, empty queues.
  trainer(const options& o, std::uint64_t seed, int threads = 0)
      : options_(checked(o)),
        model_(o.model, seed),
        text_queue_(o.train.queue, o.model.dim),
        image_queue_(o.train.queue, o.model.dim),
        seed_(seed),
        threads_(resolve_threads(threads)) {
    opt_.reset(model_.parameters().size());
  }

  const options& config() const noexcept { return options_; }
  model<T>& net() noexcept { return model_; }
  const model<T>& net() const noexcept { return model_; }
  std::uint64_t steps_done() const noexcept { return step_; }
  const adamw_state<T>& optimizer_state() const noexcept { return opt_; }

  /**
   * Zeroes the gradients, computes the loss of `batch` and **writes** its gradient into the
   * parameter gradients (θ's included). Nothing else changes: the gradient check's target.
   */
  step_stats forward_backward(const corpus_batch<T>& batch) {
    const index_t B = batch.images.shape()[0], D = model_.dim();
    check_extent("clip::trainer", "captions", batch.offsets.size(), "images + 1", B + 1);
    auto& pb = model_.parameters();
    pb.zero_grad();
    I_.resize(B * D), Tx_.resize(B * D);
    dI_.assign(B * D, T(0)), dT_.assign(B * D, T(0));
    const matrix_ref<T> I(I_.data(), B, D), Tx(Tx_.data(), B, D);
    image_encoder_forward(I, icache_, batch.images, model_.image(), threads_);
    const std::span<const std::int32_t> tokens(batch.tokens);
    const std::span<const index_t> offsets(batch.offsets);
    text_encoder_forward(Tx, tcache_, tokens, offsets, model_.text(), threads_);
    const T theta = model_.log_scale();
    queue_rows(text_queue_, tq_);
    queue_rows(image_queue_, iq_);
    const matrix_ref<const T> Qt(tq_.data(), text_queue_.size(), D),
        Qi(iq_.data(), image_queue_.size(), D);
    T loss{};
    contrastive_forward<T>(loss, lcache_, I, Tx, theta, Qt, Qi);
    T dtheta{};
    contrastive_backward<T>(matrix_ref<T>(dI_.data(), B, D), matrix_ref<T>(dT_.data(), B, D),
                            dtheta, T(1), lcache_, I, Tx, theta, Qt, Qi);
    model_.dlog_scale() += dtheta;
    image_encoder_backward(model_.image(), matrix_ref<const T>(dI_.data(), B, D), icache_, I,
                           batch.images, threads_);
    text_encoder_backward(model_.text_ids().grads(pb), matrix_ref<const T>(dT_.data(), B, D),
                          tcache_, Tx, tokens, offsets, model_.text(), threads_);
    step_stats s;
    s.loss = double(loss);
    s.accuracy = 0.5 * (lcache_.accuracy_it + lcache_.accuracy_ti);
    s.scale = std::exp(double(theta));
    return s;
  }

  /**
   * One optimiser step on `batch`: `forward_backward`, clipping, AdamW at the schedule's rate,
   * the clamp of θ, the queues.
   * @throws std::domain_error when the loss or the gradient norm is not finite.
   */
  step_stats step(const corpus_batch<T>& batch) {
    auto s = forward_backward(batch);
    auto& pb = model_.parameters();
    const std::span<T> g(pb.grads(), pb.size());
    const double clip = options_.train.clip;
    s.grad_norm = clip > 0 ? clip_grad_norm(g, clip) : grad_norm(std::span<const T>(g));
    if (!std::isfinite(s.loss) || !std::isfinite(s.grad_norm))
      throw std::domain_error("clip::trainer::step: non-finite loss (" + std::to_string(s.loss) +
                              ") or gradient norm (" + std::to_string(s.grad_norm) + ") at step " +
                              std::to_string(step_));
    s.lr = options_.train.schedule(step_);
    adamw_options ao = options_.train.adamw;
    ao.lr = s.lr;
    adamw_step(std::span<T>(pb.values(), pb.size()), std::span<const T>(g), opt_, ao);
    model_.clamp_scale();
    const index_t B = batch.images.shape()[0], D = model_.dim();
    image_queue_.push(matrix_ref<const T>(I_.data(), B, D));
    text_queue_.push(matrix_ref<const T>(Tx_.data(), B, D));
    ++step_;
    return s;
  }

  /**
   * Trains until `config().steps()` on `data`, calling `progress(step, stats)` after every step
   * (the library never prints; the callback may).
   */
  template <class Progress>
  void run(const corpus& data, Progress&& progress) {
    train::batch_sampler sampler(data.size(), std::min(options_.train.batch, data.size()), seed_);
    for (std::uint64_t s = step_; s < options_.steps(); ++s) {
      const auto batch = data.batch<T>(sampler, s, options_.train.flip);
      progress(s + 1, step(batch));
    }
  }

  /// Parameters, AdamW moments, the step and `sections`, atomically.
  void save(const std::filesystem::path& file, std::span<const checkpoint_section> sections) const {
    save_checkpoint(file, model_.parameters(), opt_, step_, sections);
  }

  /**
   * Loads a `save`d file (same architecture) into the model and optimiser; returns its sections.
   * On error nothing changes.
   */
  std::vector<checkpoint_section> load(const std::filesystem::path& file) {
    param_buffer<T> scratch = model_.parameters();
    adamw_state<T> opt;
    std::vector<checkpoint_section> sections;
    const auto step = load_checkpoint(file, scratch, opt, &sections);
    std::copy_n(scratch.values(), scratch.size(), model_.parameters().values());
    opt_ = std::move(opt);
    step_ = step;
    return sections;
  }

 private:
  static const options& checked(const options& o) {
    o.validate();
    return o;
  }
  void queue_rows(const cls_bank<T>& q, aligned_vector<T>& rows) const {
    rows.resize(q.size() * q.width());
    q.copy_to(rows.data());
  }

  options options_;
  model<T> model_;
  adamw_state<T> opt_;
  cls_bank<T> text_queue_, image_queue_;
  std::uint64_t seed_ = 0, step_ = 0;
  int threads_ = 1;
  image_encoder_cache<T> icache_;
  text_encoder_cache<T> tcache_;
  contrastive_cache<T> lcache_;
  aligned_vector<T> I_, Tx_, dI_, dT_, tq_, iq_;
};

}  // namespace zss::clip
