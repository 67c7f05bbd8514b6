// SPDX-License-Identifier: Apache-2.0
// Tests for zss/eval/metrics.hpp against hand-computed confusion matrices.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "zss/eval/metrics.hpp"

namespace test_eval_metrics {

using namespace zss;

TEST_CASE("IoU, mIoU(S/U), hIoU and pixel accuracy on a hand-computed case") {
  // Classes 0, 1 seen; 2 unseen; class 3 absent everywhere.
  const std::vector<std::int32_t> truth = {0, 0, 0, 1, 1, 2, 2, 2, -1, -1};
  const std::vector<std::int32_t> pred = {0, 0, 1, 1, 2, 2, 2, 0, 3, 1};
  eval::confusion_matrix cm(4);
  cm.add(truth.data(), pred.data(), truth.size());
  CHECK(cm(0, 0) == 2);
  CHECK(cm(2, 0) == 1);
  const bool seen[] = {true, true, false, true};
  auto m = eval::compute_metrics(cm, seen);
  // class 0: TP 2, FP 1 (truth 2), FN 1 -> 2/4; class 1: TP 1, FP 1, FN 1 -> 1/3;
  // class 2: TP 2, FP 1, FN 1 -> 2/4; class 3 absent.
  CHECK(m.per_class_iou[0] == doctest::Approx(0.5));
  CHECK(m.per_class_iou[1] == doctest::Approx(1.0 / 3));
  CHECK(m.per_class_iou[2] == doctest::Approx(0.5));
  CHECK(std::isnan(m.per_class_iou[3]));
  CHECK(m.miou_seen == doctest::Approx((0.5 + 1.0 / 3) / 2));
  CHECK(m.miou_unseen == doctest::Approx(0.5));
  const double S = (0.5 + 1.0 / 3) / 2, U = 0.5;
  CHECK(m.hiou == doctest::Approx(2 * S * U / (S + U)));
  CHECK(m.pixel_acc == doctest::Approx(5.0 / 8));
  // Precision TP / (TP + FP), recall TP / (TP + FN); never predicted / absent → NaN.
  CHECK(m.per_class_precision[0] == doctest::Approx(2.0 / 3));
  CHECK(m.per_class_recall[1] == doctest::Approx(1.0 / 2));
  CHECK(m.per_class_recall[2] == doctest::Approx(2.0 / 3));
  CHECK(std::isnan(m.per_class_precision[3]));
  CHECK(std::isnan(m.per_class_recall[3]));
  REQUIRE(m.confusion.size() == 16);
  CHECK(m.confusion[2 * 4 + 0] == 1);
  CHECK(m.confusion[1 * 4 + 2] == 1);
  // Without background in the means.
  auto nb = eval::compute_metrics(cm, seen, false);
  CHECK(nb.miou_seen == doctest::Approx(1.0 / 3));
}

TEST_CASE("hIoU is 0 when nothing unseen is right; errors name the labels") {
  eval::confusion_matrix cm(3);
  const std::vector<std::int32_t> t = {0, 1, 2}, p = {0, 1, 1};
  cm.add(t.data(), p.data(), 3);
  const bool seen[] = {true, true, false};
  auto m = eval::compute_metrics(cm, seen);
  CHECK(m.miou_unseen == 0.0);
  CHECK(m.hiou == 0.0);
  const std::vector<std::int32_t> bad = {5};
  CHECK_THROWS_WITH_AS(cm.add(bad.data(), p.data(), 1), doctest::Contains("truth 5"),
                       std::invalid_argument);
  const bool short_seen[] = {true};
  CHECK_THROWS_AS(eval::compute_metrics(cm, short_seen), std::invalid_argument);
  eval::confusion_matrix other(3);
  other.merge(cm);
  CHECK(other(2, 1) == 1);
}

}  // namespace test_eval_metrics
