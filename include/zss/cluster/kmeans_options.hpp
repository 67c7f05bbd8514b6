// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/cluster/kmeans_options.hpp
 * K-Means options (`kmeans_options`), its policies (`kmeans_init`, `empty_cluster_policy`) and
 * what a fit returns (`kmeans_result<T>`). DESIGN.md §2.3 steps 1–2, STYLE §6 and §9.
 *
 * Legend: N points (rows of X), D width, K clusters (K' ≤ K after dropping empty ones),
 * h × w a token grid (N = h·w), s a window size.
 *
 * Numbers live in the params struct; the init and empty-cluster policies are enums because
 * neither changes the inner (distance/argmin/update) loop: they run between Lloyd steps.
 */
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "zss/core/check.hpp"
#include "zss/core/config.hpp"
#include "zss/core/tensor.hpp"

namespace zss {

/// How the first centroids are chosen.
enum class kmeans_init {
  kmeanspp,  ///< greedy k-means++ (Arthur & Vassilvitskii 2007; `local_trials` candidates per step,
             ///< as scikit-learn)
  window,  ///< average-pool of the h × w token grid with window s, stride s (DESIGN §2.3 step 1); K
           ///< = ⌈h/s⌉·⌈w/s⌉
  given,  ///< caller-supplied centroids (the `kmeans(X, C0, params)` overload); K = rows of C0
};

/// What happens to a cluster that receives no point in a Lloyd step.
enum class empty_cluster_policy {
  reseed_farthest,  ///< move it to the point farthest from its current centroid (scikit-learn); K
                    ///< stays fixed
  drop,             ///< remove it; labels are compacted to [0, K') (DESIGN §2.3 step 2)
};

/// "kmeanspp", "window", "given".
inline const char* to_string(kmeans_init i) noexcept {
  switch (i) {
    case kmeans_init::kmeanspp:
      return "kmeanspp";
    case kmeans_init::window:
      return "window";
    case kmeans_init::given:
      return "given";
  }
  return "?";
}

/// "reseed_farthest", "drop".
inline const char* to_string(empty_cluster_policy p) noexcept {
  return p == empty_cluster_policy::drop ? "drop" : "reseed_farthest";
}

/**
 * K-Means options. Defaults follow scikit-learn's `KMeans` where the paper is silent.
 */
struct kmeans_options {
  index_t k = 8;  ///< clusters for `kmeanspp` init (ignored by `window`/`given`, which fix K
                  ///< themselves); ≥ 1, ≤ N
  index_t max_iter =
      300;  ///< Lloyd steps at most (≥ 1); the multi-scale default is 10 (DESIGN §2.3)
  double tol = 1e-4;  ///< stop when Σ‖c_new − c_old‖² ≤ tol · mean_d var(X[:, d]) (scikit-learn); 0
                      ///< = only strict convergence
  std::uint64_t seed = 0;    ///< k-means++ seed: draws come from `rng(seed, stream)`
  std::uint64_t stream = 0;  ///< k-means++ stream (batched callers give each problem its own)
  bool spherical = false;    ///< renormalise centroids to unit length after each update (cosine
                             ///< K-Means on unit-norm X)
  bool check_finite = true;  ///< throw on NaN/Inf in X (and in given centroids); one extra pass
  int threads =
      0;  ///< OpenMP threads (0 = omp_get_max_threads()); batched entry points use their own
  kmeans_init init = kmeans_init::kmeanspp;  ///< seeding policy
  index_t local_trials = 0;  ///< k-means++ candidates per step; 0 = 2 + ⌊ln K⌋ (greedy, as
                             ///< scikit-learn); 1 = classic k-means++
  index_t window = 2;        ///< window size s for `kmeans_init::window`
  index_t grid_h =
      0;  ///< token grid height h for `kmeans_init::window` (grid_h · grid_w must equal N)
  index_t grid_w = 0;  ///< token grid width w for `kmeans_init::window`
  empty_cluster_policy empty = empty_cluster_policy::reseed_farthest;  ///< empty-cluster policy
  /// Hamerly bounds (cluster/hamerly.hpp): skip the distances that provably cannot change a
  /// label. Labels, centroids and iterations are bitwise those of plain Lloyd; `objective` is NaN
  /// for steps that skipped distances. Pays off on fits that run many steps.
  bool prune = false;
};

/**
 * The outcome of one K-Means fit.
 * @tparam T float or double.
 */
template <real_scalar T>
struct kmeans_result {
  tensor<T, 2> centroids;  ///< K' × D final centroids (K' = K unless clusters were dropped)
  std::vector<std::int32_t>
      labels;  ///< N: index in [0, K') of the nearest final centroid (ties to the lowest index)
  double inertia =
      0;  ///< Σ_i ‖x_i − c_{label_i}‖², computed exactly with (x − c)² after the last step
  index_t iterations = 0;  ///< Lloyd steps run (1 ≤ iterations ≤ max_iter)
  bool converged =
      false;  ///< stopped before max_iter: no label changed (strict) or the centre shift ≤ tol
  bool strict_convergence = false;  ///< the last step changed no label (or moved no centroid):
                                    ///< labels and centroids are a fixed point
  std::vector<double> objective;  ///< per step: Σ min_k ‖x − c_k‖² against that step's input
                                  ///< centroids (non-increasing)
  std::vector<index_t>
      changed;  ///< per step: labels that changed (the first step counts every point)
  index_t empty_clusters = 0;      ///< clusters re-seeded or dropped over the whole fit
  index_t distances_computed = 0;  ///< point–centroid distances computed over the fit (N·K per
                                   ///< step and per final assignment without `prune`)
};

namespace detail {

/// "where: k (9) exceeds the number of points (7)" and the other K checks.
inline void check_k(std::string_view where, index_t k, index_t n) {
  if (k == 0) {
    std::ostringstream os;
    os << where << ": k must be >= 1, got 0";
    throw std::invalid_argument(os.str());
  }
  if (k > n) {
    std::ostringstream os;
    os << where << ": k (" << k << ") exceeds the number of points (" << n << ")";
    throw std::invalid_argument(os.str());
  }
}

/// Validates the numbers in `p` that do not depend on the data.
inline void check_params(std::string_view where, const kmeans_options& p) {
  std::ostringstream os;
  if (p.max_iter == 0)
    os << where << ": max_iter must be >= 1, got 0";
  else if (!(p.tol >= 0) || !std::isfinite(p.tol))
    os << where << ": tol must be finite and >= 0, got " << p.tol;
  else if (p.threads < 0)
    os << where << ": threads must be >= 0 (0 = OpenMP default), got " << p.threads;
  if (!os.str().empty()) throw std::invalid_argument(os.str());
}

}  // namespace detail

}  // namespace zss
