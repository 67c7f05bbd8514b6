// SPDX-License-Identifier: Apache-2.0
#pragma once
// What the training programs print and write: the progress line, metrics as JSON, panels
// (image | ground truth | pseudo labels | prediction) and the Markdown table.
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "zss/eval/metrics.hpp"
#include "zss/io/atomic_file.hpp"
#include "zss/io/image_io.hpp"
#include "zss/plm/targets.hpp"
#include "zss/train/dataset.hpp"
#include "zss/train/trainer.hpp"

namespace zss::examples {

using clock_type = std::chrono::steady_clock;

/// One line on stderr: what the modality-gap shift (`--gap-shift`) measured before it moved the
/// region tokens (the means' norms and cosine; docs/EXPERIMENTS.md stop 13).
inline void print_gap_shift(const modality_gap_shift& g) {
  std::fprintf(stderr,
               "modality-gap shift: %zu region tokens moved by mean seen text - mean token; "
               "|mean token| %.2f, |mean seen text| %.2f, cos(means) %.2f\n",
               std::size_t(g.regions), g.token_mean_norm, g.text_mean_norm, g.cos_means);
}

inline nlohmann::json metrics_json(const eval::segmentation_metrics& m) {
  nlohmann::json j;
  j["miou_seen"] = m.miou_seen, j["miou_unseen"] = m.miou_unseen, j["hiou"] = m.hiou,
  j["pixel_acc"] = m.pixel_acc;
  j["miou"] = m.miou;
  nlohmann::json pc = nlohmann::json::array();
  for (double v : m.per_class_iou)
    pc.push_back(std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v));
  j["per_class_iou"] = pc;
  auto values = [](const std::vector<double>& v) {
    nlohmann::json a = nlohmann::json::array();
    for (double x : v) a.push_back(std::isnan(x) ? nlohmann::json(nullptr) : nlohmann::json(x));
    return a;
  };
  j["per_class_precision"] = values(m.per_class_precision);
  j["per_class_recall"] = values(m.per_class_recall);
  j["confusion"] = m.confusion;
  return j;
}

inline void write_json(const std::filesystem::path& file, const nlohmann::json& j) {
  write_file_atomically(file, [&](std::ostream& out) { out << j.dump(2) << '\n'; });
}

/// One-line progress: `\r` updates on a TTY, a plain line every ~10 % otherwise.
struct progress {
  bool tty = ::isatty(STDERR_FILENO) != 0;
  bool quiet = false;
  std::string label;
  std::uint64_t total = 1, last_line = 0;
  clock_type::time_point start = clock_type::now();
  std::uint64_t first = 0;
  /// A training step: its losses.
  void update(std::uint64_t step, const train::step_losses& l, index_t batch) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "loss %.3f (ce %.3f nel %.3f glm %.3f syn %.3f)", l.total, l.ce,
                  l.nel, l.glm, l.syn);
    update(step, std::string(buf), batch);
  }
  /// Any step (e.g. the teacher's): `numbers` between the step count and the speed.
  void update(std::uint64_t step, const std::string& numbers, index_t batch) {
    if (quiet) return;
    const double sec = std::chrono::duration<double>(clock_type::now() - start).count();
    const double done = double(step - first);
    const double ips = sec > 0 ? done * double(batch) / sec : 0.0;
    const double eta = done > 0 ? sec / done * double(total - step) : 0.0;
    char buf[320];
    std::snprintf(buf, sizeof buf, "%s step %5llu/%llu  %s  %6.0f img/s  ETA %3.0fs", label.c_str(),
                  (unsigned long long)step, (unsigned long long)total, numbers.c_str(), ips, eta);
    if (tty) {
      std::fprintf(stderr, "\r%s\033[K", buf);
      if (step == total) std::fputc('\n', stderr);
    } else if (step == total || step - last_line >= std::max<std::uint64_t>(1, total / 10)) {
      std::fprintf(stderr, "%s\n", buf);
      last_line = step;
    }
    std::fflush(stderr);
  }
};

/**
 * Panel: image | ground truth | pseudo labels | prediction, 3× upscaled; unseen classes hatched
 * white. Pseudo labels on the teacher grid (th × tw): seen index → its class's colour, pseudo m →
 * a colour beyond the classes, ignored black. Returns the PNG's bytes.
 */
template <real_scalar T>
std::vector<unsigned char> panel_png(const tensor<float, 3>& image,
                                     const tensor<std::int32_t, 2>& labels,
                                     const tensor<std::int32_t, 2>& pseudo_teacher, index_t th,
                                     index_t tw, const tensor<std::int32_t, 2>& pred,
                                     const train::class_table<T>& cls) {
  const index_t H = labels.shape()[0], W = labels.shape()[1], z = 3, gap = 4, n = 4;
  tensor<std::uint8_t, 3> img =
      tensor<std::uint8_t, 3>::from_shape({H * z, n * W * z + (n - 1) * gap, 3});
  img.fill(255);
  const index_t Ks = cls.seen_ids.size();
  auto put = [&](index_t panel, index_t y, index_t x, rgb c) {
    for (index_t dy = 0; dy < z; ++dy)
      for (index_t dx = 0; dx < z; ++dx)
        for (index_t ch = 0; ch < 3; ++ch)
          img(y * z + dy, panel * (W * z + gap) + x * z + dx, ch) = c[ch];
  };
  auto label_px = [&](std::int32_t id, index_t y, index_t x) {
    rgb c = label_colour(id);
    if (id > 0 && !cls.seen_flag[index_t(id)] && (y + x) % 4 == 0) c = {255, 255, 255};
    return c;
  };
  for (index_t y = 0; y < H; ++y)
    for (index_t x = 0; x < W; ++x) {
      rgb c;
      for (index_t ch = 0; ch < 3; ++ch)
        c[ch] = std::uint8_t(std::lround(255.0f * image(y, x, ch)));
      put(0, y, x, c);
      put(1, y, x, label_px(labels(y, x), y, x));
      const auto q = pseudo_teacher(y * th / H, x * tw / W);
      const rgb pc = q < 0             ? rgb{0, 0, 0}
                     : index_t(q) < Ks ? label_colour(cls.seen_ids[index_t(q)])
                                       : label_colour(40 + (q - std::int32_t(Ks)) * 7);
      put(2, y, x, pc);
      put(3, y, x, label_px(pred(y, x), y, x));
    }
  return encode_png(img.data(), img.shape()[0], img.shape()[1], img.shape()[2]);
}

/// `panel_png` written to `file` atomically.
template <real_scalar T>
void write_panel(const std::filesystem::path& file, const tensor<float, 3>& image,
                 const tensor<std::int32_t, 2>& labels,
                 const tensor<std::int32_t, 2>& pseudo_teacher, index_t th, index_t tw,
                 const tensor<std::int32_t, 2>& pred, const train::class_table<T>& cls) {
  write_bytes_atomically(file, panel_png(image, labels, pseudo_teacher, th, tw, pred, cls));
}

inline void print_table(
    const std::vector<std::pair<std::string, eval::segmentation_metrics>>& rows) {
  std::printf("\n| %-28s | %8s | %8s | %8s | %9s |\n", "", "mIoU(S)", "mIoU(U)", "hIoU",
              "pixel acc");
  std::printf("|%s|%s|%s|%s|%s|\n", std::string(30, '-').c_str(), std::string(10, '-').c_str(),
              std::string(10, '-').c_str(), std::string(10, '-').c_str(),
              std::string(11, '-').c_str());
  for (const auto& [name, m] : rows)
    std::printf("| %-28s | %8.1f | %8.1f | %8.1f | %9.1f |\n", name.c_str(), 100 * m.miou_seen,
                100 * m.miou_unseen, 100 * m.hiou, 100 * m.pixel_acc);
  std::fflush(stdout);
}

}  // namespace zss::examples
