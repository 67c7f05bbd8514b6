// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/eval/metrics.hpp
 * The generalised zero-shot segmentation protocol (DESIGN.md §2.5): a confusion matrix over all
 * classes (label −1 ignored), per-class IoU = TP / (TP + FP + FN), mIoU over the seen and over
 * the unseen classes, their harmonic mean hIoU = 2·S·U / (S + U) (0 when both are 0), and pixel
 * accuracy.
 *
 * A class that appears neither in the ground truth nor in the predictions (TP + FP + FN = 0)
 * has no IoU (NaN in `per_class_iou`) and is left out of the means — the convention of
 * mmsegmentation. `include_background = false` leaves class 0 out of mIoU(S) (the VOC protocol
 * that ignores background is `ignore_label(0)` on the inputs instead).
 */
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "zss/core/check.hpp"
#include "zss/core/config.hpp"

namespace zss::eval {

/// C × C counts: rows = ground truth, columns = prediction.
class confusion_matrix {
 public:
  explicit confusion_matrix(index_t classes) : c_(classes), m_(classes * classes, 0) {
    require(classes > 0, "confusion_matrix: needs at least one class");
  }

  index_t classes() const noexcept { return c_; }
  std::uint64_t operator()(index_t truth, index_t pred) const noexcept {
    return m_[truth * c_ + pred];
  }

  /**
   * Adds `n` pixels. Ground truth −1 is ignored; any other value must lie in [0, C), as must
   * every prediction of a counted pixel.
   * @throws std::invalid_argument naming the first out-of-range label.
   */
  void add(const std::int32_t* truth, const std::int32_t* pred, index_t n) {
    for (index_t i = 0; i < n; ++i) {
      const auto t = truth[i], p = pred[i];
      if (t == -1) continue;
      // The message is built only on failure (this runs once per pixel).
      if (!(t >= 0 && index_t(t) < c_ && p >= 0 && index_t(p) < c_))
        throw std::invalid_argument("confusion_matrix::add: pixel " + std::to_string(i) +
                                    " has truth " + std::to_string(t) + " and prediction " +
                                    std::to_string(p) + ", expected labels in [0, " +
                                    std::to_string(c_) + ") (truth may be -1)");
      m_[index_t(t) * c_ + index_t(p)]++;
    }
  }

  /// Adds another matrix of the same size (e.g. one per thread, merged in a fixed order).
  void merge(const confusion_matrix& o) {
    check_extent("confusion_matrix::merge", "classes", o.c_, "classes", c_);
    for (index_t i = 0; i < m_.size(); ++i) m_[i] += o.m_[i];
  }

 private:
  index_t c_;
  std::vector<std::uint64_t> m_;
};

struct segmentation_metrics {
  std::vector<double> per_class_iou;        ///< C values, NaN where the class is absent
  double miou_seen = 0;                     ///< mean IoU over seen classes present
  double miou_unseen = 0;                   ///< mean IoU over unseen classes present
  double hiou = 0;                          ///< harmonic mean of the two
  double miou = 0;                          ///< mean IoU over all classes present
  double pixel_acc = 0;                     ///< correct / counted pixels
  std::vector<double> per_class_precision;  ///< C values: TP / (TP + FP), NaN when never predicted
  std::vector<double> per_class_recall;     ///< C values: TP / (TP + FN), NaN where absent
  std::vector<std::uint64_t> confusion;     ///< C × C counts (rows truth, columns prediction)
};

/**
 * Metrics from a confusion matrix.
 * @param seen  C flags: true for seen classes.
 * @param include_background  whether class 0 counts in mIoU(S) and mIoU.
 */
inline segmentation_metrics compute_metrics(const confusion_matrix& cm, std::span<const bool> seen,
                                            bool include_background = true) {
  const index_t C = cm.classes();
  check_extent("compute_metrics", "seen flags", seen.size(), "classes", C);
  segmentation_metrics r;
  r.per_class_iou.assign(C, std::numeric_limits<double>::quiet_NaN());
  r.per_class_precision.assign(C, std::numeric_limits<double>::quiet_NaN());
  r.per_class_recall.assign(C, std::numeric_limits<double>::quiet_NaN());
  r.confusion.resize(C * C);
  for (index_t k = 0; k < C; ++k)
    for (index_t j = 0; j < C; ++j) r.confusion[k * C + j] = cm(k, j);
  std::uint64_t correct = 0, total = 0;
  double s_sum = 0, u_sum = 0, a_sum = 0;
  index_t s_n = 0, u_n = 0, a_n = 0;
  for (index_t k = 0; k < C; ++k) {
    std::uint64_t tp = cm(k, k), fp = 0, fn = 0;
    for (index_t j = 0; j < C; ++j) {
      total += cm(k, j);
      if (j == k) continue;
      fp += cm(j, k);
      fn += cm(k, j);
    }
    correct += tp;
    if (tp + fp) r.per_class_precision[k] = double(tp) / double(tp + fp);
    if (tp + fn) r.per_class_recall[k] = double(tp) / double(tp + fn);
    const std::uint64_t den = tp + fp + fn;
    if (den == 0) continue;
    const double iou = double(tp) / double(den);
    r.per_class_iou[k] = iou;
    if (k == 0 && !include_background) continue;
    a_sum += iou, ++a_n;
    if (seen[k])
      s_sum += iou, ++s_n;
    else
      u_sum += iou, ++u_n;
  }
  r.miou_seen = s_n ? s_sum / double(s_n) : 0.0;
  r.miou_unseen = u_n ? u_sum / double(u_n) : 0.0;
  r.miou = a_n ? a_sum / double(a_n) : 0.0;
  const double S = r.miou_seen, U = r.miou_unseen;
  r.hiou = (S + U) > 0 ? 2 * S * U / (S + U) : 0.0;
  r.pixel_acc = total ? double(correct) / double(total) : 0.0;
  return r;
}

}  // namespace zss::eval
