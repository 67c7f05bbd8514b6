// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/clip/evaluate.hpp
 * What a CLIP-like teacher is measured by (DESIGN.md §4, the learned teacher): image-level
 * zero-shot (which classes an image contains, from its CLS embedding against the class prompts)
 * and the cosine statistics real CLIP is known for. The dense zero-shot segmentation is
 * `train::evaluate_teacher` on a world that uses the learned teacher (teacher.hpp).
 *
 * Legend: N images, K = 21 classes, D width, Q tokens per image.
 *
 * Image-level zero-shot, per class k: rank the N images by ⟨c_i, t_k⟩; AP_k = the mean, over the
 * images containing k, of the precision at their rank (ties broken by image order). A class is
 * *present* when it is visible by the captions' rule (`min_pixels`). mAP over the 20 object
 * classes, the seen ones and the unseen ones; chance = the mean prevalence (the expected AP of a
 * random ranking). Per image, R-precision: with k object classes present, the fraction of them
 * among the image's k best-scoring object classes (chance: k/20 on average).
 *
 * Cosine statistics: ⟨c_i, caption_i⟩ (matching) against ⟨c_i, caption_j⟩, j ≠ i
 * (non-matching); ⟨c_i, t_k⟩ for present against absent classes; dense tokens whose patch is
 * ≥ 80 % one class, against that class's prompt (own) and the other 20 (other); mean cosine
 * between distinct class prompts; and the modality gap ‖mean(c) − mean(caption)‖ (Liang et al.,
 * "Mind the Gap", 2022).
 */
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>
#include <span>
#include <vector>

#include "zss/core/check.hpp"
#include "zss/core/simd.hpp"
#include "zss/core/tensor.hpp"
#include "zss/toy/classes.hpp"
#include "zss/toy/scenes.hpp"
#include "zss/toy/teacher.hpp"

namespace zss::clip {

/**
 * Average precision of `score` against `positive` (ranking by score, descending; ties keep
 * index order); NaN when there is no positive.
 */
inline double average_precision(std::span<const double> score, std::span<const char> positive) {
  check_extent("clip::average_precision", "labels", positive.size(), "scores", score.size());
  std::vector<index_t> order(score.size());
  std::iota(order.begin(), order.end(), index_t(0));
  std::stable_sort(order.begin(), order.end(),
                   [&](index_t a, index_t b) { return score[a] > score[b]; });
  double hits = 0, sum = 0;
  for (index_t r = 0; r < order.size(); ++r)
    if (positive[order[r]]) {
      hits += 1;
      sum += hits / double(r + 1);
    }
  return hits > 0 ? sum / hits : std::numeric_limits<double>::quiet_NaN();
}

/// Image-level zero-shot (see the file comment); numbers in [0, 1].
struct image_zero_shot_metrics {
  std::array<double, toy::class_count> ap{};          ///< per class (NaN without positives)
  std::array<double, toy::class_count> prevalence{};  ///< per class: chance AP
  double map_objects = 0, map_seen = 0, map_unseen = 0;
  double chance_objects = 0, chance_seen = 0, chance_unseen = 0;
  double r_precision = 0, r_precision_chance = 0;
  index_t images = 0;
};

/**
 * @param cls      N × D image embeddings (unit rows).
 * @param present  N flags per class id.
 * @param text     21 × D class embeddings (unit rows).
 * @param split    which classes are unseen.
 */
template <real_scalar T>
image_zero_shot_metrics image_zero_shot(const_matrix_ref<T> cls,
                                        std::span<const std::array<bool, toy::class_count>> present,
                                        const_matrix_ref<T> text, const toy::class_split& split) {
  constexpr const char* where = "clip::image_zero_shot";
  const index_t N = cls.rows, K = toy::class_count, D = cls.cols;
  check_extent(where, "presence rows", present.size(), "images", N);
  check_shape(where, "text", text, K, D);
  require(N > 0, std::string(where) + ": no images");
  std::vector<double> score(N * K);
  for (index_t i = 0; i < N; ++i)
    for (index_t k = 0; k < K; ++k)
      score[i * K + k] = double(simd::dot(cls.row(i), text.row(k), D));
  image_zero_shot_metrics m;
  m.images = N;
  std::vector<double> s(N);
  std::vector<char> pos(N);
  double sum[3] = {0, 0, 0}, chance[3] = {0, 0, 0};
  index_t count[3] = {0, 0, 0};
  for (index_t k = 0; k < K; ++k) {
    index_t np = 0;
    for (index_t i = 0; i < N; ++i) s[i] = score[i * K + k], pos[i] = present[i][k], np += pos[i];
    m.ap[k] = average_precision(s, pos);
    m.prevalence[k] = double(np) / double(N);
    if (k == 0 || np == 0) continue;
    const int g = split.is_seen(std::int32_t(k)) ? 1 : 2;
    for (int a : {0, g}) sum[a] += m.ap[k], chance[a] += m.prevalence[k], ++count[a];
  }
  auto mean = [](double v, index_t n) {
    return n ? v / double(n) : std::numeric_limits<double>::quiet_NaN();
  };
  m.map_objects = mean(sum[0], count[0]), m.map_seen = mean(sum[1], count[1]),
  m.map_unseen = mean(sum[2], count[2]);
  m.chance_objects = mean(chance[0], count[0]), m.chance_seen = mean(chance[1], count[1]),
  m.chance_unseen = mean(chance[2], count[2]);
  double rp = 0, rc = 0;
  index_t rn = 0;
  for (index_t i = 0; i < N; ++i) {
    std::vector<index_t> order;
    index_t k_present = 0;
    for (index_t k = 1; k < K; ++k) order.push_back(k), k_present += present[i][k];
    if (k_present == 0) continue;
    std::stable_sort(order.begin(), order.end(),
                     [&](index_t a, index_t b) { return score[i * K + a] > score[i * K + b]; });
    index_t hits = 0;
    for (index_t r = 0; r < k_present; ++r) hits += present[i][order[r]];
    rp += double(hits) / double(k_present);
    rc += double(k_present) / double(K - 1);
    ++rn;
  }
  m.r_precision = mean(rp, rn), m.r_precision_chance = mean(rc, rn);
  return m;
}

/// Mean and standard deviation of a running set of numbers.
struct mean_std {
  double sum = 0, sum2 = 0;
  index_t n = 0;
  void add(double x) { sum += x, sum2 += x * x, ++n; }
  double mean() const { return n ? sum / double(n) : std::numeric_limits<double>::quiet_NaN(); }
  double std() const {
    if (n < 2) return 0;
    const double m = mean();
    return std::sqrt(std::max(0.0, (sum2 - double(n) * m * m) / double(n - 1)));
  }
};

/// The cosine statistics of the file comment.
struct cosine_statistics {
  mean_std matching, non_matching;         ///< image CLS vs its caption / other captions
  mean_std prompt_present, prompt_absent;  ///< image CLS vs class prompts
  mean_std token_own, token_other;         ///< pure dense tokens vs prompts
  mean_std prompt_prompt;                  ///< distinct class prompts
  double gap = 0;  ///< ‖mean image embedding − mean caption embedding‖
};

/**
 * @param scenes    N scenes (their full label maps give the tokens' classes).
 * @param teacher   N teacher outputs (unit CLS and tokens; grid dividing the image).
 * @param captions  N × D unit embeddings of the scenes' captions.
 * @param text      21 × D class prompt embeddings.
 * @param present   N presence flags per class.
 */
template <real_scalar T>
cosine_statistics cosine_stats(const std::vector<toy::scene>& scenes,
                               const std::vector<toy::teacher_output<T>>& teacher,
                               const_matrix_ref<T> captions, const_matrix_ref<T> text,
                               std::span<const std::array<bool, toy::class_count>> present) {
  constexpr const char* where = "clip::cosine_stats";
  const index_t N = scenes.size(), K = toy::class_count, D = text.cols;
  check_extent(where, "teacher outputs", teacher.size(), "scenes", N);
  check_shape(where, "captions", captions, N, D);
  check_extent(where, "presence rows", present.size(), "scenes", N);
  cosine_statistics st;
  std::vector<double> mi(D, 0.0), mt(D, 0.0);
  for (index_t i = 0; i < N; ++i) {
    const T* c = teacher[i].cls.data();
    for (index_t d = 0; d < D; ++d)
      mi[d] += double(c[d]) / double(N), mt[d] += double(captions(i, d)) / double(N);
    for (index_t j = 0; j < N; ++j) {
      const double v = double(simd::dot(c, captions.row(j), D));
      (i == j ? st.matching : st.non_matching).add(v);
    }
    for (index_t k = 0; k < K; ++k)
      (present[i][k] ? st.prompt_present : st.prompt_absent)
          .add(double(simd::dot(c, text.row(k), D)));
    const auto& t = teacher[i];
    const index_t H = scenes[i].labels.shape()[0], W = scenes[i].labels.shape()[1];
    const index_t ph = H / t.grid_h, pw = W / t.grid_w;
    for (index_t gy = 0; gy < t.grid_h; ++gy)
      for (index_t gx = 0; gx < t.grid_w; ++gx) {
        std::array<index_t, toy::class_count> count{};
        for (index_t y = gy * ph; y < (gy + 1) * ph; ++y)
          for (index_t x = gx * pw; x < (gx + 1) * pw; ++x)
            if (scenes[i].labels(y, x) >= 0) ++count[index_t(scenes[i].labels(y, x))];
        const auto best = index_t(std::max_element(count.begin(), count.end()) - count.begin());
        if (double(count[best]) < 0.8 * double(ph * pw)) continue;
        const T* z = t.tokens.data() + (gy * t.grid_w + gx) * D;
        for (index_t k = 0; k < K; ++k)
          (k == best ? st.token_own : st.token_other).add(double(simd::dot(z, text.row(k), D)));
      }
  }
  for (index_t a = 0; a < K; ++a)
    for (index_t b = a + 1; b < K; ++b)
      st.prompt_prompt.add(double(simd::dot(text.row(a), text.row(b), D)));
  double g = 0;
  for (index_t d = 0; d < D; ++d) g += (mi[d] - mt[d]) * (mi[d] - mt[d]);
  st.gap = std::sqrt(g);
  return st;
}

}  // namespace zss::clip
