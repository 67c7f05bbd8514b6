// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/optim/schedule.hpp
 * Cosine learning-rate schedule with linear warm-up (DESIGN.md §3).
 *
 * Steps are 0-based: `lr(t)` is the rate for the t-th update.
 *   t < warmup:            lr = base · (t + 1) / warmup          (reaches base at t = warmup − 1)
 *   warmup ≤ t < total:    lr = min + ½ (base − min) (1 + cos(π (t − warmup) / (total − warmup)))
 *   t ≥ total:             lr = min
 */
#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>

#include "zss/core/check.hpp"

namespace zss {

/// Cosine decay from `base_lr` to `min_lr` over `total_steps`, after `warmup_steps` of linear ramp.
struct cosine_schedule {
  double base_lr = 1e-3;           ///< peak rate
  double min_lr = 0;               ///< final rate
  std::uint64_t warmup_steps = 0;  ///< linear warm-up length
  std::uint64_t total_steps = 1;   ///< warm-up + decay length (≥ warmup_steps)

  void validate() const {
    require(base_lr >= 0 && min_lr >= 0, "cosine_schedule: rates must be >= 0");
    require(total_steps >= warmup_steps,
            "cosine_schedule: total_steps (" + std::to_string(total_steps) +
                ") must be >= warmup_steps (" + std::to_string(warmup_steps) + ")");
  }

  /// The learning rate of 0-based step `t`.
  double operator()(std::uint64_t t) const noexcept {
    if (t < warmup_steps) return base_lr * double(t + 1) / double(warmup_steps);
    if (t >= total_steps) return min_lr;
    const double progress = double(t - warmup_steps) / double(total_steps - warmup_steps);
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + std::cos(std::numbers::pi * progress));
  }
};

}  // namespace zss
