// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/train/sampler.hpp
 * Which images and which flips a training step uses: a pure function of (seed, step), so a run
 * resumed at step s sees exactly the batches of an uninterrupted run, on any thread count.
 *
 * Legend: n training images, B images per step.
 *
 * Step s takes the B consecutive positions `[s·B, (s+1)·B)` of an endless sequence of epochs;
 * epoch e is a Fisher–Yates permutation of `0..n−1` drawn from `rng(seed ^ 0xda7a5eed, e)` (a
 * batch that crosses an epoch's end continues in the next permutation). Flip b of step s is a
 * coin from `rng(seed ^ 0xf11b, s)`, drawn in batch order.
 */
#include <cstdint>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "zss/core/check.hpp"
#include "zss/core/random.hpp"

namespace zss::train {

class batch_sampler {
 public:
  /// @throws std::invalid_argument when n or B is 0.
  batch_sampler(index_t n, index_t batch, std::uint64_t seed) : n_(n), batch_(batch), seed_(seed) {
    require(n > 0, "batch_sampler: no training images");
    require(batch > 0, "batch_sampler: batch must be >= 1");
  }

  index_t images() const noexcept { return n_; }
  index_t batch() const noexcept { return batch_; }

  /// The B image indices of step `s` (in batch order).
  std::vector<index_t> indices(std::uint64_t s) {
    std::vector<index_t> idx(batch_);
    const std::uint64_t first = s * batch_;
    for (index_t i = 0; i < batch_; ++i) {
      const std::uint64_t pos = first + i;
      idx[i] = permutation(pos / n_)[pos % n_];
    }
    return idx;
  }

  /// The B flip flags of step `s` (all 0 when `flip` is off).
  std::vector<char> flips(std::uint64_t s, bool flip) const {
    std::vector<char> f(batch_, 0);
    if (!flip) return f;
    rng g(seed_ ^ 0xf11bull, s);
    for (auto& x : f) x = char(g.below(2));
    return f;
  }

 private:
  const std::vector<index_t>& permutation(std::uint64_t e) {
    if (e == epoch_ && !perm_.empty()) return perm_;
    epoch_ = e;
    perm_.resize(n_);
    std::iota(perm_.begin(), perm_.end(), index_t(0));
    rng g(seed_ ^ 0xda7a5eedull, e);
    for (index_t i = n_ - 1; i > 0; --i) std::swap(perm_[i], perm_[g.below(i + 1)]);
    return perm_;
  }

  index_t n_, batch_;
  std::uint64_t seed_;
  std::uint64_t epoch_ = 0;
  std::vector<index_t> perm_;
};

}  // namespace zss::train
