// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/clip/corpus.hpp
 * mini-CLIP's pretraining corpus: toy scenes with captions, disjoint from the scenes the
 * student trains and is tested on (DESIGN.md §4, the learned teacher).
 *
 * Legend: N corpus scenes, B pairs per step, H × W pixels.
 *
 * Scene i of the corpus is `toy::make_scene(scenes, seed, corpus_index_base + i)`: the toy
 * world's own generator and options (so every class, unseen ones included, appears as often as
 * the world draws it) at indices no training (`[0, n)`) or test (`toy::test_index_base + …`)
 * scene uses. Images are kept as 8-bit RGB (as real image–text corpora are; the quantisation
 * step 1/255 is far below the toy's pixel noise) and the caption facts of each scene
 * (captions.hpp), so 4096 scenes take 50 MB. Generation runs in parallel, one scene per task;
 * the corpus is identical for any thread count.
 *
 * Batches: step s takes positions `[s·B, (s+1)·B)` of an endless sequence of shuffled epochs
 * (train/sampler.hpp) with random horizontal flips; the caption of the scene at position `pos`
 * is drawn anew each epoch (`make_caption(…, index = i + epoch·2^40)`), so templates, word order,
 * shape words and distractors vary between visits while the named classes stay the same.
 */
#include <cstdint>
#include <span>
#include <vector>

#include "zss/clip/captions.hpp"
#include "zss/core/check.hpp"
#include "zss/core/parallel.hpp"
#include "zss/core/tensor.hpp"
#include "zss/toy/scenes.hpp"
#include "zss/train/sampler.hpp"

namespace zss::clip {

/// First scene index of the corpus (above every test index the toy world uses).
inline constexpr std::uint64_t corpus_index_base = std::uint64_t(1) << 41;

/// One step's pairs.
template <real_scalar T>
struct corpus_batch {
  tensor<T, 4> images;               ///< B × H × W × 3, pixels as 2·(x − 0.5)
  std::vector<std::int32_t> tokens;  ///< all captions' tokens
  std::vector<index_t> offsets;      ///< B + 1
  std::vector<index_t> scenes;       ///< B corpus indices
};

class corpus {
 public:
  /**
   * Generates `n` scenes of the world with `scene_options` and `seed`.
   * @throws std::invalid_argument on n = 0 or invalid options.
   */
  corpus(const toy::scene_options& scenes, const caption_options& captions, index_t n,
         std::uint64_t seed, int threads = 0)
      : scenes_(scenes), captions_(captions), n_(n), seed_(seed) {
    require(n > 0, "clip::corpus: the corpus needs at least one scene");
    scenes.validate();
    captions.validate();
    H_ = scenes.height, W_ = scenes.width;
    pixels_.resize(n * H_ * W_ * 3);
    facts_.resize(n);
    parallel_for(n, threads, [&](index_t i, int) {
      const auto s = toy::make_scene(scenes, seed, corpus_index_base + i);
      std::uint8_t* px = pixels_.data() + i * H_ * W_ * 3;
      for (index_t j = 0; j < H_ * W_ * 3; ++j)
        px[j] = std::uint8_t(std::lround(255.0f * s.image.data()[j]));
      facts_[i] = caption_facts(s);
    });
  }

  index_t size() const noexcept { return n_; }
  index_t height() const noexcept { return H_; }
  index_t width() const noexcept { return W_; }
  const caption_facts& facts(index_t i) const { return facts_.at(i); }
  const caption_options& captions() const noexcept { return captions_; }

  /// The caption of corpus scene `i` at its `epoch`-th visit.
  caption caption_of(index_t i, std::uint64_t epoch) const {
    return make_caption(facts_.at(i), captions_, seed_, corpus_index_base + i + (epoch << 40));
  }

  /**
   * The pairs of step `step` with `B` pairs per step (see the file comment).
   * @param sampler a `train::batch_sampler` over this corpus (n = size(), its B, the run's seed).
   */
  template <real_scalar T>
  corpus_batch<T> batch(train::batch_sampler& sampler, std::uint64_t step, bool flip) const {
    require(sampler.images() == n_, "clip::corpus::batch: the sampler is over " +
                                        std::to_string(sampler.images()) +
                                        " images, the corpus has " + std::to_string(n_));
    const index_t B = sampler.batch();
    corpus_batch<T> out;
    out.scenes = sampler.indices(step);
    const auto flips = sampler.flips(step, flip);
    out.images = tensor<T, 4>::from_shape({B, H_, W_, 3});
    out.offsets = {0};
    for (index_t b = 0; b < B; ++b) {
      const index_t i = out.scenes[b];
      const std::uint8_t* px = pixels_.data() + i * H_ * W_ * 3;
      T* im = out.images.data() + b * H_ * W_ * 3;
      for (index_t y = 0; y < H_; ++y)
        for (index_t x = 0; x < W_; ++x) {
          const index_t xs = flips[b] ? W_ - 1 - x : x;
          for (index_t c = 0; c < 3; ++c)
            im[(y * W_ + x) * 3 + c] = T(2) * (T(px[(y * W_ + xs) * 3 + c]) / T(255) - T(0.5));
        }
      const std::uint64_t epoch = (step * B + b) / n_;
      const auto cap = caption_of(i, epoch);
      out.tokens.insert(out.tokens.end(), cap.tokens.begin(), cap.tokens.end());
      out.offsets.push_back(out.tokens.size());
    }
    return out;
  }

 private:
  toy::scene_options scenes_;
  caption_options captions_;
  index_t n_ = 0, H_ = 0, W_ = 0;
  std::uint64_t seed_ = 0;
  std::vector<std::uint8_t> pixels_;
  std::vector<caption_facts> facts_;
};

}  // namespace zss::clip
