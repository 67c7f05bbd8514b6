// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/train/toy.hpp
 * The trainer on the toy world (DESIGN.md §4): class bookkeeping, the cached per-image targets
 * (PLM pseudo labels from the simulated teacher), batches, and the GZSL evaluation (§2.5) of
 * the student and of the teacher's own zero-shot segmentation.
 *
 * Legend: Ks seen classes (background + 15 by default), K = 21 classes, H × W pixels, h_t × w_t
 * teacher grid, h × w student grid, D width.
 *
 * PLM pseudo labels per training image (DESIGN §2.3), computed once (they depend on the teacher
 * and the seen labels only) by train/dataset.hpp's `make_image_targets`, the path a dataset on
 * disk takes too: seen pixel labels → class-set indices → token labels on the teacher grid →
 * multi-scale K-Means of the teacher tokens (window seeds) → mask fusion and fusion with the seen
 * labels → the fused map → `targets_from_fused` (nearest neighbour to the student grid, regions,
 * u_l).
 *
 * Inputs: images enter the student as `2·(x − 0.5)` (pixels in [0, 1] → [−1, 1]).
 */
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "zss/core/parallel.hpp"
#include "zss/core/random.hpp"
#include "zss/eval/metrics.hpp"
#include "zss/eval/predict.hpp"
#include "zss/plm/pseudo_labels.hpp"
#include "zss/plm/targets.hpp"
#include "zss/plm/token_labels.hpp"
#include "zss/toy/dataset.hpp"
#include "zss/train/config.hpp"
#include "zss/train/dataset.hpp"
#include "zss/train/trainer.hpp"

namespace zss::train {

/// Seen/unseen bookkeeping of a toy world (train/dataset.hpp's class table of its 21 classes).
template <real_scalar T>
struct toy_classes : class_table<T> {
  explicit toy_classes(const toy::world<T>& w) : class_table<T>(w.text, seen_flags(w)) {}

 private:
  static std::vector<bool> seen_flags(const toy::world<T>& w) {
    std::vector<bool> seen(toy::class_count);
    for (index_t k = 0; k < toy::class_count; ++k) seen[k] = w.seen(std::int32_t(k));
    return seen;
  }
};

/// Seen pixel labels of a training scene as class-set indices (unseen/unlabelled → −1).
template <real_scalar T>
tensor<std::int32_t, 2> seen_index_labels(const toy::scene& s, const toy_classes<T>& cls) {
  return seen_index_labels(s.train_labels, static_cast<const class_table<T>&>(cls));
}

/// The teacher's view of a training scene (tokens, grid, the labels with unseen classes hidden).
template <real_scalar T>
teacher_view<T> toy_view(const toy::scene& s, const toy::teacher_output<T>& t) {
  return {matrix_ref<const T>(t.tokens.data(), t.grid_h * t.grid_w, t.tokens.shape()[1]), t.grid_h,
          t.grid_w, &s.train_labels};
}

/**
 * The PLM fused label map of one image on the teacher grid (DESIGN §2.3 steps 1–4; the toy
 * teacher's tokens are unit rows already).
 * @returns Q labels: seen index, `Ks + m`, or −1.
 */
template <real_scalar T>
std::vector<std::int32_t> toy_fused_labels(const toy::scene& s, const toy::teacher_output<T>& t,
                                           const toy_classes<T>& cls,
                                           const pseudo_label_options& pc,
                                           std::uint64_t image = 0) {
  return fused_token_labels(toy_view(s, t), cls, pc, image, true);
}

/**
 * Targets of every training image, in parallel (one image per task; independent of threads).
 * With `plm` the fused PLM map, else the seen token labels only; with `plm` and
 * `cfg.plm.gap_shift` the region tokens then move across the modality gap (plm/targets.hpp),
 * and `gap`, when given, receives what the shift measured (left untouched otherwise).
 */
template <real_scalar T>
std::vector<image_targets<T>> make_toy_targets(const toy::world<T>& w, const toy_classes<T>& cls,
                                               const trainer_options& cfg, bool plm,
                                               int threads = 0, modality_gap_shift* gap = nullptr) {
  std::vector<image_targets<T>> out(w.train.size());
  parallel_for(w.train.size(), threads, [&](index_t i, int) {
    out[i] = make_image_targets(toy_view(w.train[i], w.train_teacher[i]), cls, cfg, plm, i, true);
  });
  if (plm && cfg.plm.gap_shift) {
    auto g = shift_modality_gap(std::span<image_targets<T>>(out), as_matrix(cls.seen_text));
    if (gap) *gap = std::move(g);
  }
  return out;
}

/// The images of scenes `idx` (views).
inline std::vector<const tensor<float, 3>*> toy_image_views(const std::vector<toy::scene>& scenes,
                                                            std::span<const index_t> idx) {
  std::vector<const tensor<float, 3>*> out;
  for (auto i : idx) out.push_back(&scenes[i].image);
  return out;
}

/// Student input of scenes `idx` (2·(x − 0.5)).
template <real_scalar T>
tensor<T, 4> toy_images(const std::vector<toy::scene>& scenes, std::span<const index_t> idx) {
  require(!idx.empty(), "toy_images: no images");
  const auto views = toy_image_views(scenes, idx);
  return student_images<T>(std::span<const tensor<float, 3>* const>(views));
}

/// The training batch of scenes `idx`, image b mirrored when `flips[b]` (train/sampler.hpp).
template <real_scalar T>
train_batch<T> toy_batch(const toy::world<T>& w, const std::vector<image_targets<T>>& targets,
                         std::span<const index_t> idx, std::span<const char> flips = {}) {
  const auto views = toy_image_views(w.train, idx);
  std::vector<const T*> cls;
  std::vector<const image_targets<T>*> tp;
  for (auto i : idx) cls.push_back(w.train_teacher[i].cls.data()), tp.push_back(&targets[i]);
  return make_batch<T>(std::span<const tensor<float, 3>* const>(views),
                       std::span<const T* const>(cls), w.text.shape()[1], std::move(tp), flips);
}

/// GZSL metrics of the student on the test scenes (all 21 classes scored; DESIGN §2.5).
template <real_scalar T>
eval::segmentation_metrics evaluate_student(
    const toy::world<T>& w, const toy_classes<T>& cls, const encoder<T>& net,
    const eval::predict_options& ip = {}, index_t batch = 32,
    std::vector<tensor<std::int32_t, 2>>* predictions = nullptr) {
  std::vector<const tensor<float, 3>*> images;
  std::vector<const tensor<std::int32_t, 2>*> labels;
  for (const auto& s : w.test) images.push_back(&s.image), labels.push_back(&s.labels);
  return evaluate_student<T>(std::span<const tensor<float, 3>* const>(images),
                             std::span<const tensor<std::int32_t, 2>* const>(labels), w.text, cls,
                             net, ip, batch, predictions);
}

/// GZSL metrics of the teacher's own zero-shot segmentation (`toy::classify_tokens`, all classes).
template <real_scalar T>
eval::segmentation_metrics evaluate_teacher(const toy::world<T>& w, const toy_classes<T>& cls) {
  const index_t H = w.params.scenes.height, W = w.params.scenes.width;
  eval::confusion_matrix cm(toy::class_count);
  for (index_t i = 0; i < w.test.size(); ++i) {
    const auto pred = toy::classify_tokens(w.test_teacher[i], w.text, cls.all_ids, H, W);
    cm.add(w.test[i].labels.data(), pred.data(), H * W);
  }
  return eval::compute_metrics(cm, cls.seen());
}

/**
 * How CLIP-like the teacher is on the test scenes: for every *pure* patch (≥ 90 % of its pixels one
 * class, clutter excluded) the cosine of its dense token with its own class's text embedding and
 * with the best other class's, and whether its own class is the nearest (the teacher's own
 * zero-shot per token). Seen and unseen classes separately.
 */
struct teacher_statistics {
  struct part {
    index_t tokens = 0;         ///< pure tokens of these classes
    double cos_own = 0;         ///< mean cos(token, own class text)
    double cos_other = 0;       ///< mean of the best other class's cosine
    double nearest_is_own = 0;  ///< fraction whose nearest text is their own class
  } seen, unseen;
  double cls_cos_present = 0;  ///< mean cos(CLS, text of a class present in the image)
  double cls_cos_absent = 0;   ///< mean cos(CLS, text of a class absent from the image)
  double gap_cos = 0;          ///< mean cos(G t, t) = tr(G)/D of the modality-gap rotation
};

template <real_scalar T>
teacher_statistics measure_teacher(const toy::world<T>& w, const toy_classes<T>& cls) {
  const index_t K = toy::class_count, D = w.text.shape()[1];
  teacher_statistics st;
  double present_sum = 0, absent_sum = 0;
  index_t present_n = 0, absent_n = 0;
  for (index_t i = 0; i < w.test.size(); ++i) {
    const auto& sc = w.test[i];
    const auto& t = w.test_teacher[i];
    const index_t H = sc.labels.shape()[0], W = sc.labels.shape()[1];
    const index_t ph = H / t.grid_h, pw = W / t.grid_w;
    std::array<bool, toy::class_count> in_image{};
    for (auto l : sc.labels)
      if (l >= 0) in_image[index_t(l)] = true;
    for (index_t k = 0; k < K; ++k) {
      double c = 0;
      for (index_t d = 0; d < D; ++d) c += double(t.cls(d)) * double(w.text(k, d));
      (in_image[k] ? present_sum : absent_sum) += c;
      ++(in_image[k] ? present_n : absent_n);
    }
    for (index_t gy = 0; gy < t.grid_h; ++gy)
      for (index_t gx = 0; gx < t.grid_w; ++gx) {
        std::array<index_t, toy::class_count> count{};
        index_t clutter = 0;
        for (index_t y = gy * ph; y < (gy + 1) * ph; ++y)
          for (index_t x = gx * pw; x < (gx + 1) * pw; ++x) {
            const auto l = sc.labels(y, x);
            if (l < 0)
              ++clutter;
            else
              ++count[index_t(l)];
          }
        const auto best = index_t(std::max_element(count.begin(), count.end()) - count.begin());
        if (clutter > 0 || double(count[best]) < 0.9 * double(ph * pw)) continue;
        const T* z = t.tokens.data() + (gy * t.grid_w + gx) * D;
        double own = 0, other = -2;
        index_t arg = 0;
        double top = -2;
        for (index_t k = 0; k < K; ++k) {
          double c = 0;
          for (index_t d = 0; d < D; ++d) c += double(z[d]) * double(w.text(k, d));
          if (k == best)
            own = c;
          else
            other = std::max(other, c);
          if (c > top) top = c, arg = k;
        }
        auto& part = cls.seen_flag[best] ? st.seen : st.unseen;
        ++part.tokens;
        part.cos_own += own;
        part.cos_other += other;
        part.nearest_is_own += arg == best ? 1.0 : 0.0;
      }
  }
  for (auto* part : {&st.seen, &st.unseen})
    if (part->tokens) {
      part->cos_own /= double(part->tokens);
      part->cos_other /= double(part->tokens);
      part->nearest_is_own /= double(part->tokens);
    }
  const toy::teacher<T> teach(w.text, w.params.teacher);
  st.gap_cos = teach.gap_rotation().trace() / double(D);
  st.cls_cos_present = present_n ? present_sum / double(present_n) : 0;
  st.cls_cos_absent = absent_n ? absent_sum / double(absent_n) : 0;
  return st;
}

/// What the pseudo classes' weights know about the unseen classes (docs/EXPERIMENTS.md).
struct prototype_probe {
  index_t regions = 0;     ///< pseudo regions of training images ≥ `purity` one unseen class
  index_t top1 = 0;        ///< … whose weight's nearest text embedding (of all K) is that class
  double mean_rank = 0;    ///< mean rank of that class among the K (0 = nearest)
  double cos_own = 0;      ///< mean cos(weight, the class's text embedding)
  double cos_other = 0;    ///< mean of the best other class's cosine (the margin's other side)
  double cos_within = 0;   ///< mean cos between two weights of the same class (other regions)
  double cos_between = 0;  ///< mean cos between two weights of different unseen classes
  std::vector<index_t> class_regions = std::vector<index_t>(toy::class_count, 0);  ///< per class
  std::vector<index_t> class_top1 = std::vector<index_t>(toy::class_count, 0);     ///< per class
  double chance() const noexcept { return 1.0 / double(toy::class_count); }
  double top1_rate() const noexcept { return regions ? double(top1) / double(regions) : 0.0; }
};

/**
 * Probes the pseudo classes' weights of the first `images` training scenes (default: all): the
 * synthesizer's prototypes as `tr` makes them now (`teacher_tokens` = false; runs
 * `forward_backward` without a flip, which overwrites the gradients but changes no parameter), or
 * the teacher's region tokens n(u_l) (`teacher_tokens` = true). A region's class is the majority
 * hidden class of its pixels; only regions where it holds ≥ `purity` of them and is unseen count.
 * Chance for top-1 is 1/K.
 */
template <real_scalar T>
prototype_probe probe_prototypes(trainer<T>& tr, const toy::world<T>& w, const toy_classes<T>& cls,
                                 const std::vector<image_targets<T>>& targets, bool teacher_tokens,
                                 index_t images = ~index_t(0), double purity = 0.8) {
  const index_t K = toy::class_count, D = w.text.shape()[1], Ks = cls.seen_ids.size();
  const index_t n = std::min<index_t>(images, w.train.size()), B = 16;
  prototype_probe pr;
  std::vector<std::pair<index_t, std::vector<double>>> unit;  // (class, n(weight)) per region
  for (index_t b0 = 0; b0 < n; b0 += B) {
    const index_t nb = std::min(B, n - b0);
    std::vector<index_t> idx(nb);
    for (index_t i = 0; i < nb; ++i) idx[i] = b0 + i;
    matrix_ref<const T> Pi;
    std::span<const index_t> ro;
    if (!teacher_tokens) {
      (void)tr.forward_backward(toy_batch<T>(w, targets, std::span<const index_t>(idx)));
      Pi = tr.prototypes();
      ro = tr.region_offsets();
      if (Pi.rows == 0) return pr;  // no synthesizer in this configuration
    }
    for (index_t i = 0; i < nb; ++i) {
      const auto& t = targets[b0 + i];
      const auto& sc = w.train[b0 + i];
      const index_t H = sc.labels.shape()[0], W = sc.labels.shape()[1];
      const index_t S = t.seen_regions();
      for (index_t m = 0; m < t.pseudo_count; ++m) {
        std::array<index_t, toy::class_count> count{};
        index_t total = 0;
        for (index_t y = 0; y < H; ++y)
          for (index_t x = 0; x < W; ++x) {
            if (t.labels[(y * t.grid_h / H) * t.grid_w + x * t.grid_w / W] != std::int32_t(Ks + m))
              continue;
            ++total;
            if (sc.labels(y, x) >= 0) ++count[index_t(sc.labels(y, x))];
          }
        const auto k = index_t(std::max_element(count.begin(), count.end()) - count.begin());
        if (total == 0 || cls.seen_flag[k] || double(count[k]) < purity * double(total)) continue;
        std::vector<double> wv(D);
        if (teacher_tokens) {
          for (index_t d = 0; d < D; ++d) wv[d] = double(t.region_tokens(S + m, d));
        } else {
          const index_t r = ro[i] + S + m;
          for (index_t d = 0; d < D; ++d) wv[d] = double(Pi(r, d));
        }
        double nw = 0;
        for (double x : wv) nw += x * x;
        nw = std::sqrt(std::max(nw, 1e-300));
        unit.emplace_back(k, wv);
        for (double& x : unit.back().second) x /= nw;
        std::vector<double> c(K, 0.0);
        for (index_t j = 0; j < K; ++j)
          for (index_t d = 0; d < D; ++d) c[j] += wv[d] * double(w.text(j, d)) / nw;
        index_t rank = 0;
        double other = -2;
        for (index_t j = 0; j < K; ++j) {
          rank += c[j] > c[k];
          if (j != k) other = std::max(other, c[j]);
        }
        pr.cos_other += other;
        ++pr.regions;
        pr.top1 += rank == 0;
        ++pr.class_regions[k];
        pr.class_top1[k] += rank == 0;
        pr.mean_rank += double(rank);
        pr.cos_own += c[k];
      }
    }
  }
  if (pr.regions)
    pr.mean_rank /= double(pr.regions), pr.cos_own /= double(pr.regions),
        pr.cos_other /= double(pr.regions);
  double within = 0, between = 0;
  index_t nw = 0, nb = 0;
  for (index_t a = 0; a < unit.size(); ++a)
    for (index_t b = a + 1; b < unit.size(); ++b) {
      double c = 0;
      for (index_t d = 0; d < D; ++d) c += unit[a].second[d] * unit[b].second[d];
      if (unit[a].first == unit[b].first)
        within += c, ++nw;
      else
        between += c, ++nb;
    }
  pr.cos_within = nw ? within / double(nw) : 0.0;
  pr.cos_between = nb ? between / double(nb) : 0.0;
  return pr;
}

}  // namespace zss::train
