// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/train/trainer.hpp
 * The CLIP-ZSS training step (DESIGN.md §1, §2): the student's forward, the losses of every
 * module, the backward through all of them, gradient clipping, AdamW and the CLS bank.
 *
 * Legend: B images, H × W pixels, h × w the student's feature grid, P = h·w, N = B·P rows,
 * D width, Ks seen classes, M_b pseudo classes of image b, Mt = Σ_b M_b, L = Σ_b L_b regions
 * (image b's seen classes present, then its pseudo masks; plm/targets.hpp).
 *
 * `forward_backward` runs these stages in order (each a member function below, documented with
 * its shapes); `step` adds clipping, AdamW and the bank push:
 *
 *     gather_cls           the whole batch's CLS tokens (every rank's)       (B_all × D)
 *     student_forward      R = encoder(images)                              (B × P × D)
 *     gather_targets       labels, region ids, u_l of the batch             (N, N, L × D)
 *     batch_counts         the batch's normalisers (rows, dice terms, seen regions), summed
 *     prototypes_forward   p = pool(R, regions) → Π = synthesizer(p, [c_b ; u_l])  (L × D)
 *                          P_b = Π's pseudo rows (or n(u_l))                (Mt × D)
 *     logit_losses         L_ce, L_nel over [cos(R, T_seen) ; cos(R, P_b)]  (into dR, dP)
 *     glm_loss             L_glm: InfoNCE of CLS-attention-pooled R, keys = batch CLS + bank
 *     prototypes_backward  L_syn on the seen rows of Π; dΠ = dL_syn + dP → synthesizer → dp
 *                          → region pooling → dR
 *     student_backward     encoder backward of dR into the parameter gradients
 *     reduce               losses and parameter gradients summed over the ranks
 *
 *     L = λ_ce L_ce + λ_nel L_nel + λ_glm L_glm + λ_syn L_syn
 *
 * Every loss adds into `dR` in the order above. All trained tensors (the encoder's, then the
 * synthesizer's) live in one `param_buffer` with one AdamW state (STYLE §5): one zeroing, one
 * global-norm clip, one optimiser loop, one checkpoint walk. The bank receives the batch's CLS
 * tokens after the update (it is read before: DESIGN §2.2).
 *
 * With `plm.prototypes = teacher_tokens` (an ablation) the pseudo weights are the constants
 * `n(u_l)`; the synthesizer and L_syn are not run and its gradient stays 0.
 *
 * Decisions (not fixed by the paper):
 *  - With PLM off, pseudo labels in the targets are treated as ignored (−1): the same cached
 *    targets serve every ablation arm.
 *  - Weight decay applies to every parameter (LayerNorm γ/β and biases included); it is small.
 *    A synthesizer that no loss reaches (PLM off) only decays; it is never read then.
 *  - A checkpoint (`save`) is one file: parameters, AdamW moments, the step, the CLS bank and the
 *    configuration's text; `load` restores all of them, so a resumed run continues bitwise.
 *
 * Data parallelism (train/collective.hpp, zss/dist/): `forward_backward` and `step` take a
 * `collective`; with R ranks each passes its own B_r images of a batch of B_all = Σ_r B_r (rank
 * order). Every loss is then a mean over the *batch's* counts (the losses' shard arguments), GLM's
 * keys are the batch's CLS tokens then the bank, the gradients are summed over the ranks, clipped
 * on their global norm and applied by every rank, and the bank receives the batch's CLS tokens:
 * R ranks × B images compute what one process computes with R·B images, up to rounding, and the
 * parameters stay bitwise identical on every rank. Without a collective (`single_process`) the
 * step is the one-process step, unchanged.
 *
 * Threads: every kernel takes `config().threads`; a fixed thread count gives bitwise identical
 * runs (the encoder's parameter gradients depend on the thread count by rounding only).
 */
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "zss/core/check.hpp"
#include "zss/core/fault_point.hpp"
#include "zss/core/option_fields.hpp"
#include "zss/core/parallel.hpp"
#include "zss/core/param_buffer.hpp"
#include "zss/core/tensor.hpp"
#include "zss/io/checkpoint.hpp"
#include "zss/loss/cls_bank.hpp"
#include "zss/loss/cosine_ce.hpp"
#include "zss/loss/cosine_logits.hpp"
#include "zss/loss/focal_dice.hpp"
#include "zss/loss/glm.hpp"
#include "zss/nn/encoder.hpp"
#include "zss/optim/adamw.hpp"
#include "zss/optim/clip.hpp"
#include "zss/optim/schedule.hpp"
#include "zss/plm/region_pool.hpp"
#include "zss/plm/synthesizer.hpp"
#include "zss/plm/synthesizer_loss.hpp"
#include "zss/plm/targets.hpp"
#include "zss/train/collective.hpp"
#include "zss/train/config.hpp"

namespace zss::train {

/// One batch: images and labels in the same orientation, the teacher's CLS tokens, the targets.
template <real_scalar T>
struct train_batch {
  tensor<T, 4> images;  ///< B × H × W × C (NHWC)
  tensor<T, 2> cls;     ///< B × D teacher CLS tokens
  std::vector<const image_targets<T>*>
      targets;                     ///< B (not owned): regions and u_l (flip-invariant)
  tensor<std::int32_t, 2> labels;  ///< B × P target labels on the student grid, as `images`
};

/**
 * A batch from images, CLS tokens and each image's targets. `flips[b]` mirrors image b and its
 * target labels horizontally: the one place a flip happens (regions and u_l do not change).
 * @param flips B flags, or empty (no flips).
 * @throws std::invalid_argument on mismatched counts or a null target.
 */
template <real_scalar T>
train_batch<T> make_train_batch(tensor<T, 4> images, tensor<T, 2> cls,
                                std::vector<const image_targets<T>*> targets,
                                std::span<const char> flips = {}) {
  constexpr const char* where = "make_train_batch";
  const index_t B = images.shape()[0], H = images.shape()[1], W = images.shape()[2],
                C = images.shape()[3];
  check_extent(where, "targets", targets.size(), "images", B);
  check_extent(where, "CLS rows", cls.shape()[0], "images", B);
  require(flips.empty() || flips.size() == B,
          std::string(where) + ": flips must be empty or have one flag per image");
  require(B > 0, std::string(where) + ": no images");
  for (index_t b = 0; b < B; ++b)
    require(targets[b] != nullptr,
            std::string(where) + ": targets of image " + std::to_string(b) + " are null");
  const index_t h = targets[0]->grid_h, w = targets[0]->grid_w;
  train_batch<T> out;
  out.labels = tensor<std::int32_t, 2>::from_shape({B, h * w});
  for (index_t b = 0; b < B; ++b) {
    const auto* t = targets[b];
    require(t->grid_h == h && t->grid_w == w && t->labels.size() == h * w,
            std::string(where) + ": targets of image " + std::to_string(b) + " are on a " +
                std::to_string(t->grid_h) + " x " + std::to_string(t->grid_w) +
                " grid, image 0's on " + std::to_string(h) + " x " + std::to_string(w));
    const bool f = !flips.empty() && flips[b];
    for (index_t y = 0; y < h; ++y)
      for (index_t x = 0; x < w; ++x)
        out.labels(b, y * w + x) = t->labels[y * w + (f ? w - 1 - x : x)];
    if (!f) continue;
    T* im = images.data() + b * H * W * C;
    for (index_t y = 0; y < H; ++y)
      for (index_t x = 0; x < W / 2; ++x)
        std::swap_ranges(im + (y * W + x) * C, im + (y * W + x + 1) * C,
                         im + (y * W + W - 1 - x) * C);
  }
  out.images = std::move(images);
  out.cls = std::move(cls);
  out.targets = std::move(targets);
  return out;
}

/// The losses of one step (unweighted, as computed) and the optimiser's numbers.
struct step_losses {
  double total = 0;  ///< λ-weighted sum
  double ce = 0, nel = 0, glm = 0, syn = 0;
  double grad_norm = 0;        ///< global gradient norm before clipping (`step` only)
  double lr = 0;               ///< learning rate used (`step` only)
  index_t pseudo_classes = 0;  ///< Σ_b M_b in the batch
};

template <real_scalar T>
class trainer {
 public:
  /**
   * @param cfg        the run's configuration (validated; `cfg.encoder.embed_dim` must equal D).
   * @param seen_text  Ks × D text embeddings of the seen classes (constants), in class-set order.
   * @throws std::invalid_argument on an invalid configuration or mismatched widths.
   */
  trainer(const trainer_options& cfg, const tensor<T, 2>& seen_text)
      : cfg_(checked(cfg)), seen_text_(seen_text), net_(cfg.encoder, params_, "encoder.") {
    require(seen_text.shape()[0] > 0, "trainer: no seen classes");
    check_extent("trainer", "text width", seen_text.shape()[1], "encoder embed_dim",
                 cfg.encoder.embed_dim);
    const index_t D = cfg.encoder.embed_dim;
    const index_t first_synth = params_.entries().size();
    synth_ids_ = declare_synthesizer_params(params_, D, cfg.plm.hidden, "synthesizer.");
    params_.allocate();
    synth_first_ = params_.entries()[first_synth].offset;
    synth_scalars_ = params_.size() - synth_first_;
    encoder_init(net_, cfg.seed);
    init_synthesizer_params(params_, synth_ids_, cfg.seed ^ 0x5e17u, cfg.plm.init);
    opt_.reset(params_.size());
    bank_ = cls_bank<T>(cfg.bank_size, D);
    // Every section runs on the trainer's threads.
    threads_ = resolve_threads(cfg.threads);
    cfg_.ce.threads = cfg_.nel.threads = cfg_.glm.threads = threads_;
    logits_.alpha = cfg_.ce.alpha, logits_.beta = cfg_.ce.beta, logits_.eps = cfg_.ce.eps,
    logits_.threads = threads_;
  }

  const trainer_options& config() const noexcept { return cfg_; }
  encoder<T>& student() noexcept { return net_; }
  const encoder<T>& student() const noexcept { return net_; }
  /// Every trained tensor: the encoder's ("encoder.…"), then the synthesizer's ("synthesizer.…").
  param_buffer<T>& parameters() noexcept { return params_; }
  const param_buffer<T>& parameters() const noexcept { return params_; }
  const synthesizer_param_ids& synthesizer_ids() const noexcept { return synth_ids_; }
  /// The synthesizer's part of the parameter gradients.
  std::span<const T> synthesizer_gradients() const noexcept {
    return {params_.grads() + synth_first_, synth_scalars_};
  }
  const cls_bank<T>& bank() const noexcept { return bank_; }
  const adamw_state<T>& optimizer_state() const noexcept { return opt_; }
  /// Optimiser steps taken so far (restored by `load`).
  std::uint64_t steps_done() const noexcept { return step_; }
  const tensor<T, 2>& seen_text() const noexcept { return seen_text_; }
  /// The last `forward_backward`'s region prototypes Π (L × D unit rows, the synthesizer's
  /// output; 0 rows without PLM or with `prototype_source::teacher_tokens`). Image b owns rows
  /// `[region_offsets()[b], region_offsets()[b + 1])`: its seen regions, then its pseudo ones.
  matrix_ref<const T> prototypes() const noexcept {
    const index_t D = cfg_.encoder.embed_dim;
    return {Pi_.data(), Pi_.size() / D, D};
  }
  /// B + 1 region offsets of the last `forward_backward` (see `prototypes`).
  std::span<const index_t> region_offsets() const noexcept { return region_offsets_; }

  /**
   * Zeroes the gradients, computes every enabled loss of `batch` and **writes** the gradient of
   * the weighted total into the parameter gradients. Nothing else changes (no update, no bank
   * push): this is the function the gradient check differentiates.
   * @throws std::invalid_argument on inconsistent batch shapes or targets.
   */
  step_losses forward_backward(const train_batch<T>& batch) {
    single_process one;
    return forward_backward(batch, one);
  }

  /**
   * `forward_backward` of this rank's share of a batch (see the file comment): the losses and
   * the parameter gradients it returns are the whole batch's, identical on every rank.
   */
  template <collective<T> Comm>
  step_losses forward_backward(const train_batch<T>& batch, Comm& comm) {
    return forward_backward(batch, comm, [](const char*) {});
  }

  /**
   * `forward_backward` that calls `after(name)` when each stage has finished, with the stage's
   * name ("student_forward", "gather_targets", "prototypes_forward", "logit_losses", "glm_loss",
   * "prototypes_backward", "student_backward"): the hook a benchmark times the stages with
   * (bench/bench_train_step.cpp). The library itself never times anything.
   */
  template <collective<T> Comm, class StageHook>
  step_losses forward_backward(const train_batch<T>& batch, Comm& comm, StageHook&& after) {
    const batch_shape s = check_batch(batch);
    params_.zero_grad();
    gather_cls(batch, comm);
    student_forward(batch, s);
    after("student_forward");
    gather_targets(batch, s);
    after("gather_targets");
    step_losses out;
    prototypes_forward(batch, s);
    after("prototypes_forward");
    const class_sets<T> sets = make_class_sets(s);
    batch_counts(sets, s, comm);
    logit_losses(out, sets, s);
    after("logit_losses");
    glm_loss(out, batch, s);
    after("glm_loss");
    prototypes_backward(out, batch, sets, s);
    after("prototypes_backward");
    student_backward(batch);
    after("student_backward");
    reduce(out, comm);
    const auto& m = cfg_.modules;
    out.total = m.lambda_ce * out.ce + (m.nel_on() ? m.lambda_nel * out.nel : 0.0) +
                (m.glm_on() ? m.lambda_glm * out.glm : 0.0) +
                (counts_.synth_ran && m.syn_on() ? m.lambda_syn * out.syn : 0.0);
    return out;
  }

  /**
   * One optimiser step: `forward_backward`, global-norm clipping, AdamW with the cosine
   * schedule's rate for this step, then the batch's CLS tokens enter the bank.
   * @throws std::domain_error when the loss or the gradient norm is not finite.
   */
  step_losses step(const train_batch<T>& batch) {
    single_process one;
    return step(batch, one);
  }

  /// `step` of this rank's share of a batch: the same update on every rank (file comment).
  template <collective<T> Comm>
  step_losses step(const train_batch<T>& batch, Comm& comm) {
    return step(batch, comm, [](const char*) {});
  }

  /// `step` with the stage hook of `forward_backward`, called once more with "optimizer" after
  /// clipping, AdamW and the bank push.
  template <collective<T> Comm, class StageHook>
  step_losses step(const train_batch<T>& batch, Comm& comm, StageHook&& after) {
    auto out = forward_backward(batch, comm, after);
    const std::span<T> g(params_.grads(), params_.size());
    // Clipping leaves a non-finite gradient untouched; the check below then throws.
    out.grad_norm = cfg_.clip > 0 ? clip_grad_norm(g, cfg_.clip) : grad_norm(std::span<const T>(g));
    if (!std::isfinite(out.total) || !std::isfinite(out.grad_norm))
      throw std::domain_error("trainer::step: non-finite loss (" + std::to_string(out.total) +
                              ") or gradient norm (" + std::to_string(out.grad_norm) +
                              ") at step " + std::to_string(step_));
    fault_point("trainer.step");  // test-only (core/fault_point.hpp): a kill mid-step
    out.lr = cfg_.schedule(step_);
    adamw_options ao = cfg_.adamw;
    ao.lr = out.lr;
    adamw_step(std::span<T>(params_.values(), params_.size()), std::span<const T>(g), opt_, ao);
    bank_.push(batch_cls());
    ++step_;
    after("optimizer");
    return out;
  }

  /// Text of the configuration as stored in a checkpoint ("path = value" lines).
  std::string config_text() const {
    auto c = cfg_;
    c.threads = threads_;  // the resolved count: what the results depend on
    return option_fields(c).to_text();
  }

  /**
   * Saves everything later steps depend on into one file, atomically (io/checkpoint.hpp):
   * parameters, AdamW moments, the step, the CLS bank and the configuration's text, plus
   * `extra` sections of the caller (e.g. an application's own options).
   */
  void save(const std::filesystem::path& file, std::vector<checkpoint_section> extra = {}) const {
    write_bytes_atomically(file, checkpoint(std::move(extra)));
  }

  /// The bytes `save` writes (to commit a checkpoint together with other outputs).
  std::vector<unsigned char> checkpoint(std::vector<checkpoint_section> extra = {}) const {
    extra.push_back({"trainer.config", to_bytes(config_text())});
    extra.push_back({"trainer.bank", bank_bytes()});
    return checkpoint_bytes(params_, opt_, step_, extra);
  }

  /**
   * Loads a `save`d file; returns its sections other than the trainer's own (for the caller to
   * check). On error nothing changes.
   * @throws std::invalid_argument when the file is missing, corrupt, of another architecture, or
   *         was written with a configuration that differs from this trainer's (naming the
   *         first differing field).
   */
  std::vector<checkpoint_section> load(const std::filesystem::path& file) {
    return load(detail::read_checkpoint_file(file), file.string());
  }

  /// `load` from the bytes of a checkpoint file; `name` stands for the file in messages.
  std::vector<checkpoint_section> load(std::span<const unsigned char> bytes,
                                       const std::string& name) {
    param_buffer<T> scratch =
        params_;  // validate into a copy: a failure leaves the trainer unchanged
    adamw_state<T> opt;
    std::vector<checkpoint_section> sections;
    const auto step = load_checkpoint(bytes, name, scratch, opt, &sections);
    const std::string where = "trainer::load(" + name + ")";
    const auto* cfg = find_section(sections, "trainer.config");
    const auto* bank = find_section(sections, "trainer.bank");
    require(
        cfg && bank,
        where + ": the file has no trainer configuration or bank (not written by trainer::save)");
    auto now = cfg_;
    now.threads = threads_;
    const auto diff = first_difference(from_bytes(cfg->bytes), option_fields(now));
    require(diff.empty(),
            where + ": the checkpoint was trained with another configuration: " + diff);
    cls_bank<T> restored(cfg_.bank_size, cfg_.encoder.embed_dim);
    restore_bank(restored, bank->bytes, where);
    std::copy_n(scratch.values(), scratch.size(), params_.values());
    opt_ = std::move(opt);
    step_ = step;
    bank_ = std::move(restored);
    std::vector<checkpoint_section> rest;
    for (auto& s : sections)
      if (s.name.rfind("trainer.", 0) != 0) rest.push_back(std::move(s));
    return rest;
  }

 private:
  struct batch_shape {
    index_t B, H, W, h, w, P, N, D, Ks;
  };

  static const trainer_options& checked(const trainer_options& c) {
    c.validate();
    return c;
  }

  /// Shapes of `batch` against the configuration (throws naming the mismatch).
  batch_shape check_batch(const train_batch<T>& batch) const {
    constexpr const char* where = "trainer::forward_backward";
    batch_shape s{};
    s.B = batch.images.shape()[0], s.H = batch.images.shape()[1], s.W = batch.images.shape()[2];
    s.D = cfg_.encoder.embed_dim, s.Ks = seen_text_.shape()[0];
    const auto [h, w] = net_.output_grid(s.H, s.W);
    s.h = h, s.w = w, s.P = h * w, s.N = s.B * s.P;
    check_shape(where, "cls", batch.cls, {s.B, s.D});
    check_extent(where, "targets", batch.targets.size(), "images", s.B);
    check_shape(where, "labels", batch.labels, {s.B, s.P});
    for (index_t b = 0; b < s.B; ++b) {
      const auto* t = batch.targets[b];
      require(t != nullptr,
              std::string(where) + ": targets of image " + std::to_string(b) + " are null");
      require(t->grid_h == h && t->grid_w == w,
              std::string(where) + ": targets of image " + std::to_string(b) + " are on a " +
                  std::to_string(t->grid_h) + " x " + std::to_string(t->grid_w) +
                  " grid, the student's is " + std::to_string(h) + " x " + std::to_string(w));
      check_extent(where, "seen classes of the targets", t->seen_classes, "Ks", s.Ks);
    }
    return s;
  }

  /// The batch's CLS tokens (B_all × D, rank order) and this rank's first image among them.
  template <class Comm>
  void gather_cls(const train_batch<T>& batch, Comm& comm) {
    comm.allgather_rows(cls(batch), batch_cls_, cls_offsets_);
    first_image_ = cls_offsets_[static_cast<std::size_t>(comm.rank())];
  }

  /// The batch's CLS tokens gathered by `gather_cls` (B_all × D).
  matrix_ref<const T> batch_cls() const noexcept {
    const index_t D = cfg_.encoder.embed_dim;
    return {batch_cls_.data(), batch_cls_.size() / D, D};
  }

  /**
   * What the batch's means divide by, summed over the ranks: L_ce's labelled rows, L_nel's rows
   * and dice terms, L_syn's seen regions; also the pseudo classes and whether any rank runs the
   * synthesizer. (Integers in doubles: exact, so every rank's sum is the same whatever the order.)
   */
  template <class Comm>
  void batch_counts(const class_sets<T>& sets, const batch_shape& s, Comm& comm) {
    index_t rows = 0;
    for (index_t i = 0; i < s.N; ++i) rows += labels_[i] >= 0;
    const auto nel = cfg_.modules.nel_on() ? focal_dice_count(std::span<const int>(labels_), sets)
                                           : focal_dice_counts{};
    index_t seen_regions = 0;
    if (run_synth_)
      for (auto l : syn_labels_) seen_regions += l >= 0;
    double c[6] = {double(rows),         double(nel.valid_rows),       double(nel.dice_terms),
                   double(seen_regions), double(pseudo_offsets_[s.B]), run_synth_ ? 1.0 : 0.0};
    comm.sum(std::span<double>(c));
    counts_.ce_rows = c[0];
    counts_.nel = {index_t(c[1]), index_t(c[2])};
    counts_.seen_regions = index_t(c[3]);
    counts_.pseudo_classes = index_t(c[4]);
    counts_.synth_ran = c[5] > 0;
  }

  /// The losses (each this rank's part of the batch's mean) and the parameter gradients summed
  /// over the ranks.
  template <class Comm>
  void reduce(step_losses& out, Comm& comm) {
    double l[4] = {out.ce, out.nel, out.glm, out.syn};
    comm.sum(std::span<double>(l));
    out.ce = l[0], out.nel = l[1], out.glm = l[2], out.syn = l[3];
    out.pseudo_classes = counts_.pseudo_classes;
    comm.sum(std::span<T>(params_.grads(), params_.size()));
  }

  /// R = encoder(images) into `features_` (B × P × D). (`dfeatures_` is set by logit_losses.)
  void student_forward(const train_batch<T>& batch, const batch_shape& s) {
    if (features_.shape() != std::array<std::size_t, 3>{s.B, s.P, s.D}) {
      features_ = tensor<T, 3>::from_shape({s.B, s.P, s.D});
      dfeatures_ = tensor<T, 3>::from_shape({s.B, s.P, s.D});
    }
    encoder_forward(features_, ecache_, batch.images, net_, threads_);
  }

  /**
   * The batch's labels (N class-set indices or −1; pseudo ones only with PLM), each row's region
   * (N, −1 = none), region and pseudo offsets (B + 1 each), L_syn's labels of the regions (L: the
   * seen index, −1 for pseudo regions) and the teacher's region tokens U (L × D).
   */
  void gather_targets(const train_batch<T>& batch, const batch_shape& s) {
    const bool plm = cfg_.modules.plm;
    labels_.assign(s.N, -1);
    region_ids_.assign(s.N, -1);
    region_offsets_.assign(s.B + 1, 0);
    pseudo_offsets_.assign(s.B + 1, 0);
    syn_labels_.clear();
    U_.clear();
    for (index_t b = 0; b < s.B; ++b) {
      const auto* t = batch.targets[b];
      const index_t M = plm ? t->pseudo_count : 0, L = plm ? t->regions() : 0;
      region_lut_.assign(s.Ks + t->pseudo_count, -1);
      for (index_t k = 0; k < region_lut_.size(); ++k)
        region_lut_[k] = t->region_of(std::int32_t(k));
      for (index_t p = 0; p < s.P; ++p) {
        const std::int32_t lab = batch.labels(b, p);
        const index_t row = b * s.P + p;
        if (lab < 0 || (!plm && index_t(lab) >= s.Ks)) continue;
        require(index_t(lab) < s.Ks + t->pseudo_count, "trainer::forward_backward: label " +
                                                           std::to_string(lab) + " of image " +
                                                           std::to_string(b) + " is out of range");
        labels_[row] = lab;
        if (plm) region_ids_[row] = std::int32_t(region_offsets_[b]) + region_lut_[index_t(lab)];
      }
      region_offsets_[b + 1] = region_offsets_[b] + L;
      pseudo_offsets_[b + 1] = pseudo_offsets_[b] + M;
      if (plm) {
        check_shape("trainer::forward_backward", "region tokens", t->region_tokens, {L, s.D});
        syn_labels_.insert(syn_labels_.end(), t->region_label.begin(), t->region_label.end());
        U_.insert(U_.end(), t->region_tokens.begin(), t->region_tokens.end());
      }
    }
  }

  /// First row of image b's pseudo regions among its L_b regions (they come last).
  index_t first_pseudo_region(index_t b) const noexcept {
    return region_offsets_[b + 1] - (pseudo_offsets_[b + 1] - pseudo_offsets_[b]);
  }

  /**
   * PLM forward: pooled features p (L × D) → the synthesizer's Π (L × D unit rows) with memory
   * [c_b ; u_l]; the pseudo rows of Π become the pseudo class weights Pp (Mt × D). With
   * teacher-token prototypes Pp = n(u_l) of the pseudo regions. dPp (Mt × D) = 0.
   */
  void prototypes_forward(const train_batch<T>& batch, const batch_shape& s) {
    const bool plm = cfg_.modules.plm;
    const index_t L = region_offsets_[s.B], Mt = pseudo_offsets_[s.B], D = s.D;
    run_synth_ = plm && L > 0 && cfg_.plm.prototypes == prototype_source::synthesizer;
    if (!run_synth_) Pi_.clear();
    Pp_.assign(Mt * D, T(0));
    dPp_.assign(Mt * D, T(0));
    if (run_synth_) {
      pooled_.assign(L * D, T(0));
      Pi_.assign(L * D, T(0));
      region_pool_forward(matrix_ref<T>(pooled_.data(), L, D), rpcache_, features(s),
                          std::span<const int>(region_ids_), region_pool_options{threads_});
      synthesizer_forward(matrix_ref<T>(Pi_.data(), L, D), scache_,
                          matrix_ref<const T>(pooled_.data(), L, D), cls(batch), region_tokens(s),
                          std::span<const index_t>(region_offsets_), synth_ids_.params(params_),
                          cfg_.synthesizer, threads_);
      for (index_t b = 0; b < s.B; ++b)
        std::copy_n(Pi_.data() + first_pseudo_region(b) * D,
                    (pseudo_offsets_[b + 1] - pseudo_offsets_[b]) * D,
                    Pp_.data() + pseudo_offsets_[b] * D);
    }
    if (plm && cfg_.plm.prototypes == prototype_source::teacher_tokens) {
      // The synthesizer-free ablation: a pseudo class's weight is its teacher region token, n(u_l).
      for (index_t b = 0; b < s.B; ++b) {
        const index_t Mb = pseudo_offsets_[b + 1] - pseudo_offsets_[b],
                      first = first_pseudo_region(b);
        for (index_t m = 0; m < Mb; ++m)
          normalize_row(Pp_.data() + (pseudo_offsets_[b] + m) * D, U_.data() + (first + m) * D, D);
      }
    }
  }

  /// W_b = [T_seen ; P_b] per image (cosine_logits.hpp).
  class_sets<T> make_class_sets(const batch_shape& s) {
    row_offsets_.resize(s.B + 1);
    for (index_t b = 0; b <= s.B; ++b) row_offsets_[b] = b * s.P;
    class_sets<T> sets;
    sets.row_offsets = std::span<const index_t>(row_offsets_);
    sets.seen = matrix_ref<const T>(seen_text_.data(), s.Ks, s.D);
    sets.pseudo = matrix_ref<const T>(Pp_.data(), pseudo_offsets_[s.B], s.D);
    sets.pseudo_offsets = std::span<const index_t>(pseudo_offsets_);
    return sets;
  }

  /// dP (Mt × D) when the pseudo prototypes are trained by L_ce/L_nel, else empty.
  class_set_grads<T> pseudo_grads(const batch_shape& s) {
    class_set_grads<T> dW;
    const index_t Mt = pseudo_offsets_[s.B];
    if (Mt > 0 && run_synth_ && cfg_.plm.pseudo_grad)
      dW.pseudo = matrix_ref<T>(dPp_.data(), Mt, s.D);
    return dW;
  }

  /// L_ce (fused forward/backward) and L_nel (over stored N × Kmax logits): into dR and dP.
  /// The first gradient into dR: L_ce writes it (`accumulate` false: bitwise what adding into
  /// zeros gives, without the zeroing pass), or dR is zeroed when L_ce is off.
  void logit_losses(step_losses& out, const class_sets<T>& sets, const batch_shape& s) {
    const auto& m = cfg_.modules;
    const std::span<const int> labels(labels_);
    const auto dW = pseudo_grads(s);
    if (m.lambda_ce > 0) {
      T loss{};
      cosine_ce_options ce = cfg_.ce;
      ce.accumulate = false;
      cosine_ce_forward_backward(loss, dfeatures(s), dW, ce_cache_, features(s), labels,
                                 std::span<const T>(), sets, ce, T(m.lambda_ce), counts_.ce_rows);
      out.ce = double(loss);
    } else {
      dfeatures_.fill(T(0));
    }
    if (m.nel_on()) {
      const index_t Kmax = sets.max_classes();
      S_.assign(s.N * Kmax, T(0));
      dS_.assign(s.N * Kmax, T(0));
      cosine_logits_forward(matrix_ref<T>(S_.data(), s.N, Kmax), logits_cache_, features(s), sets,
                            logits_);
      T loss{};
      const matrix_ref<const T> S(S_.data(), s.N, Kmax);
      focal_dice_forward(loss, fd_cache_, S, labels, sets, cfg_.nel, counts_.nel);
      focal_dice_backward(matrix_ref<T>(dS_.data(), s.N, Kmax), T(m.lambda_nel), fd_cache_, S,
                          labels, sets, cfg_.nel);
      cosine_logits_backward(dfeatures(s), dW, matrix_ref<const T>(dS_.data(), s.N, Kmax),
                             logits_cache_, features(s), sets, logits_);
      out.nel = double(loss);
    }
  }

  /// L_glm into dR (keys: the batch's CLS tokens, then the bank).
  void glm_loss(step_losses& out, const train_batch<T>& batch, const batch_shape& s) {
    if (!cfg_.modules.glm_on()) return;
    T loss{};
    glm_forward_backward(loss, dfeatures(s), glm_cache_, features(s), s.P, cls(batch), bank_,
                         cfg_.glm, T(cfg_.modules.lambda_glm),
                         glm_shard<T>{batch_cls(), first_image_});
    out.glm = double(loss);
  }

  /// L_syn on the seen regions' Π, plus dP on the pseudo rows → dΠ (L × D) → the synthesizer's
  /// backward (parameter gradients, dp) → region pooling's backward into dR.
  void prototypes_backward(step_losses& out, const train_batch<T>& batch, const class_sets<T>& sets,
                           const batch_shape& s) {
    if (!run_synth_) return;
    const index_t L = region_offsets_[s.B], D = s.D;
    dPi_.assign(L * D, T(0));
    const matrix_ref<const T> Pi(Pi_.data(), L, D);
    if (cfg_.modules.syn_on()) {
      T loss{};
      syn_loss_forward(loss, syn_cache_, Pi, std::span<const int>(syn_labels_), sets.seen,
                       cfg_.syn_loss, counts_.seen_regions);
      syn_loss_backward(matrix_ref<T>(dPi_.data(), L, D), T(cfg_.modules.lambda_syn), syn_cache_,
                        Pi, std::span<const int>(syn_labels_), sets.seen, cfg_.syn_loss);
      out.syn = double(loss);
    }
    for (index_t b = 0; b < s.B; ++b) {
      const index_t Mb = pseudo_offsets_[b + 1] - pseudo_offsets_[b],
                    first = first_pseudo_region(b);
      for (index_t j = 0; j < Mb * D; ++j) dPi_[first * D + j] += dPp_[pseudo_offsets_[b] * D + j];
    }
    dpooled_.assign(L * D, T(0));
    synthesizer_backward(matrix_ref<T>(dpooled_.data(), L, D), synth_ids_.grads(params_),
                         matrix_ref<const T>(dPi_.data(), L, D), scache_, Pi,
                         matrix_ref<const T>(pooled_.data(), L, D), cls(batch), region_tokens(s),
                         std::span<const index_t>(region_offsets_), synth_ids_.params(params_),
                         cfg_.synthesizer, threads_);
    region_pool_backward(dfeatures(s), matrix_ref<const T>(dpooled_.data(), L, D), rpcache_,
                         std::span<const int>(region_ids_), region_pool_options{threads_});
  }

  /// The encoder's backward of dR (adds into the parameter gradients).
  void student_backward(const train_batch<T>& batch) {
    encoder_backward(net_, dfeatures_, ecache_, batch.images, threads_);
  }

  matrix_ref<const T> features(const batch_shape& s) const { return {features_.data(), s.N, s.D}; }
  matrix_ref<T> dfeatures(const batch_shape& s) { return {dfeatures_.data(), s.N, s.D}; }
  static matrix_ref<const T> cls(const train_batch<T>& batch) {
    return {batch.cls.data(), batch.cls.shape()[0], batch.cls.shape()[1]};
  }
  matrix_ref<const T> region_tokens(const batch_shape& s) const {
    return {U_.data(), region_offsets_[s.B], s.D};
  }

  static std::vector<unsigned char> to_bytes(const std::string& s) { return {s.begin(), s.end()}; }
  static std::string from_bytes(const std::vector<unsigned char>& b) {
    return {b.begin(), b.end()};
  }
  static const checkpoint_section* find_section(const std::vector<checkpoint_section>& all,
                                                const std::string& name) {
    for (const auto& s : all)
      if (s.name == name) return &s;
    return nullptr;
  }

  /// The bank as bytes: u64 rows, then rows × D values (oldest first).
  std::vector<unsigned char> bank_bytes() const {
    const std::uint64_t n = bank_.size();
    std::vector<unsigned char> out(sizeof n + n * bank_.width() * sizeof(T));
    std::memcpy(out.data(), &n, sizeof n);
    std::vector<T> rows(n * bank_.width());
    bank_.copy_to(rows.data());
    if (!rows.empty()) std::memcpy(out.data() + sizeof n, rows.data(), rows.size() * sizeof(T));
    return out;
  }

  static void restore_bank(cls_bank<T>& bank, const std::vector<unsigned char>& bytes,
                           const std::string& where) {
    std::uint64_t n = 0;
    require(bytes.size() >= sizeof n, where + ": the bank section is truncated");
    std::memcpy(&n, bytes.data(), sizeof n);
    require(n <= bank.capacity() && bytes.size() == sizeof n + n * bank.width() * sizeof(T),
            where + ": the bank section holds " + std::to_string(bytes.size()) + " bytes, not " +
                std::to_string(n) + " rows of width " + std::to_string(bank.width()) +
                " (capacity " + std::to_string(bank.capacity()) + ")");
    std::vector<T> rows(n * bank.width());
    if (n) std::memcpy(rows.data(), bytes.data() + sizeof n, rows.size() * sizeof(T));
    bank.assign_rows(rows.data(), index_t(n));
  }

  trainer_options cfg_;
  tensor<T, 2> seen_text_;
  param_buffer<T> params_;  // declared before net_: net_ declares its tensors into it
  encoder<T> net_;
  synthesizer_param_ids synth_ids_;
  index_t synth_first_ = 0, synth_scalars_ = 0;
  adamw_state<T> opt_;
  cls_bank<T> bank_;
  std::uint64_t step_ = 0;
  int threads_ = 1;
  /// The batch's normalisers of the current step (`batch_counts`).
  struct counts {
    double ce_rows = 0;
    focal_dice_counts nel;
    index_t seen_regions = 0, pseudo_classes = 0;
    bool synth_ran = false;
  } counts_;
  aligned_vector<T> batch_cls_;       // B_all × D
  std::vector<index_t> cls_offsets_;  // R + 1
  index_t first_image_ = 0;           // this rank's first image in the batch
  cosine_logits_options logits_;      // L_nel's logits: the CE section's scales
  bool run_synth_ = false;            // this step runs the synthesizer
  // Caches and scratch, reused across steps.
  encoder_cache<T> ecache_;
  tensor<T, 3> features_, dfeatures_;
  std::vector<int> labels_, region_ids_, syn_labels_;
  std::vector<std::int32_t> region_lut_;
  std::vector<index_t> region_offsets_, pseudo_offsets_, row_offsets_;
  aligned_vector<T> U_, pooled_, dpooled_, Pi_, dPi_, Pp_, dPp_, S_, dS_;
  region_pool_cache rpcache_;
  synthesizer_cache<T> scache_;
  syn_loss_cache<T> syn_cache_;
  cosine_ce_cache<T> ce_cache_;
  cosine_logits_cache<T> logits_cache_;
  focal_dice_cache<T> fd_cache_;
  glm_cache<T> glm_cache_;
};

}  // namespace zss::train
