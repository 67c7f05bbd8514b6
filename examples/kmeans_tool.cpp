// SPDX-License-Identifier: Apache-2.0
// zss-kmeans: K-Means of the rows of a .npy file (N × D, or an H × W × D token grid).
//
//   zss-kmeans tokens.npy --k 8 --k 16 --seed 1 --labels labels.npy --centroids centroids.npy
//   zss-kmeans tokens.npy --init window:4 --spherical
//
// Prints one line per K: "k=K inertia=… iterations=… converged=true|false" (on standard error
// when an output goes to standard output). With several K, output files get "-k<K>" before
// their extension (labels-k8.npy, labels-k16.npy). Labels are int32 of shape N (or H × W for
// grid input); centroids are K × D in the input's dtype.
//
// Outputs (io/atomic_file.hpp, README "Command-line tools"): checked before any work (folder
// exists and is writable, not the input, not another output, no block device or socket); "-"
// or /dev/stdout is standard output, an existing FIFO or character device is written into;
// written to temporaries and renamed only when every K succeeded and every output is complete.
// Bad input or options print an error naming the file or option and exit with status 1
// (CLI11's own parse errors: its exit codes); no output is then written or changed.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <cstdio>
#include <string>
#include <tuple>
#include <vector>

#include "common/option_binding.hpp"
#include "common/tool_common.hpp"
#include "zss/cluster/kmeans.hpp"
#include "zss/io/atomic_file.hpp"
#include "zss/io/npy.hpp"

namespace {

struct options {
  std::string input;
  std::vector<zss::index_t> ks;
  std::uint64_t seed = 0;
  zss::index_t max_iter = 300;
  double tol = 1e-4;
  std::string init = "kmeans++";
  bool spherical = false;
  int threads = 0;
  std::string labels, centroids;
};

/// The numeric options, parsed strictly (core/option_fields.hpp): "--k -1" is refused as
/// negative, ranges print readably.
template <class V>
void describe(V& v, options& o) {
  using namespace zss;
  v.field("k", o.ks,
          "number of clusters; repeat (or separate by commas) for several K, one line and one set "
          "of files each",
          checks::at_least(1), "k", false);
  v.field("seed", o.seed, "k-means++ seed", {}, "seed");
  v.field("max_iter", o.max_iter, "Lloyd iterations at most", checks::at_least(1), "max-iter");
  v.field("tol", o.tol,
          "stop when the centre shift <= tol * mean variance (0: only when no label changes)",
          checks::non_negative(), "tol");
  v.field("spherical", o.spherical, "renormalise centroids after each update (cosine K-Means)",
          "spherical");
  v.field("threads", o.threads, "OpenMP threads (0 = default)", checks::non_negative(), "threads");
}

/// "out.npy" → "out-k8.npy" when several K are written.
std::filesystem::path with_k(const std::string& file, std::size_t k, bool several) {
  if (!several) return file;
  std::filesystem::path p(file);
  const std::string stem = p.stem().string(), ext = p.extension().string();
  return p.parent_path() / (stem + "-k" + std::to_string(k) + ext);
}

template <class T>
int run(const options& o, const zss::npy_header& h, zss::output_set& out,
        const std::vector<std::size_t>& label_out, const std::vector<std::size_t>& centroid_out) {
  const bool grid = h.rank() == 3;
  const zss::index_t n = grid ? h.shape[0] * h.shape[1] : h.shape[0],
                     d = grid ? h.shape[2] : h.shape[1];
  zss::tensor<T, 2> X;
  if (grid) {
    auto x3 = zss::load_npy<T, 3>(o.input);
    X = zss::tensor<T, 2>::from_shape({n, d});
    std::copy(x3.begin(), x3.end(), X.begin());
  } else {
    X = zss::load_npy<T, 2>(o.input);
  }

  zss::kmeans_options p;
  p.seed = o.seed;
  p.max_iter = o.max_iter;
  p.tol = o.tol;
  p.spherical = o.spherical;
  p.threads = o.threads;
  std::vector<zss::index_t> ks = o.ks;
  if (o.init.rfind("window:", 0) == 0) {
    if (!grid)
      throw std::invalid_argument("--init window:S needs an H x W x D grid input, '" + o.input +
                                  "' holds " + h.describe());
    zss::index_t s = 0;
    try {
      s = zss::detail::parse_integer<zss::index_t>("--init window:S", o.init.substr(7));
    } catch (const std::invalid_argument&) {
      s = 0;
    }
    if (s == 0)
      throw std::invalid_argument("--init window:S needs a window size S >= 1, got '" + o.init +
                                  "'");
    p.init = zss::kmeans_init::window;
    p.window = s;
    p.grid_h = h.shape[0];
    p.grid_w = h.shape[1];
    const auto k = zss::window_seed_count(h.shape[0], h.shape[1], s);
    if (!ks.empty() && (ks.size() != 1 || ks[0] != k))
      throw std::invalid_argument("--init window:" + std::to_string(s) +
                                  " fixes K = " + std::to_string(k) + " on the " +
                                  std::to_string(h.shape[0]) + " x " + std::to_string(h.shape[1]) +
                                  " grid; drop --k or pass --k " + std::to_string(k));
    ks = {k};
  }
  for (auto k : ks)
    if (k > n)
      throw std::invalid_argument("k (" + std::to_string(k) +
                                  ") must be in [1, number of points (" + std::to_string(n) +
                                  ")] of '" + o.input + "'");

  std::vector<zss::kmeans_result<T>> results;
  for (auto k : ks) {
    p.k = k;
    try {
      results.push_back(zss::kmeans(zss::matrix_ref<const T>(X.data(), n, d), p));
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("'" + o.input + "': " + e.what());
    }
  }
  for (std::size_t i = 0; i < ks.size(); ++i) {
    const auto& r = results[i];
    if (!label_out.empty()) {
      const std::string bytes =
          grid ? xt::dump_npy(xt::adapt(r.labels.data(), n, xt::no_ownership(),
                                        std::array<zss::index_t, 2>{h.shape[0], h.shape[1]}))
               : xt::dump_npy(xt::adapt(r.labels.data(), n, xt::no_ownership(),
                                        std::array<zss::index_t, 1>{n}));
      out.write_bytes(label_out[i], bytes);
    }
    if (!centroid_out.empty()) out.write_bytes(centroid_out[i], xt::dump_npy(r.centroids));
  }
  out.commit();
  std::FILE* report = out.uses_stdout() ? stderr : stdout;
  for (std::size_t i = 0; i < ks.size(); ++i) {
    const auto& r = results[i];
    std::fprintf(report, "k=%zu inertia=%.9g iterations=%zu converged=%s\n", ks[i], r.inertia,
                 r.iterations, r.converged ? "true" : "false");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "zss-kmeans: K-Means of the rows of a float32/float64 .npy file (N x D or H x W x D)"};
  options o;
  zss::option_fields fields(o);
  app.add_option("INPUT", o.input, "input .npy, float32 or float64, shape N x D or H x W x D")
      ->required();
  zss::examples::add_options(app, fields);
  app.add_option("--init", o.init,
                 "kmeans++, or window:S (average-pool seeds with window S; needs H x W x D input)")
      ->capture_default_str();
  app.add_option("--labels", o.labels,
                 "write int32 labels here (.npy; '-k<K>' is added with several K; '-' = standard "
                 "output)");
  app.add_option("--centroids", o.centroids,
                 "write K x D centroids here (.npy; '-k<K>' is added with several K; '-' = "
                 "standard output)");
  CLI11_PARSE(app, argc, argv);

  return zss::tools::run_tool("zss-kmeans", [&] {
    if (o.init == "kmeans++") {
      if (o.ks.empty()) throw std::invalid_argument("--k is required with --init kmeans++");
    } else if (o.init.rfind("window:", 0) != 0) {
      throw std::invalid_argument("--init must be 'kmeans++' or 'window:S', got '" + o.init + "'");
    }
    for (std::size_t i = 0; i < o.ks.size(); ++i)
      for (std::size_t j = 0; j < i; ++j)
        if (o.ks[i] == o.ks[j])
          throw std::invalid_argument("--k " + std::to_string(o.ks[i]) + " is given twice");
    // Every output is checked before the input is read (the names follow from the options).
    zss::output_set out;
    out.add_input(o.input, "INPUT");
    const bool several = o.ks.size() > 1;
    std::vector<std::size_t> label_out, centroid_out;
    for (const auto& [file, option, idx] :
         {std::tuple{&o.labels, "--labels", &label_out},
          std::tuple{&o.centroids, "--centroids", &centroid_out}}) {
      if (file->empty()) continue;
      if (several && zss::detail::stream_descriptor(*file) >= 0)
        throw std::invalid_argument(std::string(option) + " '" + *file +
                                    "' is a stream: with several K give a file name ('-k<K>' "
                                    "is added to it)");
      const std::size_t count = several ? o.ks.size() : 1;
      for (std::size_t i = 0; i < count; ++i)
        idx->push_back(out.add(with_k(*file, several ? o.ks[i] : 0, several), option));
    }
    const zss::npy_header h = zss::read_npy_header(o.input);
    if (h.rank() != 2 && h.rank() != 3)
      throw std::invalid_argument("'" + o.input + "' holds " + h.describe() +
                                  ", expected rank 2 (N x D) or 3 (H x W x D)");
    for (auto e : h.shape)
      if (e == 0)
        throw std::invalid_argument("'" + o.input + "' holds " + h.describe() + ": no data");
    if (h.dtype == zss::npy_dtype::float32) return run<float>(o, h, out, label_out, centroid_out);
    if (h.dtype == zss::npy_dtype::float64) return run<double>(o, h, out, label_out, centroid_out);
    throw std::invalid_argument("'" + o.input + "' holds " + h.describe() +
                                ", expected float32 or float64");
  });
}
