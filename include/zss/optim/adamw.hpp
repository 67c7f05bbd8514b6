// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/optim/adamw.hpp
 * AdamW (Loshchilov & Hutter: Adam with decoupled weight decay) over a flat parameter buffer
 * (DESIGN.md §3), one vectorised loop.
 *
 * Legend: N scalars (a `param_buffer`'s `values()` / `grads()`; its alignment gaps hold zero
 * values and zero gradients, and stay zero).
 *
 * Step t (1-based, `state.step` after the increment), PyTorch's `torch.optim.AdamW` formula:
 *   p ← p·(1 − lr·λ)
 *   m ← β₁ m + (1 − β₁) g,    v ← β₂ v + (1 − β₂) g²
 *   p ← p − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
 * Bias corrections are computed in double once per step. `weight_decay = 0` is plain Adam.
 * Elementwise: the result does not depend on threads (the loop is single-threaded; it costs
 * well under a millisecond for the 0.29 M-parameter encoder).
 */
#include <cmath>
#include <cstdint>
#include <span>
#include <string>

#include <xsimd/xsimd.hpp>

#include "zss/core/aligned.hpp"
#include "zss/core/check.hpp"
#include "zss/core/simd.hpp"

namespace zss {

/**
 * AdamW hyper-parameters (defaults: PyTorch's AdamW). Every field is used as `T(field)` by
 * `adamw_step<T>`, so a `float` run rounds them to float first (as PyTorch does).
 */
struct adamw_options {
  double lr = 1e-3;            ///< learning rate of this step (set it from a schedule)
  double beta1 = 0.9;          ///< β₁
  double beta2 = 0.999;        ///< β₂
  double eps = 1e-8;           ///< ε
  double weight_decay = 1e-2;  ///< λ, decoupled

  void validate() const {
    require(lr >= 0, "adamw_options: lr must be >= 0, got " + std::to_string(lr));
    require(beta1 >= 0 && beta1 < 1,
            "adamw_options: beta1 must be in [0, 1), got " + std::to_string(beta1));
    require(beta2 >= 0 && beta2 < 1,
            "adamw_options: beta2 must be in [0, 1), got " + std::to_string(beta2));
    require(eps > 0, "adamw_options: eps must be > 0, got " + std::to_string(eps));
    require(weight_decay >= 0,
            "adamw_options: weight_decay must be >= 0, got " + std::to_string(weight_decay));
  }
};

/// AdamW moments and the step count (what a checkpoint saves).
template <real_scalar T>
struct adamw_state {
  aligned_vector<T> m, v;  ///< N first and second moments
  std::uint64_t step = 0;  ///< steps taken

  adamw_state() = default;
  explicit adamw_state(index_t n) { reset(n); }
  /// Zero moments for `n` scalars, step 0.
  void reset(index_t n) {
    m.assign(n, T(0));
    v.assign(n, T(0));
    step = 0;
  }
};

/**
 * One AdamW step over `params` with gradients `grads` (both N).
 * @throws std::invalid_argument on size mismatch (the state is sized on its first step if empty)
 *         or invalid options.
 */
template <real_scalar T>
void adamw_step(std::span<T> params, std::span<const T> grads, adamw_state<T>& state,
                const adamw_options& opt) {
  check_extent("adamw_step", "grads size", grads.size(), "params size", params.size());
  opt.validate();
  const index_t n = params.size();
  if (state.m.empty() && state.v.empty() && state.step == 0) state.reset(n);
  check_extent("adamw_step", "state.m size", state.m.size(), "params size", n);
  check_extent("adamw_step", "state.v size", state.v.size(), "params size", n);
  const std::uint64_t t = ++state.step;
  const T lr = T(opt.lr), b1 = T(opt.beta1), b2 = T(opt.beta2), eps = T(opt.eps),
          wd = T(opt.weight_decay);
  const double bc1 = 1.0 - std::pow(double(b1), double(t));
  const double bc2 = 1.0 - std::pow(double(b2), double(t));
  const T step_size = T(double(lr) / bc1), inv_sqrt_bc2 = T(1.0 / std::sqrt(bc2));
  const T decay = T(1) - lr * wd;
  const T c1 = T(1) - b1, c2 = T(1) - b2;
  T* p = params.data();
  const T* g = grads.data();
  T* m = state.m.data();
  T* v = state.v.data();
  using B = simd::batch<T>;
  constexpr index_t W = simd::width<T>;
  index_t i = 0;
  for (; i + W <= n; i += W) {
    const B gi = B::load_unaligned(g + i);
    const B mi = b1 * B::load_unaligned(m + i) + c1 * gi;
    const B vi = b2 * B::load_unaligned(v + i) + c2 * gi * gi;
    const B pi =
        B::load_unaligned(p + i) * decay - step_size * mi / (xsimd::sqrt(vi) * inv_sqrt_bc2 + eps);
    mi.store_unaligned(m + i);
    vi.store_unaligned(v + i);
    pi.store_unaligned(p + i);
  }
  for (; i < n; ++i) {
    const T gi = g[i];
    m[i] = b1 * m[i] + c1 * gi;
    v[i] = b2 * v[i] + c2 * gi * gi;
    p[i] = p[i] * decay - step_size * m[i] / (std::sqrt(v[i]) * inv_sqrt_bc2 + eps);
  }
}

}  // namespace zss
