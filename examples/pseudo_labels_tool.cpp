// SPDX-License-Identifier: Apache-2.0
// zss-pseudo-labels: PLM pseudo labels of one image (DESIGN §2.3): teacher tokens + seen pixel
// labels → fused label map (seen classes, new pseudo classes C_seen + m, −1 ignored).
//
//   zss-pseudo-labels tokens.npy labels.npy --out fused.npy --png fused.png --windows 4,8,16
//
// TOKENS.npy: h × w × D, float32 or float64. LABELS.npy: H × W integers at any resolution,
// −1 or 255 = ignored, other values seen classes in [0, C_seen). C_seen is --num-seen, by
// default the largest seen label + 1. The fused map is written as int32 on the token grid, or
// on --size H,W, or at the labels' resolution with --size labels.
//
// Outputs (io/atomic_file.hpp, README "Command-line tools"): checked before any work (folder
// exists and is writable, not an input, --out and --png not the same file, no block device or
// socket); "-" or /dev/stdout is standard output (the report then goes to standard error), an
// existing FIFO or character device is written into; both are written to temporaries and
// renamed only when both are complete. Bad input or options print an error naming the file or
// option and exit with status 1 (CLI11's own parse errors: its exit codes); no output is then
// written or changed.
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

#include "common/option_binding.hpp"
#include "common/tool_common.hpp"
#include "pseudo_labels_dataset.hpp"
#include "zss/io/atomic_file.hpp"
#include "zss/io/image_io.hpp"
#include "zss/io/npy.hpp"
#include "zss/plm/pseudo_labels.hpp"

namespace {

struct options {
  std::string tokens, labels, out, png, size, data, split = "train", summary;
  std::int64_t kill_after = -1;
  int kill_rank = 0;
  bool quiet = false;
  std::vector<zss::index_t> windows = {4, 8, 16};
  double lambda = 0.9;
  zss::index_t min_tokens = 2;
  std::int64_t num_seen = -1;
  zss::index_t max_iter = 10;
  bool spherical = false;
  int threads = 0;
};

/// The numeric options, parsed strictly (core/option_fields.hpp): negative counts are refused
/// as such, ranges print readably.
template <class V>
void describe(V& v, options& o) {
  using namespace zss;
  v.field("windows", o.windows, "window sizes of the K-Means scales", checks::at_least(1),
          "windows");
  v.field("lambda", o.lambda, "fusion similarity threshold", checks::interval(-1, 1, false, false),
          "lambda");
  v.field("min_tokens", o.min_tokens, "ignored tokens a pseudo mask needs", {}, "min-tokens");
  v.field(
      "num_seen", o.num_seen,
      "number of seen classes C_seen (default -1: the largest seen label + 1)",
      [](double x) { return x >= -1 ? std::string() : std::string("must be >= 0 (or -1: auto)"); },
      "num-seen");
  v.field("max_iter", o.max_iter, "Lloyd iterations per scale at most", checks::at_least(1),
          "max-iter");
  v.field("spherical", o.spherical, "spherical K-Means (renormalised centroids)", "spherical");
  v.field("threads", o.threads, "OpenMP threads (0 = default)", checks::non_negative(), "threads");
}

/// Parses --size: "H,W" (or "HxW") with 1 <= H, W <= 65536 and H*W <= 2^28, or "labels".
std::pair<zss::index_t, zss::index_t> parse_size(const std::string& text) {
  const auto sep = text.find_first_of(",x");
  const auto bad = [&](const std::string& why) {
    return std::invalid_argument("--size '" + text + "': " + why + " (expected H,W or 'labels')");
  };
  if (sep == std::string::npos) throw bad("no ','");
  zss::index_t hw[2] = {0, 0};
  const std::string parts[2] = {text.substr(0, sep), text.substr(sep + 1)};
  for (int i = 0; i < 2; ++i) {
    try {
      hw[i] = zss::detail::parse_integer<zss::index_t>("--size", parts[i]);
    } catch (const std::invalid_argument& e) {
      const std::string msg = e.what();
      throw bad(msg.substr(msg.find(": ") + 2));
    }
    if (hw[i] < 1 || hw[i] > 65536) throw bad("each side must be in [1, 65536]");
  }
  if (hw[0] * hw[1] > (zss::index_t(1) << 28)) throw bad("more than 2^28 cells");
  return {hw[0], hw[1]};
}

template <class T>
int run(const options& o, const zss::npy_header& th, zss::output_set& out, std::size_t out_npy,
        std::size_t out_png) {
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
    std::tie(p.out_h, p.out_w) = parse_size(o.size);
  }

  // Labels are checked here so that the message names the file (the library's names a pixel).
  for (zss::index_t y = 0; y < labels.shape()[0]; ++y)
    for (zss::index_t x = 0; x < labels.shape()[1]; ++x) {
      const auto v = labels(y, x);
      if (v != -1 && v != 255 && (v < 0 || v >= num_seen))
        throw std::invalid_argument("'" + o.labels + "': pixel (" + std::to_string(y) + ", " +
                                    std::to_string(x) + ") has label " + std::to_string(v) +
                                    ", outside [0, " + std::to_string(num_seen) +
                                    ") (the seen classes; -1 and 255 = ignored)");
    }
  zss::pseudo_label_result<T> r;
  try {
    r = zss::pseudo_labels(tokens, labels, num_seen, p);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument("'" + o.tokens + "' with '" + o.labels + "': " + e.what());
  }
  out.write_bytes(out_npy, xt::dump_npy(r.labels));
  if (!o.png.empty()) {
    const auto pixels = zss::colorize_labels(r.labels);
    out.write_bytes(out_png, zss::encode_png(pixels.data(), pixels.shape()[0], pixels.shape()[1],
                                             pixels.shape()[2]));
  }
  out.commit();
  std::FILE* report = out.uses_stdout() ? stderr : stdout;

  std::size_t pseudo_pixels = 0, unlabelled = 0;
  for (auto v : r.labels) {
    if (v >= num_seen)
      ++pseudo_pixels;
    else if (v < 0)
      ++unlabelled;
  }
  std::fprintf(report, "tokens %zux%zux%zu %s, labels %zux%zu (%zu ignored), seen classes %lld\n",
               h, w, th.shape[2], zss::to_string(th.dtype), labels.shape()[0], labels.shape()[1],
               ignored, static_cast<long long>(num_seen));
  std::fprintf(
      report,
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
  zss::option_fields fields(o);
  app.add_option("TOKENS", o.tokens, "teacher tokens .npy, float32/float64, h x w x D");
  app.add_option("LABELS", o.labels,
                 "pixel labels .npy, integers, H x W (any resolution), -1 or 255 = ignored");
  app.add_option("--out", o.out,
                 "fused label map (.npy, int32): seen class, C_seen + m, or -1 ('-' = standard "
                 "output); with --data the output folder (one <stem>.npy per image)")
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
  zss::examples::add_options(app, fields);
  app.add_option(
      "--size", o.size,
      "output grid: H,W, or 'labels' for the label map's resolution (default: token grid)");
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
    if (!o.size.empty() && o.size != "labels") (void)parse_size(o.size);
    zss::output_set out;
    out.add_input(o.tokens, "TOKENS");
    out.add_input(o.labels, "LABELS");
    const std::size_t out_npy = out.add(o.out, "--out");
    const std::size_t out_png = o.png.empty() ? 0 : out.add(o.png, "--png");
    const zss::npy_header th = zss::read_npy_header(o.tokens);
    if (th.rank() != 3)
      throw std::invalid_argument("'" + o.tokens + "' holds " + th.describe() +
                                  ", expected h x w x D tokens");
    if (th.size() == 0)
      throw std::invalid_argument("'" + o.tokens + "' holds " + th.describe() + ": no tokens");
    if (th.dtype == zss::npy_dtype::float32) return run<float>(o, th, out, out_npy, out_png);
    if (th.dtype == zss::npy_dtype::float64) return run<double>(o, th, out, out_npy, out_png);
    throw std::invalid_argument("'" + o.tokens + "' holds " + th.describe() +
                                ", expected float32 or float64");
  });
}
