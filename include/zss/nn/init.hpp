// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/nn/init.hpp
 * Seeded parameter initialisation (DESIGN.md §3: He init).
 *
 * He (Kaiming) normal: `w ~ N(0, 2/fan_in)`, PyTorch's `kaiming_normal_(mode="fan_in",
 * nonlinearity="relu")`, the right scale for a conv followed by ReLU (fan_in = kh·kw·C). Draws
 * come from `zss::rng(seed, stream)`, so each tensor has its own reproducible stream that does not
 * depend on the order in which tensors are initialised.
 */
#include <cmath>
#include <cstdint>
#include <span>
#include <string>

#include "zss/core/check.hpp"
#include "zss/core/random.hpp"

namespace zss {

/**
 * Fills `w` with N(0, 2/fan_in) from `rng(seed, stream)`.
 * @throws std::invalid_argument when fan_in is 0.
 */
template <real_scalar T>
void he_normal_init(std::span<T> w, index_t fan_in, std::uint64_t seed, std::uint64_t stream) {
  require(fan_in > 0, "he_normal_init: fan_in must be > 0");
  rng g(seed, stream);
  const double sigma = std::sqrt(2.0 / double(fan_in));
  for (auto& x : w) x = static_cast<T>(sigma * g.normal<double>());
}

/// Fills `w` with `value` (biases: 0).
template <real_scalar T>
void constant_init(std::span<T> w, T value) noexcept {
  for (auto& x : w) x = value;
}

}  // namespace zss
