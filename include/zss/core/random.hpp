// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/core/random.hpp
 * A small, fast, seedable generator with independent, reproducible streams.
 *
 * `rng` is xoshiro256** (Blackman & Vigna), seeded through splitmix64 from a `(seed, stream)`
 * pair. Stream ids name the consumer, not the thread that happens to run it: image `b` of a
 * batch uses `rng(seed, b)`, so its random draws do not depend on the thread count or on the
 * order in which images are processed. Per-thread streams (`rng(seed, thread_stream(t))`) are
 * for work whose result may depend on the thread count. No global state: a Python binding or an
 * MPI rank constructs its own.
 *
 * `rng` satisfies `std::uniform_random_bit_generator`, but zss's own draws use the members
 * below (their results are fixed across standard libraries; `std::*_distribution` are not).
 */
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>

#include "zss/core/config.hpp"

namespace zss {

namespace detail {
__extension__ typedef unsigned __int128 uint128;  // GCC/Clang; __extension__ keeps -Wpedantic quiet
}

/// splitmix64 step: advances `state` and returns a well-mixed 64-bit value.
constexpr std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// Stream ids ≥ 2^63 are reserved for per-thread streams, below for per-item streams.
constexpr std::uint64_t thread_stream(int thread) noexcept {
  return (std::uint64_t(1) << 63) | static_cast<std::uint64_t>(thread);
}

class rng {
 public:
  using result_type = std::uint64_t;

  /// Generator for `stream` of `seed`; different `(seed, stream)` pairs give independent sequences.
  explicit rng(std::uint64_t seed = 0, std::uint64_t stream = 0) noexcept {
    std::uint64_t sm = seed ^ (0xD1B54A32D192ED03ull * (stream + 1));
    // Mix twice so that nearby (seed, stream) pairs start far apart.
    splitmix64(sm);
    sm ^= stream;
    for (auto& w : s_) w = splitmix64(sm);
  }

  static constexpr result_type min() noexcept { return 0; }
  static constexpr result_type max() noexcept { return std::numeric_limits<result_type>::max(); }

  /// Next 64 random bits.
  result_type operator()() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  /// Uniform in [0, 1) with the full mantissa of `T` (53 or 24 random bits).
  template <real_scalar T = double>
  T uniform() noexcept {
    if constexpr (std::same_as<T, double>)
      return static_cast<double>((*this)() >> 11) * 0x1.0p-53;
    else
      return static_cast<float>((*this)() >> 40) * 0x1.0p-24f;
  }

  /// Uniform in [lo, hi).
  template <real_scalar T = double>
  T uniform(T lo, T hi) noexcept {
    return lo + (hi - lo) * uniform<T>();
  }

  /// Unbiased uniform integer in [0, n) (Lemire's multiply-and-reject); `n` > 0.
  std::uint64_t below(std::uint64_t n) noexcept {
    detail::uint128 m = static_cast<detail::uint128>((*this)()) * n;
    auto low = static_cast<std::uint64_t>(m);
    if (low < n) {
      const std::uint64_t threshold = (0 - n) % n;
      while (low < threshold) {
        m = static_cast<detail::uint128>((*this)()) * n;
        low = static_cast<std::uint64_t>(m);
      }
    }
    return static_cast<std::uint64_t>(m >> 64);
  }

  /// Standard normal (Box–Muller; the second value of each pair is kept for the next call).
  template <real_scalar T = double>
  T normal() noexcept {
    if (has_spare_) {
      has_spare_ = false;
      return static_cast<T>(spare_);
    }
    double u1 = 0;
    while (u1 == 0) u1 = uniform<double>();
    const double u2 = uniform<double>();
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double a = 2.0 * std::numbers::pi * u2;
    spare_ = r * std::sin(a);
    has_spare_ = true;
    return static_cast<T>(r * std::cos(a));
  }

  /// Normal with mean `mu` and standard deviation `sigma`.
  template <real_scalar T = double>
  T normal(T mu, T sigma) noexcept {
    return mu + sigma * normal<T>();
  }

 private:
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept {
    return (x << k) | (x >> (64 - k));
  }
  std::uint64_t s_[4];
  double spare_ = 0;
  bool has_spare_ = false;
};

}  // namespace zss
