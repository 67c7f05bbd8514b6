// SPDX-License-Identifier: Apache-2.0
// The `zss` Python module (pybind11), its only translation unit: it defines the module and binds
// the clustering and the pseudo labels (DESIGN.md §2.3): kmeans, kmeans_batch, multiscale_kmeans,
// mask_fusion, pseudo_labels; the losses (zss_losses.hpp), the metrics and the toy world
// (zss_eval_toy.hpp) are included. One unit: the pybind11, Eigen and xtensor headers are parsed
// once (CI builds on 2 cores beside the tests: CPU time counts more than wall time).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "common.hpp"
#include "zss/cluster/kmeans.hpp"
#include "zss/cluster/mask_fusion.hpp"
#include "zss/cluster/multiscale_kmeans.hpp"
#include "zss/plm/pseudo_labels.hpp"
#include "zss/version.hpp"
#include "zss_eval_toy.hpp"
#include "zss_losses.hpp"

namespace zss::python {

namespace {

// --- results ----------------------------------------------------------------------------------

/// `zss.KMeansResult`: what one fit returns (arrays handed over from C++ without a copy).
struct py_kmeans_result {
  py::array centroids;  ///< K' × D, the call's dtype
  py::array labels;     ///< N int32 (h × w for a token grid)
  double inertia = 0;
  std::int64_t n_iter = 0;
  bool converged = false;
  bool strict_convergence = false;
  py::array objective;  ///< n_iter float64
  py::array changed;    ///< n_iter int64
  std::int64_t empty_clusters = 0;
};

template <real_scalar T>
py_kmeans_result to_python(kmeans_result<T>&& r, std::vector<py::ssize_t> label_shape) {
  py_kmeans_result o;
  const auto k = static_cast<py::ssize_t>(r.centroids.shape()[0]),
             d = static_cast<py::ssize_t>(r.centroids.shape()[1]);
  o.centroids = give(std::move(r.centroids), {k, d});
  o.labels = give(std::move(r.labels), std::move(label_shape));
  o.inertia = r.inertia;
  o.n_iter = static_cast<std::int64_t>(r.iterations);
  o.converged = r.converged;
  o.strict_convergence = r.strict_convergence;
  const auto n = static_cast<py::ssize_t>(r.objective.size());
  o.objective = give(std::move(r.objective), {n});
  o.changed = int64_array(r.changed);
  o.empty_clusters = static_cast<std::int64_t>(r.empty_clusters);
  return o;
}

/// `zss.ScaleClustering`: the clusters of one image at one scale.
struct py_scale_clustering {
  std::int64_t window = 0;
  py::array centroids;  ///< K' × D
  py::array labels;     ///< h × w int32 in [0, K')
  std::int64_t n_iter = 0;
  bool converged = false;
  std::int64_t seeds = 0;
  double inertia = 0;
};

template <real_scalar T>
py_scale_clustering to_python(scale_clustering<T>&& s, py::ssize_t h, py::ssize_t w) {
  py_scale_clustering o;
  o.window = static_cast<std::int64_t>(s.window);
  const auto k = static_cast<py::ssize_t>(s.centroids.shape()[0]),
             d = static_cast<py::ssize_t>(s.centroids.shape()[1]);
  o.centroids = give(std::move(s.centroids), {k, d});
  o.labels = give(std::move(s.labels), {h, w});
  o.n_iter = static_cast<std::int64_t>(s.iterations);
  o.converged = s.converged;
  o.seeds = static_cast<std::int64_t>(s.seeds);
  o.inertia = s.inertia;
  return o;
}

/// `zss.MaskFusion`: everything mask fusion decided for one image.
struct py_mask_fusion {
  py::array labels;  ///< fused labels, the shape of the token labels
  std::int64_t num_pseudo = 0;
  py::array partition;  ///< the fused mask owning each token, same shape
  std::vector<pooled_cluster> clusters;
  py::array visit_order;        ///< P int64
  py::array cluster_centroids;  ///< P × D
  std::vector<fused_mask> masks;
  py::array mask_centroids;  ///< G × D
};

template <real_scalar T>
py_mask_fusion to_python(mask_fusion_result<T>&& r, const std::vector<py::ssize_t>& shape) {
  py_mask_fusion o;
  o.labels = give(std::move(r.labels), shape);
  o.num_pseudo = static_cast<std::int64_t>(r.num_pseudo);
  o.partition = give(std::move(r.partition), shape);
  o.clusters = std::move(r.clusters);
  o.visit_order = int64_array(r.visit_order);
  const auto p = static_cast<py::ssize_t>(r.cluster_centroids.shape()[0]),
             g = static_cast<py::ssize_t>(r.mask_centroids.shape()[0]),
             d = static_cast<py::ssize_t>(r.cluster_centroids.shape()[1]);
  o.cluster_centroids = give(std::move(r.cluster_centroids), {p, d});
  o.mask_centroids = give(std::move(r.mask_centroids), {g, d});
  o.masks = std::move(r.masks);
  return o;
}

/// `zss.PseudoLabels`: the pseudo labels of a batch.
struct py_pseudo_labels {
  py::array labels;                ///< B × H' × W' int32
  py::array fused_tokens;          ///< B × h × w int32
  py::array token_labels;          ///< B × h × w int32
  py::array num_pseudo;            ///< B int64
  py::object scales = py::none();  ///< keep_details: B lists of ScaleClustering
  py::object fusion = py::none();  ///< keep_details: B MaskFusion
};

// --- option parsing ---------------------------------------------------------------------------

kmeans_init parse_init(const std::string& where, const std::string& s) {
  if (s == "k-means++" || s == "kmeanspp") return kmeans_init::kmeanspp;
  if (s == "window") return kmeans_init::window;
  if (s == "given") return kmeans_init::given;
  throw py::value_error(where + ": init must be 'k-means++', 'window' or an array of initial " +
                        "centroids, got '" + s + "'");
}

empty_cluster_policy parse_empty(const std::string& where, const std::string& s) {
  if (s == "reseed_farthest") return empty_cluster_policy::reseed_farthest;
  if (s == "drop") return empty_cluster_policy::drop;
  throw py::value_error(where + ": empty must be 'reseed_farthest' or 'drop', got '" + s + "'");
}

/// The keyword arguments of `zss.kmeans` (every field of `kmeans_options`).
struct kmeans_kwargs {
  std::int64_t k, max_iter;
  double tol;
  std::uint64_t seed, stream;
  bool spherical, check_finite;
  int threads;
  std::int64_t local_trials, window, grid_h, grid_w;
  std::string empty;

  kmeans_options options(const std::string& where) const {
    kmeans_options p;
    p.k = count_arg(where, "k", k);
    p.max_iter = count_arg(where, "max_iter", max_iter);
    p.tol = tol;
    p.seed = seed;
    p.stream = stream;
    p.spherical = spherical;
    p.check_finite = check_finite;
    p.threads = threads;
    p.local_trials = count_arg(where, "local_trials", local_trials);
    p.window = count_arg(where, "window", window);
    p.grid_h = count_arg(where, "grid_h", grid_h);
    p.grid_w = count_arg(where, "grid_w", grid_w);
    p.empty = parse_empty(where, empty);
    return p;
  }
};

/// For an h × w × D X: the grid from its shape (given grid_h / grid_w must agree).
template <class T>
void grid_from_shape(const std::string& where, const carray<T>& X, kmeans_options& p) {
  if (X.ndim() != 3) return;
  const auto h = static_cast<index_t>(X.shape(0)), w = static_cast<index_t>(X.shape(1));
  if ((p.grid_h && p.grid_h != h) || (p.grid_w && p.grid_w != w))
    throw py::value_error(where + ": grid_h x grid_w (" + std::to_string(p.grid_h) + " x " +
                          std::to_string(p.grid_w) + ") differs from the token grid of X " +
                          shape_of(X));
  p.grid_h = h;
  p.grid_w = w;
}

std::vector<py::ssize_t> label_shape(const py::array& X) {
  if (X.ndim() == 3) return {X.shape(0), X.shape(1)};
  return {X.ndim() >= 1 ? X.shape(0) : 0};
}

// --- kmeans -----------------------------------------------------------------------------------

template <real_scalar T>
py_kmeans_result kmeans_impl(py::handle Xh, py::handle init, const kmeans_kwargs& a) {
  const std::string where = "kmeans";
  auto X = real_array<T>(Xh, where, "X");
  check_ndim(X, {2, 3}, where, "X");
  kmeans_options p = a.options(where);
  grid_from_shape(where, X, p);
  const auto Xm = matrix_of(X);
  kmeans_result<T> r;
  if (py::isinstance<py::str>(init)) {
    p.init = parse_init(where, init.cast<std::string>());
    py::gil_scoped_release nogil;
    r = kmeans<T>(Xm, p);
  } else {
    auto C0 = real_array<T>(init, where, "init (initial centroids)");
    check_ndim(C0, {2}, where, "init (initial centroids)");
    p.init = kmeans_init::given;
    const auto C0m = matrix_of(C0);
    py::gil_scoped_release nogil;
    r = kmeans<T>(Xm, C0m, p);
  }
  return to_python(std::move(r), label_shape(X));
}

template <real_scalar T>
std::vector<py_kmeans_result> kmeans_batch_impl(py::handle Xs, py::handle k, py::handle init,
                                                py::handle streams, const kmeans_kwargs& a) {
  const std::string where = "kmeans_batch";
  // The problems' data: one B × N × D array (views into it) or a sequence of arrays.
  std::vector<carray<T>> held;
  std::vector<matrix_ref<const T>> data;
  std::vector<std::vector<py::ssize_t>> shapes;
  std::vector<kmeans_options> opts;
  const kmeans_options base = a.options(where);
  if (py::isinstance<py::array>(Xs) && py::reinterpret_borrow<py::array>(Xs).ndim() == 3) {
    held.push_back(real_array<T>(Xs, where, "Xs"));
    const auto& X = held.back();
    const index_t n = static_cast<index_t>(X.shape(1)), d = static_cast<index_t>(X.shape(2));
    for (py::ssize_t b = 0; b < X.shape(0); ++b) {
      data.emplace_back(X.data() + static_cast<index_t>(b) * n * d, n, d);
      shapes.push_back({X.shape(1)});
      opts.push_back(base);
    }
  } else {
    if (!py::isinstance<py::sequence>(Xs))
      throw py::value_error(where + ": Xs must be a B x N x D array or a sequence of arrays");
    index_t b = 0;
    for (auto item : py::reinterpret_borrow<py::sequence>(Xs)) {
      const std::string name = "Xs[" + std::to_string(b++) + "]";
      held.push_back(real_array<T>(item, where, name));
      check_ndim(held.back(), {2, 3}, where, name);
      data.push_back(matrix_of(held.back()));
      shapes.push_back(label_shape(held.back()));
      opts.push_back(base);
      grid_from_shape(where, held.back(), opts.back());
    }
  }
  const index_t B = data.size();
  auto per_problem = [&](py::handle h, const char* name) -> py::sequence {
    auto s = py::reinterpret_borrow<py::sequence>(h);
    if (static_cast<index_t>(s.size()) != B)
      throw py::value_error(where + ": " + name + " has " + std::to_string(s.size()) +
                            " entries, expected one per problem (" + std::to_string(B) + ")");
    return s;
  };
  // k: one for all, or one per problem.
  if (py::isinstance<py::int_>(k)) {
    for (auto& o : opts) o.k = count_arg(where, "k", k.cast<std::int64_t>());
  } else {
    auto s = per_problem(k, "k");
    for (index_t b = 0; b < B; ++b) opts[b].k = count_arg(where, "k", py::cast<std::int64_t>(s[b]));
  }
  // Streams: problem b draws from stream b unless given.
  if (streams.is_none()) {
    for (index_t b = 0; b < B; ++b) opts[b].stream = b;
  } else {
    auto s = per_problem(streams, "streams");
    for (index_t b = 0; b < B; ++b) opts[b].stream = py::cast<std::uint64_t>(s[b]);
  }
  std::vector<kmeans_problem<T>> problems(B);
  std::vector<carray<T>> inits;
  if (py::isinstance<py::str>(init)) {
    const auto i = parse_init(where, init.cast<std::string>());
    for (auto& o : opts) o.init = i;
  } else {
    auto s = per_problem(init, "init");
    for (index_t b = 0; b < B; ++b) {
      const std::string name = "init[" + std::to_string(b) + "]";
      inits.push_back(real_array<T>(s[b], where, name));
      check_ndim(inits.back(), {2}, where, name);
      problems[b].init_centroids = matrix_of(inits.back());
      opts[b].init = kmeans_init::given;
    }
  }
  for (index_t b = 0; b < B; ++b) {
    problems[b].data = data[b];
    problems[b].params = opts[b];
  }
  std::vector<kmeans_result<T>> results;
  {
    py::gil_scoped_release nogil;
    results = kmeans_batch<T>(std::span<const kmeans_problem<T>>(problems), a.threads);
  }
  std::vector<py_kmeans_result> out;
  out.reserve(B);
  for (index_t b = 0; b < B; ++b) out.push_back(to_python(std::move(results[b]), shapes[b]));
  return out;
}

// --- multi-scale K-Means ----------------------------------------------------------------------

struct multiscale_kwargs {
  std::vector<std::int64_t> windows;
  py::object ks;
  std::int64_t max_iter;
  double tol;
  bool spherical;
  std::uint64_t seed;
  std::int64_t local_trials;
  bool nested_seeds = false;

  multiscale_options options(const std::string& where) const {
    multiscale_options p;
    p.windows.clear();
    for (auto s : windows) p.windows.push_back(count_arg(where, "windows", s));
    if (!ks.is_none())
      for (auto k : ks.cast<std::vector<std::int64_t>>()) p.ks.push_back(count_arg(where, "ks", k));
    p.max_iter = count_arg(where, "max_iter", max_iter);
    p.tol = tol;
    p.spherical = spherical;
    p.seed = seed;
    p.local_trials = count_arg(where, "local_trials", local_trials);
    p.nested_seeds = nested_seeds;
    return p;
  }
};

template <real_scalar T>
py::object multiscale_impl(py::handle tokens_h, const multiscale_kwargs& a, bool check_finite,
                           int threads) {
  const std::string where = "multiscale_kmeans";
  auto tokens = real_array<T>(tokens_h, where, "tokens");
  check_ndim(tokens, {3, 4}, where, "tokens");
  const bool single = tokens.ndim() == 3;
  const py::ssize_t off = single ? 0 : 1;
  const index_t B = single ? 1 : static_cast<index_t>(tokens.shape(0));
  const auto h = tokens.shape(off), w = tokens.shape(off + 1), d = tokens.shape(off + 2);
  multiscale_options p = a.options(where);
  p.check_finite = check_finite;
  p.threads = threads;
  std::vector<matrix_ref<const T>> views;
  const index_t q = static_cast<index_t>(h * w);
  for (index_t b = 0; b < B; ++b)
    views.emplace_back(tokens.data() + b * q * static_cast<index_t>(d), q, static_cast<index_t>(d));
  std::vector<std::vector<scale_clustering<T>>> r;
  {
    py::gil_scoped_release nogil;
    r = multiscale_kmeans_batch<T>(std::span<const matrix_ref<const T>>(views),
                                   static_cast<index_t>(h), static_cast<index_t>(w), p);
  }
  py::list out;
  for (auto& img : r) {
    py::list scales;
    for (auto& s : img) scales.append(py::cast(to_python(std::move(s), h, w)));
    out.append(scales);
  }
  return single ? py::object(out[0]) : py::object(out);
}

// --- mask fusion ------------------------------------------------------------------------------

/// One scale for `fuse_masks` from a ScaleClustering, a KMeansResult or an array of cluster ids.
template <real_scalar T>
scale_clustering<T> scale_from(py::handle h, index_t q, const std::string& where,
                               const std::string& name) {
  scale_clustering<T> s;
  py::handle labels = h;
  std::int64_t k = -1;
  if (py::isinstance<py_scale_clustering>(h)) {
    const auto& c = h.cast<const py_scale_clustering&>();
    labels = c.labels;
    k = c.centroids.shape(0);
  } else if (py::isinstance<py_kmeans_result>(h)) {
    const auto& c = h.cast<const py_kmeans_result&>();
    labels = c.labels;
    k = c.centroids.shape(0);
  }
  auto l = label_array(labels, where, name);
  if (static_cast<index_t>(l.size()) != q)
    throw py::value_error(where + ": " + name + " has " + std::to_string(l.size()) +
                          " labels, expected one per token (" + std::to_string(q) + ")");
  s.labels.assign(l.data(), l.data() + l.size());
  if (k < 0) {  // plain cluster ids: K = max + 1 (ids below it may be unused)
    k = 0;
    for (auto v : s.labels) k = std::max<std::int64_t>(k, std::int64_t(v) + 1);
  }
  // fuse_masks reads only the number of centroid rows: K × 0, no storage.
  s.centroids = tensor<T, 2>::from_shape({static_cast<index_t>(k), index_t(0)});
  return s;
}

template <real_scalar T>
py_mask_fusion mask_fusion_impl(py::handle tokens_h, py::handle token_labels_h, py::handle scales_h,
                                std::int64_t num_seen, const mask_fusion_options& p) {
  const std::string where = "mask_fusion";
  auto tokens = real_array<T>(tokens_h, where, "tokens");
  check_ndim(tokens, {2, 3}, where, "tokens");
  const auto Z = matrix_of(tokens);
  auto tl = label_array(token_labels_h, where, "token_labels");
  if (static_cast<index_t>(tl.size()) != Z.rows)
    throw py::value_error(where + ": token_labels has shape " + shape_of(tl) + ", expected " +
                          std::to_string(Z.rows) + " labels (one per token of " + shape_of(tokens) +
                          ")");
  if (!py::isinstance<py::sequence>(scales_h) || py::isinstance<py::str>(scales_h))
    throw py::value_error(where + ": scales must be a sequence (one clustering per scale)");
  std::vector<scale_clustering<T>> scales;
  index_t i = 0;
  for (auto s : py::reinterpret_borrow<py::sequence>(scales_h)) {
    scales.push_back(scale_from<T>(s, Z.rows, where, "scales[" + std::to_string(i) + "]"));
    ++i;
  }
  mask_fusion_result<T> r;
  {
    py::gil_scoped_release nogil;
    r = fuse_masks<T>(Z, std::span<const std::int32_t>(tl.data(), Z.rows),
                      std::span<const scale_clustering<T>>(scales), num_seen, p);
  }
  return to_python(std::move(r), shape_vector(tl));
}

// --- pseudo labels ----------------------------------------------------------------------------

template <real_scalar T, class L>
py_pseudo_labels pseudo_impl(const carray<T>& tokens, const carray<L>& pixels,
                             std::int64_t num_seen, const pseudo_label_options& p) {
  const std::string where = "pseudo_labels";
  const auto B = tokens.shape(0), h = tokens.shape(1), w = tokens.shape(2), d = tokens.shape(3);
  if (pixels.shape(0) != B)
    throw py::value_error(where + ": labels has " + std::to_string(pixels.shape(0)) +
                          " images, tokens has " + std::to_string(B));
  const auto H = pixels.shape(1), W = pixels.shape(2);
  const auto Ho = p.out_h ? static_cast<py::ssize_t>(p.out_h) : h,
             Wo = p.out_w ? static_cast<py::ssize_t>(p.out_w) : w;
  py_pseudo_labels o;
  py::array_t<std::int32_t> labels({B, Ho, Wo});
  const std::span<std::int32_t> out(labels.mutable_data(), static_cast<std::size_t>(B * Ho * Wo));
  std::vector<pseudo_label_result<T>> r;
  {
    py::gil_scoped_release nogil;
    r = pseudo_labels_batch<T, L>(tokens.data(), static_cast<index_t>(B), static_cast<index_t>(h),
                                  static_cast<index_t>(w), static_cast<index_t>(d), pixels.data(),
                                  static_cast<index_t>(H), static_cast<index_t>(W), num_seen, p,
                                  out);
  }
  o.labels = labels;
  py::array_t<std::int32_t> fused({B, h, w}), token({B, h, w});
  py::array_t<std::int64_t> num(B);
  const auto q = static_cast<std::size_t>(h * w);
  for (py::ssize_t b = 0; b < B; ++b) {
    const auto& rb = r[static_cast<std::size_t>(b)];
    std::copy_n(rb.fused_tokens.data(), q, fused.mutable_data() + b * h * w);
    std::copy_n(rb.token_labels.data(), q, token.mutable_data() + b * h * w);
    num.mutable_data()[b] = static_cast<std::int64_t>(rb.num_pseudo);
  }
  o.fused_tokens = fused;
  o.token_labels = token;
  o.num_pseudo = num;
  if (p.keep_details) {
    py::list scales, fusion;
    for (auto& rb : r) {
      py::list s;
      for (auto& sc : rb.scales) s.append(py::cast(to_python(std::move(sc), h, w)));
      scales.append(s);
      fusion.append(py::cast(to_python(std::move(rb.fusion), {h, w})));
    }
    o.scales = scales;
    o.fusion = fusion;
  }
  return o;
}

template <real_scalar T>
py_pseudo_labels pseudo_dispatch(py::handle tokens_h, py::handle labels_h, std::int64_t num_seen,
                                 const pseudo_label_options& p) {
  const std::string where = "pseudo_labels";
  auto tokens = real_array<T>(tokens_h, where, "tokens");
  check_ndim(tokens, {4}, where, "tokens (B x h x w x D)");
  py::array labels = as_array(labels_h);
  if (!labels || (labels.dtype().kind() != 'i' && labels.dtype().kind() != 'u'))
    throw py::value_error(where + ": labels must be an integer array (B x H x W)");
  check_ndim(labels, {3}, where, "labels (B x H x W)");
  const int num = labels.dtype().num();
  if (num == py::dtype::of<std::int32_t>().num())
    return pseudo_impl<T, std::int32_t>(tokens, carray<std::int32_t>::ensure(labels), num_seen, p);
  if (num == py::dtype::of<std::uint8_t>().num())
    return pseudo_impl<T, std::uint8_t>(tokens, carray<std::uint8_t>::ensure(labels), num_seen, p);
  // int64 in place; every other integer dtype converted to int64 (lossless below 2^63).
  return pseudo_impl<T, std::int64_t>(tokens, carray<std::int64_t>::ensure(labels), num_seen, p);
}

// --- docstrings -------------------------------------------------------------------------------

constexpr const char* kmeans_doc =
    R"doc(K-Means (Lloyd) of the rows of X (DESIGN.md §2.3 steps 1-2).

Args:
    X: (N, D) points, or an (h, w, D) token grid (then N = h*w, the grid of window seeds is the
        array's and the labels have shape (h, w)). float32 stays float32, float64 stays float64,
        other dtypes are converted to float64; C-contiguous arrays are used without a copy.
    k: clusters for k-means++ seeding (ignored by 'window' and by given centroids).
    init: 'k-means++' (greedy, local_trials candidates per step, as scikit-learn), 'window'
        (average-pool of the token grid, window x window), or a (K, D) array of initial
        centroids in X's dtype.
    max_iter: Lloyd steps at most (>= 1).
    tol: stop when sum ||c_new - c_old||^2 <= tol * mean_d var(X[:, d]); 0 = strict only.
    seed, stream: k-means++ draws come from rng(seed, stream).
    spherical: renormalise the centroids after each update (cosine K-Means on unit rows).
    check_finite: raise on NaN/Inf in X and the initial centroids.
    threads: OpenMP threads (0 = the OpenMP default).
    local_trials: k-means++ candidates per step (0 = 2 + floor(ln K)).
    window: window size for init='window'.
    grid_h, grid_w: the token grid for init='window' with an (N, D) X (grid_h * grid_w = N).
    empty: 'reseed_farthest' (K stays fixed) or 'drop' (empty clusters removed, labels compacted).

Returns:
    KMeansResult: centroids (K', D), labels (N,) int32, inertia, n_iter, converged,
    strict_convergence, objective (n_iter,) float64, changed (n_iter,) int64, empty_clusters.

Raises:
    ValueError: bad shapes or options, e.g. "kmeans: k (9) exceeds the number of points (7)".

The GIL is released during the fit.)doc";

constexpr const char* kmeans_batch_doc = R"doc(Independent K-Means problems, one per thread.

Result b equals kmeans(Xs[b], ..., stream=streams[b], threads=1) bitwise, for every `threads`.

Args:
    Xs: a (B, N, D) array (each problem a view, no copy) or a sequence of (N_b, D) / (h, w, D)
        arrays (one dtype for all).
    k: clusters, one int for all or a sequence of B ints.
    init: 'k-means++', 'window' or a sequence of B (K_b, D) arrays of initial centroids.
    streams: k-means++ streams, a sequence of B ints (default: problem b uses stream b).
    threads: threads over problems (0 = OpenMP default); each problem runs single-threaded.
    The other keywords are those of kmeans, shared by every problem.

Returns:
    list of B KMeansResult, in the order of Xs.

Raises:
    ValueError: from the first invalid problem, its index in the message.)doc";

constexpr const char* multiscale_doc =
    R"doc(Multi-scale K-Means of teacher tokens (DESIGN.md §2.3 steps 1-2).

Per image and scale: window seeds (average-pool with window s, stride s) or k-means++ with the
given ks, then Lloyd steps on all the image's tokens; empty clusters are dropped. Every
(image, scale) problem runs on one thread; image b's k-means++ streams are (b << 16) | j.

Args:
    tokens: (B, h, w, D) tokens of B images, or (h, w, D) for one image.
    windows: window sizes, one scale each ({4, 8, 16} suits a 32 x 32 grid).
    ks: when given, k-means++ seeds with these K per scale instead of windows.
    max_iter, tol, spherical, seed, local_trials: as in kmeans (max_iter default 10, tol 0).
    nested_seeds: with ks (ValueError without), one k-means++ pass per image for the largest
        K; scale j starts from its first K_j seeds (every prefix of a k-means++ seeding is
        one). Tokens are then always checked, whatever check_finite says. Default False.
    check_finite: raise on non-finite tokens.
    threads: threads over (image, scale) problems (0 = OpenMP default).

Returns:
    For (B, h, w, D): B lists of ScaleClustering (one per scale); for (h, w, D): one list.
    ScaleClustering: window, centroids (K', D), labels (h, w) int32, n_iter, converged, seeds,
    inertia.)doc";

constexpr const char* mask_fusion_doc =
    R"doc(Mask fusion of one image's clusters (DESIGN.md §2.3 steps 3-4).

Pools the clusters of all scales, merges clusters whose normalised centroids have cosine >= lam
(largest first, greedy around each seed), resolves overlaps by similarity to the fused masks'
centroids, and labels the ignored tokens with pseudo classes num_seen + m.

Args:
    tokens: (Q, D) or (h, w, D) tokens of the image, L2-normalised.
    token_labels: (Q,) or (h, w) integer labels: a seen class in [0, num_seen) or -1 (ignored).
    scales: a sequence of clusterings of these tokens: ScaleClustering or KMeansResult objects,
        or integer arrays of cluster ids (Q values in [0, K_s)).
    num_seen: C_seen, the number of seen classes.
    lam: lambda, the cosine similarity that merges clusters and matches a mask to a seen class.
    min_tokens: ignored tokens a mask needs to become a pseudo class.
    check_finite: raise on non-finite tokens.

Returns:
    MaskFusion: labels (shape of token_labels) int32, num_pseudo, partition, clusters (list of
    PooledCluster), visit_order, cluster_centroids (P, D), masks (list of FusedMask),
    mask_centroids (G, D).)doc";

constexpr const char* pseudo_doc = R"doc(PLM pseudo labels of a batch (DESIGN.md §2.3 steps 1-5).

Per image: tokens L2-normalised, pixel labels reduced to the token grid (a token is ignored when
>= ignored_fraction of its area is ignored), multi-scale K-Means with window seeds, mask fusion,
fusion with the seen labels, nearest-neighbour resize to out_size. Images run in parallel, one
per thread; results are bitwise identical for every thread count.

Args:
    tokens: (B, h, w, D) teacher tokens, float32 or float64 (others converted to float64).
    labels: (B, H, W) integer pixel labels (any resolution): a seen class in [0, num_seen),
        -1 or ignore_value (255) ignored. int32, int64 and uint8 are used without a copy.
    num_seen: C_seen; pseudo classes are numbered num_seen + m.
    windows, ks, max_iter, tol, spherical, seed, local_trials: the K-Means scales, as in
        multiscale_kmeans.
    lam, min_tokens: mask fusion, as in mask_fusion.
    ignore_value: a second pixel value meaning ignored (-1 always is).
    ignored_fraction: a token is ignored when this fraction of its area is ignored, in (0, 1].
    out_size: (H', W') of the output label maps (default: the token grid).
    normalize_tokens: L2-normalise the tokens first (else the caller guarantees unit rows).
    check_finite: raise on non-finite tokens.
    keep_details: also return every image's clusterings and fusion record.
    threads: threads over images (0 = OpenMP default).

Returns:
    PseudoLabels: labels (B, H', W') int32 (seen class, num_seen + m, or -1), fused_tokens and
    token_labels (B, h, w) int32, num_pseudo (B,) int64, and with keep_details scales (B lists
    of ScaleClustering) and fusion (B MaskFusion).)doc";

}  // namespace

inline void bind_cluster(py::module_& m) {
  py::class_<py_kmeans_result>(m, "KMeansResult", "What one K-Means fit returns.")
      .def_readonly("centroids", &py_kmeans_result::centroids, "(K', D) final centroids")
      .def_readonly("labels", &py_kmeans_result::labels,
                    "(N,) int32 index of the nearest final centroid ((h, w) for a token grid)")
      .def_readonly("inertia", &py_kmeans_result::inertia,
                    "sum of squared distances to the assigned centroids (exact, double)")
      .def_readonly("n_iter", &py_kmeans_result::n_iter, "Lloyd steps run")
      .def_readonly("converged", &py_kmeans_result::converged, "stopped before max_iter")
      .def_readonly("strict_convergence", &py_kmeans_result::strict_convergence,
                    "the last step changed no label: a fixed point")
      .def_readonly("objective", &py_kmeans_result::objective,
                    "(n_iter,) float64 objective per step (non-increasing)")
      .def_readonly("changed", &py_kmeans_result::changed,
                    "(n_iter,) int64 labels changed per step")
      .def_readonly("empty_clusters", &py_kmeans_result::empty_clusters,
                    "clusters re-seeded or dropped over the fit")
      .def("__repr__", [](const py_kmeans_result& r) {
        return "KMeansResult(k=" + std::to_string(r.centroids.shape(0)) +
               ", inertia=" + py::repr(py::float_(r.inertia)).cast<std::string>() +
               ", n_iter=" + std::to_string(r.n_iter) +
               ", converged=" + (r.converged ? "True" : "False") + ")";
      });

  py::class_<py_scale_clustering>(m, "ScaleClustering",
                                  "The clusters of one image at one scale (empty ones dropped).")
      .def_readonly("window", &py_scale_clustering::window,
                    "the window size that seeded this scale (0 for k-means++ seeds)")
      .def_readonly("centroids", &py_scale_clustering::centroids, "(K', D) final centroids")
      .def_readonly("labels", &py_scale_clustering::labels, "(h, w) int32 cluster of each token")
      .def_readonly("n_iter", &py_scale_clustering::n_iter, "Lloyd steps run")
      .def_readonly("converged", &py_scale_clustering::converged,
                    "no assignment changed in the last step")
      .def_readonly("seeds", &py_scale_clustering::seeds, "K before empty clusters were dropped")
      .def_readonly("inertia", &py_scale_clustering::inertia, "sum of squared distances")
      .def("__repr__", [](const py_scale_clustering& s) {
        return "ScaleClustering(window=" + std::to_string(s.window) +
               ", k=" + std::to_string(s.centroids.shape(0)) +
               ", n_iter=" + std::to_string(s.n_iter) + ")";
      });

  py::class_<pooled_cluster>(m, "PooledCluster", "One cluster of the pool that mask fusion sees.")
      .def_readonly("scale", &pooled_cluster::scale, "index of its scale")
      .def_readonly("cluster", &pooled_cluster::cluster, "cluster id within that scale")
      .def_readonly("size", &pooled_cluster::size, "tokens in the cluster")
      .def_readonly("mask", &pooled_cluster::mask, "the fused mask it joined");

  py::class_<fused_mask>(m, "FusedMask", "One fused mask (a group of clusters).")
      .def_readonly("members", &fused_mask::members,
                    "pooled cluster ids; the first is the seed, then visit order")
      .def_readonly("union_tokens", &fused_mask::union_tokens, "tokens in the union of its members")
      .def_readonly("tokens", &fused_mask::tokens, "tokens it owns in the partition")
      .def_readonly("ignored_tokens", &fused_mask::ignored_tokens,
                    "owned tokens whose token label is ignored")
      .def_property_readonly(
          "fate",
          [](const fused_mask& f) -> std::string {
            switch (f.fate) {
              case mask_fate::kept:
                return "kept";
              case mask_fate::too_few_tokens:
                return "too_few_tokens";
              case mask_fate::seen_match:
                return "seen_match";
            }
            return "?";
          },
          "'kept', 'too_few_tokens' or 'seen_match'")
      .def_readonly("pseudo", &fused_mask::pseudo, "pseudo class m when kept, else -1")
      .def_readonly("seen_class", &fused_mask::seen_class,
                    "for 'seen_match': the most similar seen class, else -1");

  py::class_<py_mask_fusion>(m, "MaskFusion", "Everything mask fusion decided for one image.")
      .def_readonly("labels", &py_mask_fusion::labels,
                    "int32 fused labels: seen class, num_seen + m, or -1")
      .def_readonly("num_pseudo", &py_mask_fusion::num_pseudo, "pseudo classes kept")
      .def_readonly("partition", &py_mask_fusion::partition, "int32 fused mask owning each token")
      .def_readonly("clusters", &py_mask_fusion::clusters, "the pooled clusters, scale-major")
      .def_readonly("visit_order", &py_mask_fusion::visit_order,
                    "(P,) int64 pooled ids, largest first")
      .def_readonly("cluster_centroids", &py_mask_fusion::cluster_centroids,
                    "(P, D) normalised mean of each pooled cluster")
      .def_readonly("masks", &py_mask_fusion::masks, "the fused masks in seed-visit order")
      .def_readonly("mask_centroids", &py_mask_fusion::mask_centroids,
                    "(G, D) normalised mean of each mask's union");

  py::class_<py_pseudo_labels>(m, "PseudoLabels", "The PLM pseudo labels of a batch.")
      .def_readonly("labels", &py_pseudo_labels::labels,
                    "(B, H', W') int32: seen class, num_seen + m, or -1")
      .def_readonly("fused_tokens", &py_pseudo_labels::fused_tokens,
                    "(B, h, w) int32 fused labels on the token grid")
      .def_readonly("token_labels", &py_pseudo_labels::token_labels,
                    "(B, h, w) int32 seen labels on the token grid (-1 ignored)")
      .def_readonly("num_pseudo", &py_pseudo_labels::num_pseudo, "(B,) int64 pseudo classes kept")
      .def_readonly("scales", &py_pseudo_labels::scales,
                    "with keep_details: B lists of ScaleClustering, else None")
      .def_readonly("fusion", &py_pseudo_labels::fusion,
                    "with keep_details: B MaskFusion, else None");

  m.def(
      "kmeans",
      [](array_like X, std::int64_t k, py::object init, std::int64_t max_iter, double tol,
         std::uint64_t seed, std::uint64_t stream, bool spherical, bool check_finite, int threads,
         std::int64_t local_trials, std::int64_t window, std::int64_t grid_h, std::int64_t grid_w,
         const std::string& empty) {
        const kmeans_kwargs a{k,         max_iter,     tol,     seed,         stream,
                              spherical, check_finite, threads, local_trials, window,
                              grid_h,    grid_w,       empty};
        return is_float32(X) ? kmeans_impl<float>(X, init, a) : kmeans_impl<double>(X, init, a);
      },
      kmeans_doc, "X"_a, "k"_a = 8, py::kw_only(), "init"_a = "k-means++", "max_iter"_a = 300,
      "tol"_a = 1e-4, "seed"_a = 0, "stream"_a = 0, "spherical"_a = false, "check_finite"_a = true,
      "threads"_a = 0, "local_trials"_a = 0, "window"_a = 2, "grid_h"_a = 0, "grid_w"_a = 0,
      "empty"_a = "reseed_farthest");

  m.def(
      "kmeans_batch",
      [](py::object Xs, py::object k, py::object init, std::int64_t max_iter, double tol,
         std::uint64_t seed, py::object streams, bool spherical, bool check_finite, int threads,
         std::int64_t local_trials, std::int64_t window, std::int64_t grid_h, std::int64_t grid_w,
         const std::string& empty) {
        const kmeans_kwargs a{0,         max_iter,     tol,     seed,         0,
                              spherical, check_finite, threads, local_trials, window,
                              grid_h,    grid_w,       empty};
        // The dtype of the first problem decides (one dtype for all).
        py::object first = py::reinterpret_borrow<py::object>(Xs);
        if (!py::isinstance<py::array>(Xs) && py::isinstance<py::sequence>(Xs) && py::len(Xs) > 0)
          first = py::reinterpret_borrow<py::sequence>(Xs)[0];
        return is_float32(first) ? kmeans_batch_impl<float>(Xs, k, init, streams, a)
                                 : kmeans_batch_impl<double>(Xs, k, init, streams, a);
      },
      kmeans_batch_doc, "Xs"_a, "k"_a = 8, py::kw_only(), "init"_a = "k-means++",
      "max_iter"_a = 300, "tol"_a = 1e-4, "seed"_a = 0, "streams"_a = py::none(),
      "spherical"_a = false, "check_finite"_a = true, "threads"_a = 0, "local_trials"_a = 0,
      "window"_a = 2, "grid_h"_a = 0, "grid_w"_a = 0, "empty"_a = "reseed_farthest");

  m.def(
      "multiscale_kmeans",
      [](array_like tokens, std::vector<std::int64_t> windows, py::object ks, std::int64_t max_iter,
         double tol, bool spherical, std::uint64_t seed, std::int64_t local_trials,
         bool nested_seeds, bool check_finite, int threads) {
        const multiscale_kwargs a{std::move(windows), std::move(ks), max_iter,     tol,
                                  spherical,          seed,          local_trials, nested_seeds};
        return is_float32(tokens) ? multiscale_impl<float>(tokens, a, check_finite, threads)
                                  : multiscale_impl<double>(tokens, a, check_finite, threads);
      },
      multiscale_doc, "tokens"_a, py::kw_only(), "windows"_a = std::vector<std::int64_t>{2, 4},
      "ks"_a = py::none(), "max_iter"_a = 10, "tol"_a = 0.0, "spherical"_a = false, "seed"_a = 0,
      "local_trials"_a = 0, "nested_seeds"_a = false, "check_finite"_a = true, "threads"_a = 0);

  m.def(
      "mask_fusion",
      [](array_like tokens, array_like token_labels, py::object scales, std::int64_t num_seen,
         double lam, std::int64_t min_tokens, bool check_finite) {
        mask_fusion_options p;
        p.lambda = lam;
        p.min_tokens = count_arg("mask_fusion", "min_tokens", min_tokens);
        p.check_finite = check_finite;
        return is_float32(tokens)
                   ? mask_fusion_impl<float>(tokens, token_labels, scales, num_seen, p)
                   : mask_fusion_impl<double>(tokens, token_labels, scales, num_seen, p);
      },
      mask_fusion_doc, "tokens"_a, "token_labels"_a, "scales"_a, "num_seen"_a, py::kw_only(),
      "lam"_a = 0.9, "min_tokens"_a = 2, "check_finite"_a = true);

  m.def(
      "pseudo_labels",
      [](array_like tokens, array_like labels, std::int64_t num_seen,
         std::vector<std::int64_t> windows, py::object ks, std::int64_t max_iter, double tol,
         bool spherical, std::uint64_t seed, std::int64_t local_trials, double lam,
         std::int64_t min_tokens, std::int64_t ignore_value, double ignored_fraction,
         py::object out_size, bool normalize_tokens, bool check_finite, bool keep_details,
         int threads) {
        const std::string where = "pseudo_labels";
        pseudo_label_options p;
        p.kmeans = multiscale_kwargs{std::move(windows), std::move(ks), max_iter,    tol,
                                     spherical,          seed,          local_trials}
                       .options(where);
        p.fusion.lambda = lam;
        p.fusion.min_tokens = count_arg(where, "min_tokens", min_tokens);
        p.token.ignore_value = ignore_value;
        p.token.ignored_fraction = ignored_fraction;
        if (!out_size.is_none()) {
          const auto s = out_size.cast<std::vector<std::int64_t>>();
          if (s.size() != 2)
            throw py::value_error(where + ": out_size must be (H', W'), got " +
                                  std::to_string(s.size()) + " values");
          p.out_h = count_arg(where, "out_size", s[0]);
          p.out_w = count_arg(where, "out_size", s[1]);
          if (p.out_h == 0 || p.out_w == 0)
            throw py::value_error(where + ": out_size must be positive, got (" +
                                  std::to_string(s[0]) + ", " + std::to_string(s[1]) + ")");
        }
        p.normalize_tokens = normalize_tokens;
        p.check_finite = check_finite;
        p.keep_details = keep_details;
        p.threads = threads;
        return is_float32(tokens) ? pseudo_dispatch<float>(tokens, labels, num_seen, p)
                                  : pseudo_dispatch<double>(tokens, labels, num_seen, p);
      },
      pseudo_doc, "tokens"_a, "labels"_a, "num_seen"_a, py::kw_only(),
      "windows"_a = std::vector<std::int64_t>{2, 4}, "ks"_a = py::none(), "max_iter"_a = 10,
      "tol"_a = 0.0, "spherical"_a = false, "seed"_a = 0, "local_trials"_a = 0, "lam"_a = 0.9,
      "min_tokens"_a = 2, "ignore_value"_a = 255, "ignored_fraction"_a = 0.5,
      "out_size"_a = py::none(), "normalize_tokens"_a = true, "check_finite"_a = true,
      "keep_details"_a = false, "threads"_a = 0);
}

}  // namespace zss::python

PYBIND11_MODULE(_zss, m) {
  m.doc() =
      R"doc(zss: the CPU half of CLIP-ZSS from NumPy (see the package docstring of `zss`).)doc";
  m.attr("__version__") = zss::version_string;
  zss::python::bind_cluster(m);
  zss::python::bind_losses(m);
  zss::python::bind_eval(m);
  zss::python::bind_toy(m);
}
