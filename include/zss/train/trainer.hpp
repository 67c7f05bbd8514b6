// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/train/trainer.hpp
 * The CLIP-ZSS training step (DESIGN.md §1, §2): the student's forward, the losses of every
 * module, the backward through all of them, gradient clipping, AdamW and the CLS bank.
 *
 * Legend: B images, H × W pixels, h × w the student's feature grid, P = h·w, N = B·P rows,
 * D width, Ks seen classes, M_b pseudo classes of image b, L = Σ_b L_b regions (image b's seen
 * classes present, then its pseudo masks; train/targets.hpp).
 *
 * One step (`forward_backward`, then `step` adds the update):
 *
 *     R      = encoder(images)                                       (B × P × D)
 *     p_l    = mean of R over region l            (plm)              (L × D)
 *     Π      = synthesizer(p, memory = [c_b ; u_l])                  (L × D unit rows)
 *     L_syn  = BCE(⟨π_l, n(t_k)⟩/τ_s − δ)  over the seen regions     (plm, λ_syn)
 *     P_b    = Π rows of image b's pseudo regions  → W_b = [T_seen ; P_b]
 *     L_ce   = cosine CE of R against W_b, fused labels              (λ_ce)
 *     L_nel  = focal + dice over the same logits                     (nel, λ_nel)
 *     L_glm  = InfoNCE of the CLS-attention-pooled R, keys = batch CLS + bank   (glm, λ_glm)
 *     L      = λ_ce L_ce + λ_nel L_nel + λ_glm L_glm + λ_syn L_syn
 *
 * Backward: every loss adds into `dR` (and the CE/NEL into `dP_b` unless `pseudo_grad` is off);
 * L_syn and `dP_b` go into `dΠ`, through the synthesizer into `dp` (and its parameters), through
 * region pooling into `dR`; then the encoder's backward. Parameters: the encoder's buffer and the
 * synthesizer's buffer, each with its own AdamW state, clipped together by their global norm.
 * The bank receives the batch's CLS tokens after the update (it is read before: DESIGN §2.2).
 *
 * With `prototypes = prototype_source::teacher_tokens` (an ablation) the pseudo weights are the
 * constants `n(u_l)`; the synthesizer and L_syn are not run. The synthesizer's options and the
 * recipe that makes PLM alone work on the toy world: train/config.hpp.
 *
 * Decisions (not fixed by the paper):
 *  - With PLM off, pseudo labels in the targets are treated as ignored (−1): the same cached
 *    targets serve every ablation arm.
 *  - Weight decay applies to every parameter (LayerNorm γ/β and biases included); it is small.
 *  - The bank is not part of a checkpoint: a resumed run starts with an empty bank (it refills
 *    in `bank_size / batch` steps). Parameters, optimiser moments and the step are restored.
 *
 * Threads: every kernel takes `config.threads`; a fixed thread count gives bitwise identical
 * runs (the encoder's parameter gradients depend on the thread count by rounding only).
 */
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "zss/core/check.hpp"
#include "zss/core/parallel.hpp"
#include "zss/core/param_buffer.hpp"
#include "zss/core/tensor.hpp"
#include "zss/loss/cosine_ce.hpp"
#include "zss/loss/cosine_logits.hpp"
#include "zss/loss/focal_dice.hpp"
#include "zss/loss/glm.hpp"
#include "zss/loss/info_nce.hpp"
#include "zss/nn/encoder.hpp"
#include "zss/optim/adamw.hpp"
#include "zss/optim/checkpoint.hpp"
#include "zss/optim/clip.hpp"
#include "zss/optim/schedule.hpp"
#include "zss/plm/region_pool.hpp"
#include "zss/plm/synthesizer.hpp"
#include "zss/plm/synthesizer_loss.hpp"
#include "zss/train/config.hpp"
#include "zss/train/targets.hpp"

namespace zss::train {

/// One batch: images, the teacher's CLS tokens and each image's cached targets.
template <real_scalar T>
struct train_batch {
  tensor<T, 4> images;                           ///< B × H × W × C (NHWC), already flipped where `flipped`
  tensor<T, 2> cls;                              ///< B × D teacher CLS tokens
  std::vector<const image_targets<T>*> targets;  ///< B (not owned)
  std::vector<char> flipped;                     ///< B: the image is mirrored horizontally (empty = none)
};

/// The losses of one step (unweighted, as computed) and the optimiser's numbers.
struct step_losses {
  double total = 0;      ///< λ-weighted sum
  double ce = 0, nel = 0, glm = 0, syn = 0;
  double grad_norm = 0;  ///< global gradient norm before clipping (`step` only)
  double lr = 0;         ///< learning rate used (`step` only)
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
  trainer(const trainer_config& cfg, const tensor<T, 2>& seen_text)
      : cfg_(cfg), seen_text_(seen_text), net_(cfg.encoder) {
    cfg_.validate();
    require(seen_text.shape()[0] > 0, "trainer: no seen classes");
    check_extent("trainer", "text width", seen_text.shape()[1], "encoder embed_dim", cfg.encoder.embed_dim);
    const index_t D = cfg.encoder.embed_dim;
    encoder_init(net_, cfg.seed);
    synth_ids_ = declare_synthesizer_params(synth_, D, cfg.synth_hidden);
    synth_.allocate();
    init_synthesizer_params(synth_, synth_ids_, cfg.seed ^ 0x5e17u, cfg.synth_init);
    opt_net_.reset(net_.params.size());
    opt_syn_.reset(synth_.size());
    bank_ = cls_bank<T>(cfg.bank_size, D);
  }

  const trainer_config& config() const noexcept { return cfg_; }
  encoder<T>& student() noexcept { return net_; }
  const encoder<T>& student() const noexcept { return net_; }
  param_buffer<T>& synthesizer_buffer() noexcept { return synth_; }
  const synthesizer_param_ids& synthesizer_ids() const noexcept { return synth_ids_; }
  const cls_bank<T>& bank() const noexcept { return bank_; }
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
   * Zeroes both gradient buffers, computes every enabled loss of `batch` and **writes** the
   * gradient of the weighted total into the encoder's and the synthesizer's gradient buffers.
   * Nothing else changes (no update, no bank push): this is the function the gradient check
   * differentiates.
   * @throws std::invalid_argument on inconsistent batch shapes or targets.
   */
  step_losses forward_backward(const train_batch<T>& batch) {
    const index_t B = batch.images.shape()[0], H = batch.images.shape()[1], W = batch.images.shape()[2];
    const index_t D = cfg_.encoder.embed_dim, Ks = seen_text_.shape()[0];
    const auto [h, w] = net_.output_grid(H, W);
    const index_t P = h * w, N = B * P;
    const int threads = resolve_threads(cfg_.threads);
    const auto& mods = cfg_.modules;
    check_shape("trainer::forward_backward", "cls", batch.cls, {B, D});
    check_extent("trainer::forward_backward", "targets", batch.targets.size(), "images", B);
    require(batch.flipped.empty() || batch.flipped.size() == B,
            "trainer::forward_backward: flipped must be empty or have one flag per image");
    net_.params.zero_grad();
    synth_.zero_grad();

    // Student forward.
    if (features_.shape() != std::array<std::size_t, 3>{B, P, D}) {
      features_ = tensor<T, 3>::from_shape({B, P, D});
      dfeatures_ = tensor<T, 3>::from_shape({B, P, D});
    }
    encoder_forward(features_, ecache_, batch.images, net_, threads);
    dfeatures_.fill(T(0));
    const matrix_ref<const T> R(features_.data(), N, D);
    const matrix_ref<T> dR(dfeatures_.data(), N, D);
    const matrix_ref<const T> C(batch.cls.data(), B, D);

    // Labels, regions and the class sets of the batch.
    const bool plm = mods.plm;
    labels_.assign(N, -1);
    region_ids_.assign(N, -1);
    region_offsets_.assign(B + 1, 0);
    pseudo_offsets_.assign(B + 1, 0);
    syn_labels_.clear();
    U_.clear();
    std::vector<std::int32_t> region_lut;
    for (index_t b = 0; b < B; ++b) {
      const auto* t = batch.targets[b];
      require(t != nullptr, "trainer::forward_backward: targets of image " + std::to_string(b) + " are null");
      require(t->grid_h == h && t->grid_w == w && t->labels.size() == P,
              "trainer::forward_backward: targets of image " + std::to_string(b) + " are on a " +
                  std::to_string(t->grid_h) + " x " + std::to_string(t->grid_w) + " grid, the student's is " +
                  std::to_string(h) + " x " + std::to_string(w));
      check_extent("trainer::forward_backward", "seen classes of the targets", t->seen_classes, "Ks", Ks);
      const bool flip = !batch.flipped.empty() && batch.flipped[b];
      const index_t M = plm ? t->pseudo_count : 0, L = plm ? t->regions() : 0;
      region_lut.assign(Ks + t->pseudo_count, -1);
      for (index_t k = 0; k < region_lut.size(); ++k) region_lut[k] = t->region_of(std::int32_t(k));
      for (index_t y = 0; y < h; ++y)
        for (index_t x = 0; x < w; ++x) {
          const std::int32_t lab = t->labels[y * w + (flip ? w - 1 - x : x)];
          const index_t row = b * P + y * w + x;
          if (lab < 0 || (!plm && index_t(lab) >= Ks)) continue;
          require(index_t(lab) < Ks + t->pseudo_count, "trainer::forward_backward: label " + std::to_string(lab) +
                                                           " of image " + std::to_string(b) + " is out of range");
          labels_[row] = lab;
          if (plm) region_ids_[row] = std::int32_t(region_offsets_[b]) + region_lut[index_t(lab)];
        }
      region_offsets_[b + 1] = region_offsets_[b] + L;
      pseudo_offsets_[b + 1] = pseudo_offsets_[b] + M;
      if (plm) {
        check_shape("trainer::forward_backward", "region tokens", t->region_tokens, {L, D});
        syn_labels_.insert(syn_labels_.end(), t->region_label.begin(), t->region_label.end());
        U_.insert(U_.end(), t->region_tokens.begin(), t->region_tokens.end());
      }
    }
    const index_t L = region_offsets_[B], Mt = pseudo_offsets_[B];
    step_losses out;
    out.pseudo_classes = Mt;

    // PLM: region pooling → synthesizer → prototypes; pseudo prototypes become class weights.
    const bool run_synth = plm && L > 0 && cfg_.prototypes == prototype_source::synthesizer;
    if (!run_synth) Pi_.clear();
    Pp_.assign(Mt * D, T(0));
    dPp_.assign(Mt * D, T(0));
    const auto sparams = synth_ids_.params(synth_);
    synthesizer_options sopt;
    sopt.region_tokens = cfg_.region_tokens;
    sopt.query_residual = cfg_.synth_residual;
    const matrix_ref<const T> U(U_.data(), L, D);
    if (run_synth) {
      pooled_.assign(L * D, T(0));
      Pi_.assign(L * D, T(0));
      region_pool_forward(matrix_ref<T>(pooled_.data(), L, D), rpcache_, R, std::span<const int>(region_ids_),
                          region_pool_params{threads});
      synthesizer_forward(matrix_ref<T>(Pi_.data(), L, D), scache_, matrix_ref<const T>(pooled_.data(), L, D), C,
                          U, std::span<const index_t>(region_offsets_), sparams, sopt, threads);
      for (index_t b = 0; b < B; ++b) {
        const index_t first = region_offsets_[b + 1] - (pseudo_offsets_[b + 1] - pseudo_offsets_[b]);
        std::copy_n(Pi_.data() + first * D, (pseudo_offsets_[b + 1] - pseudo_offsets_[b]) * D,
                    Pp_.data() + pseudo_offsets_[b] * D);
      }
    }
    if (plm && cfg_.prototypes == prototype_source::teacher_tokens) {
      // The synthesizer-free ablation: a pseudo class's weight is its teacher region token, n(u_l).
      for (index_t b = 0; b < B; ++b) {
        const index_t Mb = pseudo_offsets_[b + 1] - pseudo_offsets_[b], first = region_offsets_[b + 1] - Mb;
        for (index_t m = 0; m < Mb; ++m) normalize_row(Pp_.data() + (pseudo_offsets_[b] + m) * D, U_.data() + (first + m) * D, D);
      }
    }
    row_offsets_.resize(B + 1);
    for (index_t b = 0; b <= B; ++b) row_offsets_[b] = b * P;
    class_sets<T> sets;
    sets.row_offsets = std::span<const index_t>(row_offsets_);
    sets.seen = matrix_ref<const T>(seen_text_.data(), Ks, D);
    sets.pseudo = matrix_ref<const T>(Pp_.data(), Mt, D);
    sets.pseudo_offsets = std::span<const index_t>(pseudo_offsets_);
    class_set_grads<T> dW;
    if (Mt > 0 && run_synth && cfg_.pseudo_grad) dW.pseudo = matrix_ref<T>(dPp_.data(), Mt, D);
    const std::span<const int> labels(labels_);

    // L_ce (fused forward/backward).
    if (mods.lambda_ce > 0) {
      cosine_ce_params<T> cp;
      cp.alpha = T(cfg_.alpha), cp.beta = T(cfg_.beta), cp.threads = threads;
      T loss{};
      cosine_ce_forward_backward(loss, dR, dW, ce_cache_, R, labels, std::span<const T>(), sets, cp,
                                 T(mods.lambda_ce));
      out.ce = double(loss);
    }
    // L_nel over the stored logits.
    if (mods.nel_on()) {
      const index_t Kmax = sets.max_classes();
      S_.assign(N * Kmax, T(0));
      dS_.assign(N * Kmax, T(0));
      cosine_params<T> lp;
      lp.alpha = T(cfg_.alpha), lp.beta = T(cfg_.beta), lp.threads = threads;
      cosine_logits_forward(matrix_ref<T>(S_.data(), N, Kmax), logits_cache_, R, sets, lp);
      focal_dice_params<T> fp;
      fp.threads = threads;
      T loss{};
      const matrix_ref<const T> S(S_.data(), N, Kmax);
      focal_dice_forward(loss, fd_cache_, S, labels, sets, fp);
      focal_dice_backward(matrix_ref<T>(dS_.data(), N, Kmax), T(mods.lambda_nel), fd_cache_, S, labels, sets, fp);
      cosine_logits_backward(dR, dW, matrix_ref<const T>(dS_.data(), N, Kmax), logits_cache_, R, sets, lp);
      out.nel = double(loss);
    }
    // L_glm.
    if (mods.glm_on()) {
      glm_params<T> gp;
      gp.pool = cfg_.pool, gp.tau = T(cfg_.glm_tau), gp.rho = T(cfg_.glm_rho), gp.threads = threads;
      T loss{};
      glm_forward_backward(loss, dR, glm_cache_, R, P, C, bank_, gp, T(mods.lambda_glm));
      out.glm = double(loss);
    }
    // L_syn and the way back through the synthesizer and region pooling.
    if (run_synth) {
      dPi_.assign(L * D, T(0));
      const matrix_ref<const T> Pi(Pi_.data(), L, D);
      if (mods.syn_on()) {
        syn_loss_options so;
        so.kind = cfg_.syn_loss, so.tau = cfg_.syn_tau, so.delta = cfg_.syn_delta;
        T loss{};
        syn_loss_forward(loss, syn_cache_, Pi, std::span<const int>(syn_labels_), sets.seen, so);
        syn_loss_backward(matrix_ref<T>(dPi_.data(), L, D), T(mods.lambda_syn), syn_cache_, Pi,
                          std::span<const int>(syn_labels_), sets.seen, so);
        out.syn = double(loss);
      }
      for (index_t b = 0; b < B; ++b) {
        const index_t Mb = pseudo_offsets_[b + 1] - pseudo_offsets_[b], first = region_offsets_[b + 1] - Mb;
        for (index_t j = 0; j < Mb * D; ++j) dPi_[first * D + j] += dPp_[pseudo_offsets_[b] * D + j];
      }
      dpooled_.assign(L * D, T(0));
      synthesizer_backward(matrix_ref<T>(dpooled_.data(), L, D), synth_ids_.grads(synth_),
                           matrix_ref<const T>(dPi_.data(), L, D), scache_, Pi,
                           matrix_ref<const T>(pooled_.data(), L, D), C, U, std::span<const index_t>(region_offsets_),
                           sparams, sopt, threads);
      region_pool_backward(dR, matrix_ref<const T>(dpooled_.data(), L, D), rpcache_, std::span<const int>(region_ids_),
                           region_pool_params{threads});
    }
    encoder_backward(net_, dfeatures_, ecache_, batch.images, threads);
    out.total = mods.lambda_ce * out.ce + (mods.nel_on() ? mods.lambda_nel * out.nel : 0.0) +
                (mods.glm_on() ? mods.lambda_glm * out.glm : 0.0) +
                (run_synth && mods.syn_on() ? mods.lambda_syn * out.syn : 0.0);
    return out;
  }

  /**
   * One optimiser step: `forward_backward`, global-norm clipping over both buffers, AdamW with
   * the cosine schedule's rate for this step, then the batch's CLS tokens enter the bank.
   * @throws std::domain_error when the loss or the gradient norm is not finite.
   */
  step_losses step(const train_batch<T>& batch) {
    auto out = forward_backward(batch);
    const double n1 = grad_norm(std::span<const T>(net_.params.grads(), net_.params.size()));
    const double n2 = grad_norm(std::span<const T>(synth_.grads(), synth_.size()));
    out.grad_norm = std::sqrt(n1 * n1 + n2 * n2);
    if (!std::isfinite(out.total) || !std::isfinite(out.grad_norm))
      throw std::domain_error("trainer::step: non-finite loss (" + std::to_string(out.total) + ") or gradient norm (" +
                              std::to_string(out.grad_norm) + ") at step " + std::to_string(step_));
    if (cfg_.clip > 0 && out.grad_norm > cfg_.clip) {
      const T s = T(cfg_.clip / (out.grad_norm + 1e-6));
      for (index_t i = 0; i < net_.params.size(); ++i) net_.params.grads()[i] *= s;
      for (index_t i = 0; i < synth_.size(); ++i) synth_.grads()[i] *= s;
    }
    const cosine_schedule sched{cfg_.lr, cfg_.min_lr, cfg_.warmup, cfg_.steps};
    out.lr = sched(step_);
    adamw_options<T> ao;
    ao.lr = T(out.lr);
    ao.weight_decay = T(cfg_.weight_decay);
    adamw_step(std::span<T>(net_.params.values(), net_.params.size()),
               std::span<const T>(net_.params.grads(), net_.params.size()), opt_net_, ao);
    if (cfg_.modules.plm && cfg_.prototypes == prototype_source::synthesizer)
      adamw_step(std::span<T>(synth_.values(), synth_.size()), std::span<const T>(synth_.grads(), synth_.size()),
                 opt_syn_, ao);
    bank_.push(matrix_ref<const T>(batch.cls.data(), batch.cls.shape()[0], batch.cls.shape()[1]));
    ++step_;
    return out;
  }

  /// Files of a checkpoint directory.
  static std::filesystem::path encoder_file(const std::filesystem::path& dir) { return dir / "encoder.ckpt"; }
  static std::filesystem::path synthesizer_file(const std::filesystem::path& dir) { return dir / "synthesizer.ckpt"; }

  /**
   * Saves the encoder and the synthesizer (parameters, AdamW state, step) as two atomic
   * checkpoints (optim/checkpoint.hpp) in the existing directory `dir`. The synthesizer is saved
   * first, the encoder last, and `load` checks that their steps agree.
   */
  void save(const std::filesystem::path& dir) const {
    save_checkpoint(synthesizer_file(dir), synth_, opt_syn_, step_);
    save_checkpoint(encoder_file(dir), net_.params, opt_net_, step_);
  }

  /**
   * Loads a `save`d directory (same architecture); returns the step. On error nothing changes.
   * @throws std::invalid_argument when a file is missing, corrupt, of another architecture, or
   *         the two files come from different steps.
   */
  std::uint64_t load(const std::filesystem::path& dir) {
    // Validate both into scratch copies first, so a failure leaves the trainer unchanged.
    encoder<T> net(cfg_.encoder);
    adamw_state<T> on, os;
    param_buffer<T> syn;
    (void)declare_synthesizer_params(syn, cfg_.encoder.embed_dim, cfg_.synth_hidden);
    syn.allocate();
    const auto s1 = load_checkpoint(encoder_file(dir), net.params, on);
    const auto s2 = load_checkpoint(synthesizer_file(dir), syn, os);
    require(s1 == s2, "trainer::load: " + dir.string() + " holds an encoder of step " + std::to_string(s1) +
                          " and a synthesizer of step " + std::to_string(s2));
    std::copy_n(net.params.values(), net.params.size(), net_.params.values());
    std::copy_n(syn.values(), syn.size(), synth_.values());
    opt_net_ = std::move(on);
    opt_syn_ = std::move(os);
    step_ = s1;
    bank_.clear();
    return step_;
  }

 private:
  trainer_config cfg_;
  tensor<T, 2> seen_text_;
  encoder<T> net_;
  param_buffer<T> synth_;
  synthesizer_param_ids synth_ids_;
  adamw_state<T> opt_net_, opt_syn_;
  cls_bank<T> bank_;
  std::uint64_t step_ = 0;
  // Caches and scratch, reused across steps.
  encoder_cache<T> ecache_;
  tensor<T, 3> features_, dfeatures_;
  std::vector<int> labels_, region_ids_, syn_labels_;
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
