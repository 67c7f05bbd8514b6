// SPDX-License-Identifier: Apache-2.0
// zss-kmeans: K-Means of the rows of a .npy file (N × D, or an H × W × D token grid).
//
//   zss-kmeans tokens.npy --k 8 --k 16 --seed 1 --labels labels.npy --centroids centroids.npy
//   zss-kmeans tokens.npy --init window:4 --spherical
//
// Prints one line per K: "k=K inertia=… iterations=… converged=true|false". With several K,
// output files get "-k<K>" before their extension (labels-k8.npy, labels-k16.npy). Labels are
// int32 of shape N (or H × W for grid input); centroids are K × D in the input's dtype.
// Bad input (missing file, wrong dtype or rank, non-finite values, K > N, …) prints an error
// and exits with status 1; no output file is written unless every K succeeded.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "common/tool_common.hpp"
#include "zss/cluster/kmeans.hpp"
#include "zss/io/npy.hpp"

namespace {

struct options {
  std::string input;
  std::vector<std::size_t> ks;
  std::uint64_t seed = 0;
  std::size_t max_iter = 300;
  double tol = 1e-4;
  std::string init = "kmeans++";
  bool spherical = false;
  int threads = 0;
  std::string labels, centroids;
};

/// "out.npy" → "out-k8.npy" when several K are written.
std::filesystem::path with_k(const std::string& file, std::size_t k, bool several) {
  if (!several) return file;
  std::filesystem::path p(file);
  const std::string stem = p.stem().string(), ext = p.extension().string();
  return p.parent_path() / (stem + "-k" + std::to_string(k) + ext);
}

template <class T>
int run(const options& o, const zss::npy_header& h) {
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
  std::vector<std::size_t> ks = o.ks;
  if (o.init.rfind("window:", 0) == 0) {
    if (!grid)
      throw std::invalid_argument("--init window:S needs an H x W x D grid input, '" + o.input +
                                  "' holds " + h.describe());
    std::size_t s = 0;
    try {
      std::size_t used = 0;
      s = std::stoul(o.init.substr(7), &used);
      if (used != o.init.size() - 7) s = 0;
    } catch (const std::exception&) {
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
  } else if (o.init == "kmeans++") {
    if (ks.empty()) throw std::invalid_argument("--k is required with --init kmeans++");
  } else {
    throw std::invalid_argument("--init must be 'kmeans++' or 'window:S', got '" + o.init + "'");
  }
  for (auto k : ks)
    if (k == 0 || k > n)
      throw std::invalid_argument("k (" + std::to_string(k) +
                                  ") must be in [1, number of points (" + std::to_string(n) + ")]");

  std::vector<zss::kmeans_result<T>> results;
  for (auto k : ks) {
    p.k = k;
    results.push_back(zss::kmeans(zss::matrix_ref<const T>(X.data(), n, d), p));
  }
  for (std::size_t i = 0; i < ks.size(); ++i) {
    const auto& r = results[i];
    std::printf("k=%zu inertia=%.9g iterations=%zu converged=%s\n", ks[i], r.inertia, r.iterations,
                r.converged ? "true" : "false");
  }
  const bool several = ks.size() > 1;
  for (std::size_t i = 0; i < ks.size(); ++i) {
    const auto& r = results[i];
    if (!o.labels.empty()) {
      if (grid)
        zss::save_npy(with_k(o.labels, ks[i], several), r.labels.data(),
                      std::array<zss::index_t, 2>{h.shape[0], h.shape[1]});
      else
        zss::save_npy(with_k(o.labels, ks[i], several), r.labels.data(),
                      std::array<zss::index_t, 1>{n});
    }
    if (!o.centroids.empty()) zss::save_npy(with_k(o.centroids, ks[i], several), r.centroids);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "zss-kmeans: K-Means of the rows of a float32/float64 .npy file (N x D or H x W x D)"};
  options o;
  app.add_option("INPUT", o.input, "input .npy, float32 or float64, shape N x D or H x W x D")
      ->required();
  app.add_option("--k", o.ks,
                 "number of clusters; repeat for several K (one line and one set of files each)");
  app.add_option("--seed", o.seed, "k-means++ seed")->capture_default_str();
  app.add_option("--max-iter", o.max_iter, "Lloyd iterations at most")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option(
         "--tol", o.tol,
         "stop when the centre shift <= tol * mean variance (0: only when no label changes)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--init", o.init,
                 "kmeans++, or window:S (average-pool seeds with window S; needs H x W x D input)")
      ->capture_default_str();
  app.add_flag("--spherical", o.spherical,
               "renormalise centroids after each update (cosine K-Means)");
  app.add_option("--threads", o.threads, "OpenMP threads (0 = default)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--labels", o.labels,
                 "write int32 labels here (.npy; '-k<K>' is added with several K)");
  app.add_option("--centroids", o.centroids,
                 "write K x D centroids here (.npy; '-k<K>' is added with several K)");
  CLI11_PARSE(app, argc, argv);

  return zss::tools::run_tool("zss-kmeans", [&] {
    if (!o.labels.empty()) zss::tools::check_output_path("--labels", o.labels);
    if (!o.centroids.empty()) zss::tools::check_output_path("--centroids", o.centroids);
    const zss::npy_header h = zss::read_npy_header(o.input);
    if (h.rank() != 2 && h.rank() != 3)
      throw std::invalid_argument("'" + o.input + "' holds " + h.describe() +
                                  ", expected rank 2 (N x D) or 3 (H x W x D)");
    for (auto e : h.shape)
      if (e == 0)
        throw std::invalid_argument("'" + o.input + "' holds " + h.describe() + ": no data");
    if (h.dtype == zss::npy_dtype::float32) return run<float>(o, h);
    if (h.dtype == zss::npy_dtype::float64) return run<double>(o, h);
    throw std::invalid_argument("'" + o.input + "' holds " + h.describe() +
                                ", expected float32 or float64");
  });
}
