// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/optim/sgd.hpp
 * SGD with momentum over a flat parameter buffer (DESIGN.md §3), one loop.
 *
 * Legend: N scalars. PyTorch's `torch.optim.SGD` semantics:
 *   g ← grad + λ p                                  (L2 weight decay, coupled)
 *   b ← g on the first step, else b ← μ b + (1 − dampening) g
 *   g ← g + μ b if nesterov, else g ← b             (only when μ ≠ 0)
 *   p ← p − lr g
 */
#include <cstdint>
#include <span>
#include <string>

#include "zss/core/aligned.hpp"
#include "zss/core/check.hpp"

namespace zss {

/// SGD hyper-parameters; `sgd_step<T>` uses every number as `T(field)`.
struct sgd_options {
  double lr = 1e-2;         ///< learning rate of this step
  double momentum = 0.9;    ///< μ (0 = plain SGD)
  double dampening = 0;     ///< dampening of the momentum update
  double weight_decay = 0;  ///< λ (L2, added to the gradient)
  bool nesterov = false;    ///< Nesterov momentum (needs μ > 0, dampening 0)

  void validate() const {
    require(lr >= 0, "sgd_options: lr must be >= 0, got " + std::to_string(lr));
    require(momentum >= 0, "sgd_options: momentum must be >= 0, got " + std::to_string(momentum));
    require(weight_decay >= 0, "sgd_options: weight_decay must be >= 0");
    require(!nesterov || (momentum > 0 && dampening == 0),
            "sgd_options: nesterov needs momentum > 0 and dampening 0");
  }
};

/// The momentum buffer and the step count (what a checkpoint saves).
template <real_scalar T>
struct sgd_state {
  aligned_vector<T> momentum_buffer;  ///< N
  std::uint64_t step = 0;

  sgd_state() = default;
  explicit sgd_state(index_t n) { reset(n); }
  void reset(index_t n) {
    momentum_buffer.assign(n, T(0));
    step = 0;
  }
};

/**
 * One SGD step. The state is sized on its first step if empty.
 * @throws std::invalid_argument on size mismatch or invalid options.
 */
template <real_scalar T>
void sgd_step(std::span<T> params, std::span<const T> grads, sgd_state<T>& state,
              const sgd_options& opt) {
  check_extent("sgd_step", "grads size", grads.size(), "params size", params.size());
  opt.validate();
  const index_t n = params.size();
  if (state.momentum_buffer.empty() && state.step == 0) state.reset(n);
  check_extent("sgd_step", "state.momentum_buffer size", state.momentum_buffer.size(),
               "params size", n);
  T* p = params.data();
  const T* gr = grads.data();
  T* buf = state.momentum_buffer.data();
  const T lr = T(opt.lr), mu = T(opt.momentum), damp = T(1) - T(opt.dampening),
          wd = T(opt.weight_decay);
  const bool first = state.step == 0;
  if (mu == T(0)) {
    for (index_t i = 0; i < n; ++i) p[i] -= lr * (gr[i] + wd * p[i]);
  } else if (first) {
    for (index_t i = 0; i < n; ++i) {
      const T g = gr[i] + wd * p[i];
      buf[i] = g;
      p[i] -= lr * (opt.nesterov ? g + mu * g : g);
    }
  } else {
    for (index_t i = 0; i < n; ++i) {
      const T g = gr[i] + wd * p[i];
      const T b = mu * buf[i] + damp * g;
      buf[i] = b;
      p[i] -= lr * (opt.nesterov ? g + mu * b : b);
    }
  }
  ++state.step;
}

}  // namespace zss
