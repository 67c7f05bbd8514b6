// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/optim/clip.hpp
 * Global gradient-norm clipping over a flat gradient buffer (PyTorch's `clip_grad_norm_`).
 *
 * `norm = ‖g‖₂` over all N gradients (accumulated in double, fixed order); when
 * `norm > max_norm`, `g ← g · max_norm / (norm + 1e-6)`. Returns the norm *before* clipping
 * (log it: it is the health signal of training).
 */
#include <cmath>
#include <span>
#include <stdexcept>
#include <string>

#include "zss/core/check.hpp"

namespace zss {

/// ‖g‖₂ accumulated in double.
template <real_scalar T>
double grad_norm(std::span<const T> g) noexcept {
  double s = 0;
  for (const T x : g) s += double(x) * double(x);
  return std::sqrt(s);
}

/**
 * Clips `g` to global norm `max_norm`; returns the norm before clipping.
 * @param error_if_nonfinite when true a NaN/inf norm throws `std::domain_error` (gradients
 *        untouched); when false a non-finite norm leaves the gradients untouched and is returned.
 * @throws std::invalid_argument when max_norm ≤ 0.
 */
template <real_scalar T>
double clip_grad_norm(std::span<T> g, double max_norm, bool error_if_nonfinite = false) {
  require(max_norm > 0, "clip_grad_norm: max_norm must be > 0, got " + std::to_string(max_norm));
  const double norm = grad_norm(std::span<const T>(g.data(), g.size()));
  if (!std::isfinite(norm)) {
    if (error_if_nonfinite)
      throw std::domain_error("clip_grad_norm: the gradient norm is not finite");
    return norm;
  }
  if (norm > max_norm) {
    const T scale = T(max_norm / (norm + 1e-6));
    for (auto& x : g) x *= scale;
  }
  return norm;
}

}  // namespace zss
