// SPDX-License-Identifier: Apache-2.0
// zss-pseudo-labels: PLM pseudo labels of one image (DESIGN §2.3): teacher tokens + seen pixel
// labels → fused label map (seen classes, new pseudo classes C_seen + m, −1 ignored).
//
//   zss-pseudo-labels tokens.npy labels.npy --out fused.npy --png fused.png --windows 4,8,16
//
// TOKENS.npy: h × w × D, float32 or float64. LABELS.npy: H × W integers at any resolution,
// −1 or 255 = ignored, other values seen classes in [0, C_seen). C_seen is --num-seen, by
// default the largest seen label + 1. The fused map is written as int32 on the token grid, or
// on --size H,W, or at the labels' resolution with --size labels. Bad input prints an error and
// exits with status 1 without writing anything; outputs are written atomically.
//
//   zss-pseudo-labels --data DIR --split train --out OUT     (also under mpirun: ranks share
//   images)
//
// Dataset mode (pseudo_labels_dataset.cpp): every image of a dataset split, one OUT/<stem>.npy
// each, resumable, with a JSON summary.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "common/tool_common.hpp"
#include "pseudo_labels_dataset.hpp"
#include "zss/io/image_io.hpp"
#include "zss/io/npy.hpp"
#include "zss/plm/pseudo_labels.hpp"

namespace {

struct options {
  std::string tokens, labels, out, png, size, data, split = "train", summary;
  std::int64_t kill_after = -1;
  int kill_rank = 0;
  bool quiet = false;
  std::vector<std::size_t> windows = {4, 8, 16};
  double lambda = 0.9;
  std::size_t min_tokens = 2;
  std::int64_t num_seen = -1;
  std::size_t max_iter = 10;
  bool spherical = false;
  int threads = 0;
};

template <class T>
int run(const options& o, const zss::npy_header& th) {
  const auto tokens = zss::load_npy<T, 3>(o.tokens);
  const auto lh = zss::read_npy_header(o.labels);
  if (lh.rank() != 2)
    throw std::invalid_argument("'" + o.labels + "' holds " + lh.describe() +
                                ", expected an H x W label map");
  if (zss::npy_is_floating(lh.dtype) || lh.dtype == zss::npy_dtype::bool8)
    throw std::invalid_argument("'" + o.labels + "' holds " + lh.describe() +
                                ", expected integer labels (-1 or 255 = ignored)");
  if (lh.size() == 0)
    throw std::invalid_argument("'" + o.labels + "' holds " + lh.describe() + ": no pixels");
  const auto labels = zss::load_npy_as<std::int32_t, 2>(o.labels);

  std::int64_t num_seen = o.num_seen;
  std::size_t ignored = 0;
  std::int32_t max_seen = -1;
  for (auto v : labels) {
    if (v == -1 || v == 255)
      ++ignored;
    else
      max_seen = std::max(max_seen, v);
  }
  if (num_seen < 0) num_seen = std::int64_t(max_seen) + 1;

  zss::pseudo_label_options p;
  p.kmeans.windows = o.windows;
  p.kmeans.max_iter = o.max_iter;
  p.kmeans.spherical = o.spherical;
  p.fusion.lambda = o.lambda;
  p.fusion.min_tokens = o.min_tokens;
  p.threads = o.threads;
  const std::size_t h = th.shape[0], w = th.shape[1];
  if (o.size == "labels") {
    p.out_h = labels.shape()[0];
    p.out_w = labels.shape()[1];
  } else if (!o.size.empty()) {
    unsigned long a = 0, b = 0;
    char sep = 0, extra = 0;
    if (std::sscanf(o.size.c_str(), "%lu%c%lu%c", &a, &sep, &b, &extra) != 3 ||
        (sep != ',' && sep != 'x') || a == 0 || b == 0)
      throw std::invalid_argument("--size must be H,W (positive) or 'labels', got '" + o.size +
                                  "'");
    p.out_h = a;
    p.out_w = b;
  }
  for (auto s : o.windows)
    if (s == 0) throw std::invalid_argument("--windows: window sizes must be >= 1");

  const auto r = zss::pseudo_labels(tokens, labels, num_seen, p);
  zss::save_npy(o.out, r.labels);
  if (!o.png.empty()) zss::write_label_png(o.png, r.labels);

  std::size_t pseudo_pixels = 0, unlabelled = 0;
  for (auto v : r.labels) {
    if (v >= num_seen)
      ++pseudo_pixels;
    else if (v < 0)
      ++unlabelled;
  }
  std::printf("tokens %zux%zux%zu %s, labels %zux%zu (%zu ignored), seen classes %lld\n", h, w,
              th.shape[2], zss::to_string(th.dtype), labels.shape()[0], labels.shape()[1], ignored,
              static_cast<long long>(num_seen));
  std::printf(
      "pseudo classes %zu (ids %lld..%lld), fused map %zux%zu: %zu pseudo, %zu ignored cells -> "
      "%s%s%s\n",
      r.num_pseudo, static_cast<long long>(num_seen),
      static_cast<long long>(num_seen) + std::int64_t(r.num_pseudo) - 1, r.labels.shape()[0],
      r.labels.shape()[1], pseudo_pixels, unlabelled, o.out.c_str(), o.png.empty() ? "" : ", ",
      o.png.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "zss-pseudo-labels: fused pseudo labels of one image from teacher tokens and seen pixel "
      "labels"};
  options o;
  app.add_option("TOKENS", o.tokens, "teacher tokens .npy, float32/float64, h x w x D");
  app.add_option("LABELS", o.labels,
                 "pixel labels .npy, integers, H x W (any resolution), -1 or 255 = ignored");
  app.add_option("--out", o.out,
                 "fused label map (.npy, int32): seen class, C_seen + m, or -1; with --data the "
                 "output folder (one <stem>.npy per image)")
      ->required();
  app.add_option("--data", o.data,
                 "dataset mode: every image of a split of this dataset folder (then no TOKENS, "
                 "LABELS; shared across MPI ranks under mpirun)");
  app.add_option("--split", o.split, "dataset mode: the split folder")->capture_default_str();
  app.add_option("--summary", o.summary, "dataset mode: JSON summary (default OUT/summary.json)");
  app.add_flag("--quiet", o.quiet, "dataset mode: no summary line on stdout");
  app.add_option("--kill-after", o.kill_after)->group("");  // test hook (pseudo_labels_dataset)
  app.add_option("--kill-rank", o.kill_rank)->group("");
  app.add_option("--png", o.png,
                 "also write a colour picture of the fused map (PNG; ignored = black)");
  app.add_option("--windows", o.windows, "window sizes of the K-Means scales")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--lambda", o.lambda, "fusion similarity threshold")
      ->capture_default_str()
      ->check(CLI::Range(-1.0, 1.0));
  app.add_option("--min-tokens", o.min_tokens, "ignored tokens a pseudo mask needs")
      ->capture_default_str();
  app.add_option("--num-seen", o.num_seen,
                 "number of seen classes C_seen (default: largest seen label + 1)")
      ->check(CLI::NonNegativeNumber);
  app.add_option(
      "--size", o.size,
      "output grid: H,W, or 'labels' for the label map's resolution (default: token grid)");
  app.add_option("--max-iter", o.max_iter, "Lloyd iterations per scale at most")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_flag("--spherical", o.spherical, "spherical K-Means (renormalised centroids)");
  app.add_option("--threads", o.threads, "OpenMP threads (0 = default)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  CLI11_PARSE(app, argc, argv);

  if (!o.data.empty()) {
    zss::tools::dataset_mode_options d;
    d.data = o.data, d.split = o.split, d.out = o.out, d.summary = o.summary;
    d.pseudo.kmeans.windows = o.windows;
    d.pseudo.kmeans.max_iter = o.max_iter;
    d.pseudo.kmeans.spherical = o.spherical;
    d.pseudo.fusion.lambda = o.lambda;
    d.pseudo.fusion.min_tokens = o.min_tokens;
    d.threads = o.threads, d.quiet = o.quiet, d.kill_after = o.kill_after,
    d.kill_rank = o.kill_rank;
    if (!o.tokens.empty() || !o.size.empty() || !o.png.empty() || o.num_seen >= 0) {
      std::fprintf(stderr,
                   "zss-pseudo-labels: error: --data takes no TOKENS/LABELS, --size, --png or "
                   "--num-seen (the dataset gives them)\n");
      return 1;
    }
    for (auto w : o.windows)
      if (w == 0) {
        std::fprintf(stderr, "zss-pseudo-labels: error: --windows: window sizes must be >= 1\n");
        return 1;
      }
    return zss::tools::run_pseudo_labels_dataset(&argc, &argv, d);
  }
  if (o.tokens.empty() || o.labels.empty()) {
    std::fprintf(stderr, "zss-pseudo-labels: error: TOKENS and LABELS are required (or --data)\n");
    return 1;
  }

  return zss::tools::run_tool("zss-pseudo-labels", [&] {
    zss::tools::check_output_path("--out", o.out);
    if (!o.png.empty()) zss::tools::check_output_path("--png", o.png);
    const zss::npy_header th = zss::read_npy_header(o.tokens);
    if (th.rank() != 3)
      throw std::invalid_argument("'" + o.tokens + "' holds " + th.describe() +
                                  ", expected h x w x D tokens");
    if (th.size() == 0)
      throw std::invalid_argument("'" + o.tokens + "' holds " + th.describe() + ": no tokens");
    if (th.dtype == zss::npy_dtype::float32) return run<float>(o, th);
    if (th.dtype == zss::npy_dtype::float64) return run<double>(o, th);
    throw std::invalid_argument("'" + o.tokens + "' holds " + th.describe() +
                                ", expected float32 or float64");
  });
}
