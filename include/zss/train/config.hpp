// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/train/config.hpp
 * Every number of a CLIP-ZSS training run in one struct with documented defaults (DESIGN.md §1,
 * §2, §3): module switches and weights, the losses' options, the PLM pseudo-label options, the
 * synthesizer, the optimiser and its schedule, batch, steps, seed and threads.
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
 * grid, the step budget) where DESIGN names the toy. `validate()` throws
 * `std::invalid_argument` naming the first bad value.
 *
 * ## The synthesizer recipe (an option, measured against DESIGN §2.4's defaults)
 *
 * The defaults are DESIGN's synthesizer. With it, PLM *alone* does not help on the toy world
 * (+PLM's mIoU(U) ≈ 0–5 %, not above the seen-only baseline), although GLM + PLM is the best
 * arm. A probe of the prototypes (nearest text embedding of each unseen pseudo region's π)
 * showed why: without GLM the prototypes carry little of the teacher's knowledge about unseen
 * classes —
 *  1. the query shortcut `h = p + …` lets L_syn be met by the student's own pooled feature, which
 *     L_ce already pulls to the seen text embeddings, so the block need not read its memory;
 *  2. with gradient from L_ce into the prototypes, prototype and student features of a pseudo
 *     region pull each other and drift away from the text space together;
 *  3. BCE with δ = 0 wants every other seen class at cosine < 0, but text embeddings sharing a
 *     colour or a texture are at ≈ 0.4: the loss removes exactly the shared parts that identify
 *     an unseen class; δ = 10 (≈ 0.7/τ_s) puts the decision boundary between the two;
 *  4. a random (Xavier) map is unconstrained outside the span of the seen classes' targets; the
 *     identity init lets those directions through.
 * `use_synthesizer_recipe()` (`zss-train-toy --synth-recipe`) changes all four. Measured with
 * `zss-train-toy --quick --no-glm --synth-recipe --seed S` (hIoU of +PLM for S = 1 / 2; the
 * seen-only baseline's: 7.0 / 3.9):
 *
 * | synthesizer | hIoU |
 * |---|---|
 * | the recipe | 36.0 / 21.7 |
 * | the recipe with the query shortcut (`--synth-residual`) | 11.0 / 3.3 |
 * | the recipe with L_ce's gradient into the prototypes (`--pseudo-grad`) | 25.0 / 22.8 |
 * | the recipe with δ = 0 (`--syn-delta 0`) | 24.8 / 0.4 |
 * | the recipe with Xavier init (`--synth-init xavier`) | 27.6 / 16.7 |
 * | DESIGN's synthesizer (the defaults) | 8.6 / 0.1 |
 *
 * It is not the default because it costs the full method: at the default size (seeds 1–3)
 * GLM + PLM reaches hIoU 71.3 ± 5.0 with the recipe against 80.3 ± 4.6 with DESIGN's
 * synthesizer. With GLM the student's pooled features already carry the unseen classes, and the
 * shortcut's prototypes (≈ the student's own features, trained by L_ce) sharpen them, while the
 * recipe's prototypes come from the teacher's dense tokens, which the toy's modality gap leaves
 * poorly aligned with the text. README.md has both ablations.
 */
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "zss/core/check.hpp"
#include "zss/core/config.hpp"
#include "zss/loss/glm.hpp"
#include "zss/nn/encoder.hpp"
#include "zss/nn/mlp.hpp"
#include "zss/plm/synthesizer.hpp"
#include "zss/plm/synthesizer_loss.hpp"

namespace zss::train {

/// Module switches and loss weights (DESIGN §1).
struct module_config {
  bool glm = true;          ///< Global Learning Module (L_glm)
  bool plm = true;          ///< Pixel Learning Module (pseudo labels, synthesizer, L_syn)
  bool nel = true;          ///< ZegCLIP's non-mutually-exclusive loss (focal + dice)
  double lambda_ce = 1;     ///< λ_ce
  double lambda_nel = 1;    ///< λ_nel
  double lambda_glm = 1;    ///< λ_glm
  double lambda_syn = 1;    ///< λ_syn
  bool glm_on() const noexcept { return glm && lambda_glm > 0; }
  bool nel_on() const noexcept { return nel && lambda_nel > 0; }
  bool syn_on() const noexcept { return plm && lambda_syn > 0; }
};

/// Where the pseudo classes' classifier weights come from (DESIGN §2.4).
enum class prototype_source {
  synthesizer,     ///< the synthesizer's prototypes π_l (the paper; trained by L_syn and L_ce/L_nel)
  teacher_tokens,  ///< ablation without the synthesizer: n(u_l), the teacher's region-pooled token (a constant)
};

/// Options of the PLM pseudo labels (DESIGN §2.3; defaults for a 16 × 16 token grid).
struct pseudo_label_config {
  std::vector<index_t> windows = {2, 4};  ///< K-Means window sizes (one scale each)
  index_t max_iter = 10;                  ///< Lloyd iterations per scale at most
  double lambda = 0.9;                    ///< mask-fusion cosine threshold λ
  /// A fused mask needs ≥ this many ignored tokens. DESIGN's library default is 2; the trainer
  /// uses 4 on the toy's 16 × 16 grid: with 2, mixed boundary tokens (part unseen object, part
  /// background) form many 2–6-token fragments of their own, which are impure at the pixel level
  /// (measured on 96 scenes, seed 11: 98 segments, 44 % ≥ 80 % one hidden class, but 95 % of
  /// pseudo-labelled pixels correct; with 4: 51 segments, 82 % pure, 97 % of pixels correct).
  index_t min_tokens = 4;
  double ignored_fraction = 0.5;          ///< a token is ignored when ≥ this fraction of its pixels are
};

/// Everything of a run. Defaults: see the file comment and each field.
struct trainer_config {
  module_config modules;
  pseudo_label_config pseudo;

  // Student (DESIGN §3): the default net, D = the teacher's width.
  encoder_config encoder;  ///< architecture (embed_dim must equal the text width)

  // Cosine CE / NEL logits (DESIGN §2.1).
  double alpha = 1 / 0.07;     ///< scale of the seen block (1/τ)
  double beta = 1 / 0.07;      ///< scale of the pseudo block (1/τ)
  /// Gradient from L_ce/L_nel into the pseudo prototypes (DESIGN: on; off in the recipe).
  bool pseudo_grad = true;

  // GLM (DESIGN §2.2).
  glm_pool pool = glm_pool::attention;  ///< pooling variant
  double glm_tau = 0.07;                ///< τ_g
  double glm_rho = 0.25;                ///< `selective` pooling: fraction of pixels kept
  index_t bank_size = 256;              ///< M: CLS bank (the library's default is 0; the toy's 256)

  // Synthesizer and L_syn (DESIGN §2.4).
  bool region_tokens = true;  ///< memory = [c_b ; u_l] (teacher region-pooled tokens) or [c_b]
  prototype_source prototypes = prototype_source::synthesizer;  ///< pseudo classes' weights
  /// Initial synthesizer (plm/synthesizer.hpp): `xavier` (DESIGN), `identity` in the recipe.
  synthesizer_init synth_init = synthesizer_init::xavier;
  /// h = p + CrossAttn (DESIGN §2.4) or h = CrossAttn (`synthesizer_options::query_residual`;
  /// the recipe).
  bool synth_residual = true;
  index_t synth_hidden = 0;   ///< MLP hidden width H (0 = 4·D)
  syn_loss_kind syn_loss = syn_loss_kind::bce;  ///< L_syn: BCE (DESIGN's default) or softmax CE
  double syn_tau = 0.07;      ///< τ_s
  double syn_delta = 0;       ///< δ (10 in the recipe)

  // Optimiser (DESIGN §3): AdamW, cosine schedule with linear warm-up, global-norm clipping.
  double lr = 2e-3;             ///< peak learning rate
  double min_lr = 2e-5;         ///< final learning rate
  double weight_decay = 1e-2;   ///< AdamW λ (decoupled)
  std::uint64_t warmup = 50;    ///< warm-up steps
  double clip = 5.0;            ///< max global gradient norm (0 = no clipping)

  // Run.
  index_t batch = 16;           ///< images per step
  std::uint64_t steps = 600;    ///< optimiser steps
  bool flip = true;             ///< random horizontal flips of training images (and their targets)
  std::uint64_t seed = 0;       ///< seeds initialisation and batch sampling
  int threads = 0;              ///< 0 = OpenMP default

  /// The synthesizer recipe (see the file comment): no query shortcut, identity init, δ = 10,
  /// stop-gradient from L_ce/L_nel into the pseudo prototypes.
  void use_synthesizer_recipe() noexcept {
    synth_residual = false;
    synth_init = synthesizer_init::identity;
    syn_delta = 10;
    pseudo_grad = false;
  }

  /// Throws `std::invalid_argument` naming the first bad value.
  void validate() const {
    auto need = [](bool ok, const std::string& what) { require(ok, "trainer_config: " + what); };
    encoder.validate();
    need(modules.lambda_ce >= 0 && modules.lambda_nel >= 0 && modules.lambda_glm >= 0 && modules.lambda_syn >= 0 &&
             std::isfinite(modules.lambda_ce + modules.lambda_nel + modules.lambda_glm + modules.lambda_syn),
         "loss weights must be finite and >= 0");
    need(alpha > 0 && beta > 0 && std::isfinite(alpha) && std::isfinite(beta), "alpha and beta must be finite and > 0");
    need(glm_tau > 0, "glm_tau must be > 0, got " + std::to_string(glm_tau));
    need(glm_rho > 0 && glm_rho <= 1, "glm_rho must be in (0, 1], got " + std::to_string(glm_rho));
    need(syn_tau > 0, "syn_tau must be > 0, got " + std::to_string(syn_tau));
    need(std::isfinite(syn_delta), "syn_delta must be finite, got " + std::to_string(syn_delta));
    need(!pseudo.windows.empty(), "pseudo.windows is empty");
    for (auto w : pseudo.windows) need(w >= 1, "pseudo.windows must be >= 1");
    need(pseudo.max_iter >= 1, "pseudo.max_iter must be >= 1");
    need(pseudo.lambda > -1 && pseudo.lambda <= 1, "pseudo.lambda must be in (-1, 1], got " + std::to_string(pseudo.lambda));
    need(pseudo.ignored_fraction > 0 && pseudo.ignored_fraction <= 1, "pseudo.ignored_fraction must be in (0, 1]");
    need(lr > 0 && std::isfinite(lr), "lr must be finite and > 0, got " + std::to_string(lr));
    need(min_lr >= 0 && min_lr <= lr, "min_lr must be in [0, lr]");
    need(weight_decay >= 0, "weight_decay must be >= 0");
    need(clip >= 0, "clip must be >= 0 (0 = off)");
    need(batch >= 1, "batch must be >= 1");
    need(steps >= 1, "steps must be >= 1");
    need(warmup <= steps, "warmup (" + std::to_string(warmup) + ") must be <= steps (" + std::to_string(steps) + ")");
    need(threads >= 0, "threads must be >= 0 (0 = OpenMP default)");
  }
};

}  // namespace zss::train
