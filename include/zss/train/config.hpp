// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/train/config.hpp
 * Every number of a CLIP-ZSS training run (DESIGN.md §1–§3) in one struct whose sections are
 * the library's own option structs, and one description of every field (`describe`): path,
 * command-line flag, help, check. Validation, the text stored in a checkpoint, the example's
 * command line and its JSON all come from that description, so a new knob is one line in
 * `describe` plus its use.
 *
 *     L = λ_glm·L_glm + λ_ce·L_ce + λ_nel·L_nel + λ_syn·L_syn          (paper: all weights 1)
 *
 * A module is on when its switch is on *and* its weight is > 0 (a zero weight skips the loss's
 * computation, it does not just scale it). `plm` switches the whole Pixel Learning Module:
 * pseudo labels, synthesizer, the pseudo classes in L_ce/L_nel and L_syn. With `glm` and `plm`
 * off the run is the seen-only baseline (L_ce + L_nel on the seen labels).
 *
 * Defaults are the paper's where it has one (weights 1, τ_g 0.07, attention pooling), DESIGN's
 * where the paper is silent, and the toy world's (bank 256, windows {2, 4} on the 16 × 16 token
 * grid, `min_tokens` 4, the step budget) where DESIGN names the toy. What was measured to choose
 * them: docs/EXPERIMENTS.md.
 *
 * Sections and the options they reuse: `pseudo` = `pseudo_label_options` (plm/pseudo_labels.hpp),
 * `encoder` = `encoder_options`, `ce` = `cosine_ce_options` (its α, β also scale the NEL logits),
 * `nel` = `focal_dice_options`, `glm` = `glm_options`, `synthesizer` = `synthesizer_options`,
 * `syn_loss` = `syn_loss_options`, `adamw` = `adamw_options` (its `lr` is set every step from
 * `schedule`), `schedule` = `cosine_schedule` (`total_steps` is the run's length). The sections'
 * own `threads` fields are ignored: the trainer uses `threads` for everything.
 */
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "zss/core/check.hpp"
#include "zss/core/config.hpp"
#include "zss/core/option_fields.hpp"
#include "zss/loss/cosine_ce.hpp"
#include "zss/loss/focal_dice.hpp"
#include "zss/loss/glm.hpp"
#include "zss/nn/encoder.hpp"
#include "zss/nn/mlp.hpp"
#include "zss/optim/adamw.hpp"
#include "zss/optim/schedule.hpp"
#include "zss/plm/pseudo_labels.hpp"
#include "zss/plm/synthesizer.hpp"
#include "zss/plm/synthesizer_loss.hpp"

namespace zss::train {

/// Module switches and loss weights (DESIGN §1).
struct module_options {
  bool glm = true;        ///< Global Learning Module (L_glm)
  bool plm = true;        ///< Pixel Learning Module (pseudo labels, synthesizer, L_syn)
  bool nel = true;        ///< ZegCLIP's non-mutually-exclusive loss (focal + dice)
  double lambda_ce = 1;   ///< λ_ce
  double lambda_nel = 1;  ///< λ_nel
  double lambda_glm = 1;  ///< λ_glm
  double lambda_syn = 1;  ///< λ_syn
  bool glm_on() const noexcept { return glm && lambda_glm > 0; }
  bool nel_on() const noexcept { return nel && lambda_nel > 0; }
  bool syn_on() const noexcept { return plm && lambda_syn > 0; }
};

/// Where the pseudo classes' classifier weights come from (DESIGN §2.4).
enum class prototype_source {
  synthesizer,  ///< the synthesizer's prototypes π_l (the paper; trained by L_syn and L_ce/L_nel)
  teacher_tokens,  ///< ablation without the synthesizer: n(u_l), the teacher's region-pooled token
                   ///< (a constant)
};
inline const enum_names<prototype_source, 2> prototype_source_names{
    {{prototype_source::synthesizer, "synthesizer"},
     {prototype_source::teacher_tokens, "teacher-tokens"}}};

/// The trainer's own PLM choices (beyond the synthesizer block's options). Defaults: the
/// trainer's synthesizer (see `trainer_options`); DESIGN's are pseudo_grad on, Xavier init.
struct plm_options {
  prototype_source prototypes = prototype_source::synthesizer;  ///< pseudo classes' weights
  /// Gradient from L_ce/L_nel into the pseudo prototypes (DESIGN: on; the trainer: off).
  bool pseudo_grad = false;
  synthesizer_init init = synthesizer_init::zero_update;  ///< the block's initial parameters
  index_t hidden = 0;                                     ///< the block's MLP width H (0 = 4·D)
  /// Move the teacher's region tokens across the modality gap before training
  /// (plm/targets.hpp `shift_modality_gap`: n(u_l) − mean token + mean seen text). Off by
  /// default, as in the paper; docs/EXPERIMENTS.md stop 13 measures it with both teachers.
  bool gap_shift = false;
};

/// The synthesizer block as the trainer runs it (issue #11, docs/EXPERIMENTS.md): the teacher
/// residual, h = u_l + CrossAttn(LN₁(p), memory), so that each prototype is a learned
/// *correction* of the teacher's region token (with `plm_options::init` = zero_update the
/// untrained block returns n(u_l) exactly). DESIGN §2.4's query residual lets the block ignore
/// its memory and PLM alone then transfers nothing (hIoU ≈ 1).
inline synthesizer_options trainer_synthesizer_defaults() {
  synthesizer_options s;
  s.residual = synthesizer_residual::teacher;
  return s;
}

/// L_syn as the trainer runs it: δ = 13 puts the BCE's boundary at cos δ·τ_s ≈ 0.91, above the
/// text cosine of any two distinct classes (≈ 0.42 for classes sharing a colour or texture), so
/// the negative terms are nearly silent (σ(0.42/τ_s − δ) ≈ 0.001) and L_syn acts as a pull of each
/// seen prototype towards its own text. Lower δ makes L_syn push prototypes away from related
/// classes; the block learns that as a map that strips the parts unseen classes share with seen
/// ones, and PLM alone drops (δ 10: mIoU(U) 30 / 44 at --quick seeds 1 / 2, δ 13: 59 / 61, δ 5:
/// 0.3; docs/EXPERIMENTS.md, stop 12). DESIGN's δ = 0 asks every other class below cosine 0.
inline syn_loss_options trainer_syn_loss_defaults() {
  syn_loss_options l;
  l.delta = 13;
  return l;
}

/// The PLM pseudo labels as the trainer runs them: the library's defaults except `min_tokens`.
/// A fused mask needs ≥ 4 ignored tokens on the toy's 16 × 16 grid (DESIGN's library default is
/// 2): with 2, mixed boundary tokens form many impure 2–6-token fragments (docs/EXPERIMENTS.md).
inline pseudo_label_options trainer_pseudo_label_defaults() {
  pseudo_label_options p;
  p.fusion.min_tokens = 4;
  return p;
}

/// Everything of a run. Defaults: see the file comment and `describe`.
struct trainer_options {
  module_options modules;
  pseudo_label_options pseudo = trainer_pseudo_label_defaults();  ///< DESIGN §2.3
  encoder_options encoder;  ///< the student (DESIGN §3); embed_dim = the text width
  cosine_ce_options ce;     ///< L_ce's logits (α seen, β pseudo); NEL uses the same scales
  focal_dice_options nel;   ///< L_nel
  glm_options glm;          ///< L_glm (DESIGN §2.2)
  index_t bank_size = 256;  ///< M: the CLS bank (the library's default is 0; the toy's 256)
  synthesizer_options synthesizer = trainer_synthesizer_defaults();  ///< the block (§2.4)
  plm_options plm;  ///< prototypes, stop-gradient, the block's init and width
  syn_loss_options syn_loss = trainer_syn_loss_defaults();  ///< L_syn
  adamw_options adamw{.lr = 2e-3, .weight_decay = 1e-2};    ///< AdamW (lr: from `schedule`)
  cosine_schedule schedule{.base_lr = 2e-3, .min_lr = 2e-5, .warmup_steps = 50, .total_steps = 600};
  double clip = 5.0;       ///< max global gradient norm (0 = no clipping)
  index_t batch = 16;      ///< images per step
  bool flip = true;        ///< random horizontal flips of training images (and their targets)
  std::uint64_t seed = 0;  ///< seeds initialisation and batch sampling
  int threads = 0;         ///< 0 = OpenMP default

  std::uint64_t steps() const noexcept { return schedule.total_steps; }

  /// DESIGN §2.4's synthesizer literally: the query residual, Xavier init, δ = 0, gradient from
  /// L_ce/L_nel into the pseudo prototypes.
  void use_design_synthesizer() noexcept {
    synthesizer.residual = synthesizer_residual::query;
    plm.init = synthesizer_init::xavier;
    syn_loss.delta = 0;
    plm.pseudo_grad = true;
  }

  /// The synthesizer recipe of stop 8 (docs/EXPERIMENTS.md): no query shortcut, identity init,
  /// δ = 10, stop-gradient from L_ce/L_nel into the pseudo prototypes.
  void use_synthesizer_recipe() noexcept {
    synthesizer.residual = synthesizer_residual::none;
    plm.init = synthesizer_init::identity;
    syn_loss.delta = 10;
    plm.pseudo_grad = false;
  }

  /// Throws `std::invalid_argument` naming the first bad value (each field's check, then the
  /// relations between fields).
  void validate() const;
};

/**
 * The description of every field (see the file comment and zss/core/option_fields.hpp). Paths
 * follow the struct; flags are the command-line names of `zss-train-toy`.
 */
template <class V>
void describe(V& v, trainer_options& c) {
  using namespace checks;
  auto& m = c.modules;
  v.field("modules.glm", m.glm, "Global Learning Module (L_glm)", "glm");
  v.field("modules.plm", m.plm, "Pixel Learning Module (pseudo labels, synthesizer, L_syn)", "plm");
  v.field("modules.nel", m.nel, "focal + dice loss L_nel", "nel");
  v.field("modules.lambda_ce", m.lambda_ce, "weight of L_ce", non_negative(), "lambda-ce");
  v.field("modules.lambda_nel", m.lambda_nel, "weight of L_nel", non_negative(), "lambda-nel");
  v.field("modules.lambda_glm", m.lambda_glm, "weight of L_glm", non_negative(), "lambda-glm");
  v.field("modules.lambda_syn", m.lambda_syn, "weight of L_syn", non_negative(), "lambda-syn");

  auto& p = c.pseudo;
  v.field("pseudo.kmeans.windows", p.kmeans.windows,
          "K-Means window sizes on the teacher grid (one scale each)", at_least(1), "windows");
  v.field("pseudo.kmeans.max_iter", p.kmeans.max_iter, "Lloyd iterations per scale at most",
          at_least(1), "kmeans-max-iter");
  v.field("pseudo.kmeans.spherical", p.kmeans.spherical, "spherical (cosine) K-Means",
          "kmeans-spherical");
  v.field("pseudo.fusion.lambda", p.fusion.lambda, "mask-fusion cosine threshold λ",
          interval(-1, 1, true, false), "fusion-lambda");
  v.field("pseudo.fusion.min_tokens", p.fusion.min_tokens, "min ignored tokens of a pseudo class",
          {}, "min-tokens");
  v.field("pseudo.token.ignored_fraction", p.token.ignored_fraction,
          "a token is ignored when at least this fraction of its pixels is",
          interval(0, 1, true, false), "ignored-fraction");

  auto& e = c.encoder;
  v.field("encoder.widths", e.widths, "output channels of the k x k conv layers", at_least(1),
          "widths");
  v.field("encoder.strides", e.strides, "their strides", at_least(1), "strides");
  v.field("encoder.kernel", e.kernel, "conv kernel size k (odd)", at_least(1), "kernel");
  v.field("encoder.norm_groups", e.norm_groups, "GroupNorm groups after each conv (0 = none)", {},
          "norm-groups");
  v.field("encoder.embed_dim", e.embed_dim, "D, the feature width (= the text embeddings' width)",
          at_least(1));

  v.field("ce.alpha", c.ce.alpha, "logit scale of the seen classes (1/tau)", positive(), "alpha");
  v.field("ce.beta", c.ce.beta, "logit scale of the pseudo classes (1/tau)", positive(), "beta");
  v.field("nel.alpha", c.nel.alpha, "focal alpha", interval(0, 1, false, false), "focal-alpha");
  v.field("nel.gamma", c.nel.gamma, "focal gamma", non_negative(), "focal-gamma");
  v.field("nel.dice_smooth", c.nel.dice_smooth, "dice smoothing", positive(), "dice-smooth");

  v.choice("glm.pool", c.glm.pool, glm_pool_names, "GLM pooling", "pool");
  v.field("glm.tau", c.glm.tau, "GLM temperature tau_g", positive(), "glm-tau");
  v.field("glm.rho", c.glm.rho, "selective pooling: fraction of pixels kept",
          interval(0, 1, true, false), "glm-rho");
  v.field("bank_size", c.bank_size, "CLS bank size M", {}, "bank");

  v.field("synthesizer.region_tokens", c.synthesizer.region_tokens,
          "synthesizer memory = [CLS ; teacher region tokens] (else the CLS only)",
          "region-tokens");
  v.choice(
      "synthesizer.residual", c.synthesizer.residual, synthesizer_residual_names,
      "residual stream: query (h = p + CrossAttn, DESIGN), none, teacher (h = u_l + CrossAttn)",
      "synth-residual");
  v.choice("synthesizer.activation", c.synthesizer.activation, mlp_activation_names,
           "synthesizer MLP activation", "synth-activation");
  v.choice("plm.prototypes", c.plm.prototypes, prototype_source_names,
           "pseudo classes' weights: the synthesizer's prototypes or the teacher's region tokens "
           "(ablation)",
           "prototypes");
  v.field("plm.pseudo_grad", c.plm.pseudo_grad,
          "L_ce/L_nel also train the pseudo prototypes (else stop-gradient)", "pseudo-grad");
  v.choice("plm.init", c.plm.init, synthesizer_init_names,
           "synthesizer init: xavier; identity (attention projections = I, fc2 = 0); zero-update "
           "(W_o = 0, fc2 = 0: the untrained block returns its residual stream)",
           "synth-init");
  v.field("plm.hidden", c.plm.hidden, "synthesizer MLP width (0 = 4 D)", {}, "synth-hidden");
  v.field("plm.gap_shift", c.plm.gap_shift,
          "shift the teacher's region tokens across the modality gap (minus their mean, plus the "
          "seen texts' mean) before training",
          "gap-shift");
  v.choice("syn_loss.kind", c.syn_loss.kind, syn_loss_kind_names,
           "L_syn: BCE over seen classes or softmax CE", "syn-loss");
  v.field("syn_loss.tau", c.syn_loss.tau, "L_syn temperature tau_s", positive(), "syn-tau");
  v.field("syn_loss.delta", c.syn_loss.delta, "L_syn logit offset delta", finite(), "syn-delta");

  v.field("schedule.total_steps", c.schedule.total_steps, "optimiser steps", at_least(1), "steps");
  v.field("schedule.base_lr", c.schedule.base_lr, "peak learning rate (AdamW, cosine schedule)",
          positive(), "lr");
  v.field("schedule.min_lr", c.schedule.min_lr, "final learning rate", non_negative(), "min-lr");
  v.field("schedule.warmup_steps", c.schedule.warmup_steps, "linear warm-up steps", {}, "warmup");
  v.field("adamw.weight_decay", c.adamw.weight_decay, "AdamW decoupled weight decay",
          non_negative(), "weight-decay");
  v.field("adamw.beta1", c.adamw.beta1, "AdamW beta1", interval(0, 1, false, true), "beta1");
  v.field("adamw.beta2", c.adamw.beta2, "AdamW beta2", interval(0, 1, false, true), "beta2");
  v.field("adamw.eps", c.adamw.eps, "AdamW epsilon", positive(), "adam-eps");
  v.field("clip", c.clip, "max global gradient norm (0 = off)", non_negative(), "clip");

  v.field("batch", c.batch, "images per step", at_least(1), "batch");
  v.field("flip", c.flip, "random horizontal flips of the training images", "flip");
  v.field("seed", c.seed, "seeds everything: data, teacher, initialisation, batches", {}, "seed");
  v.field("threads", c.threads, "threads (0 = OpenMP default)", non_negative(), "threads");
}

inline void trainer_options::validate() const {
  auto copy = *this;  // describe binds by reference; validation must not need a mutable object
  option_fields(copy).validate("trainer_options");
  auto need = [](bool ok, const std::string& what) { require(ok, "trainer_options: " + what); };
  encoder.validate();
  need(schedule.min_lr <= schedule.base_lr, "schedule.min_lr (" + readable_number(schedule.min_lr) +
                                                ") must be <= schedule.base_lr (" +
                                                readable_number(schedule.base_lr) + ")");
  need(schedule.warmup_steps <= schedule.total_steps,
       "schedule.warmup_steps (" + std::to_string(schedule.warmup_steps) +
           ") must be <= schedule.total_steps (" + std::to_string(schedule.total_steps) + ")");
}

}  // namespace zss::train
