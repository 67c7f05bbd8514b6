// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/cluster/multiscale_kmeans.hpp
 * Multi-scale K-Means of one image's teacher tokens, or of a batch of images
 * (DESIGN.md §2.3 steps 1–2): the input of mask fusion (`scale_clustering`).
 *
 * Legend: B images, h × w token grid, Q = h·w tokens, D width, s a window size,
 * K_s = ⌈h/s⌉·⌈w/s⌉ seeds at scale s, K' ≤ K_s clusters that stay non-empty.
 *
 * Per image and scale: seeds = window average-pool of the tokens (window s, stride s; partial
 * windows at the right/bottom edges average what they cover), then Lloyd iterations on all Q
 * tokens (squared Euclidean, or spherical), stopping when no assignment changes or after
 * `max_iter` (default 10); clusters that become empty are dropped and labels compacted to
 * [0, K'). Option: k-means++ seeds with explicit Ks instead of windows.
 *
 * Option `nested_seeds` (with Ks): one k-means++ pass per image, for the largest K, and scale j
 * starts from its first K_j seeds. k-means++ draws its seeds one after the other, each from the
 * distances to those before, so every prefix of a seeding is itself a k-means++ seeding (drawn
 * with the largest K's local trials); the image's scales then share that pass over the tokens
 * instead of making one each (issue #16). Off by default: the scales then start from nested
 * seeds, not independent ones, and the results differ from the default's.
 *
 * The (image, scale) problems of a batch run one per thread through `kmeans_batch`, so a batch
 * result equals the single-image results bitwise, whatever the thread count. k-means++ draws of
 * image b, scale j come from `rng(seed, (b << 16) | j)` (with `nested_seeds`: j = the first scale
 * with the largest K).
 */
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "zss/cluster/clustering.hpp"
#include "zss/cluster/kmeans.hpp"
#include "zss/core/check.hpp"
#include "zss/core/parallel.hpp"
#include "zss/core/tensor.hpp"

namespace zss {

/// Options of multi-scale K-Means (DESIGN §2.3; defaults for a 16 × 16 token grid).
struct multiscale_options {
  std::vector<index_t> windows = {
      2, 4};  ///< window sizes s (one scale each); {4, 8, 16} suits a 32 × 32 grid
  std::vector<index_t>
      ks;  ///< when non-empty: k-means++ seeds with these K per scale (windows ignored)
  index_t max_iter = 10;  ///< Lloyd steps per scale at most
  double tol =
      0;  ///< centre-shift tolerance (kmeans_options::tol); 0 = stop only when no label changes
  bool spherical = false;    ///< renormalised centroids (cosine K-Means)
  std::uint64_t seed = 0;    ///< k-means++ seed
  index_t local_trials = 0;  ///< k-means++ candidates per step; 0 = 2 + ⌊ln K⌋
  /// With `ks` (an error without): one k-means++ pass per image, prefixes per scale (file
  /// comment). The tokens are then always checked (finite, squares in range), whatever
  /// `check_finite` says. Default off.
  bool nested_seeds = false;
  bool check_finite = true;  ///< throw on non-finite tokens
  int threads = 0;           ///< threads over (image, scale) problems (0 = OpenMP default)
};

namespace detail {

inline void check_multiscale(const multiscale_options& p) {
  constexpr const char* where = "multiscale_kmeans";
  if (p.ks.empty()) {
    require(!p.windows.empty(), std::string(where) + ": no scales (windows and ks are both empty)");
    for (auto s : p.windows)
      require(s >= 1, std::string(where) + ": window sizes must be >= 1, got 0");
  }
  require(p.max_iter >= 1, std::string(where) + ": max_iter must be >= 1, got 0");
  require(!p.nested_seeds || !p.ks.empty(),
          std::string(where) + ": nested_seeds needs ks (window scales draw no k-means++ seeds)");
}

inline index_t scale_count(const multiscale_options& p) {
  return p.ks.empty() ? p.windows.size() : p.ks.size();
}

template <real_scalar T>
kmeans_problem<T> scale_problem(matrix_ref<const T> tokens, index_t h, index_t w,
                                const multiscale_options& p, std::uint64_t image, index_t j) {
  kmeans_problem<T> pr;
  pr.data = tokens;
  auto& q = pr.params;
  q.max_iter = p.max_iter;
  q.tol = p.tol;
  q.spherical = p.spherical;
  q.check_finite = p.check_finite;
  q.threads = 1;
  q.empty = empty_cluster_policy::drop;
  q.seed = p.seed;
  q.stream = (image << 16) | static_cast<std::uint64_t>(j);
  q.local_trials = p.local_trials;
  q.grid_h = h;
  q.grid_w = w;
  if (p.ks.empty()) {
    q.init = kmeans_init::window;
    q.window = p.windows[j];
  } else {
    q.init = kmeans_init::kmeanspp;
    q.k = p.ks[j];
  }
  return pr;
}

template <real_scalar T>
scale_clustering<T> to_scale_clustering(kmeans_result<T>&& r, const multiscale_options& p,
                                        index_t h, index_t w, index_t j) {
  scale_clustering<T> s;
  s.window = p.ks.empty() ? p.windows[j] : 0;
  s.seeds = p.ks.empty() ? window_seed_count(h, w, p.windows[j]) : p.ks[j];
  s.centroids = std::move(r.centroids);
  s.labels = std::move(r.labels);
  s.iterations = r.iterations;
  s.converged = r.strict_convergence;
  s.inertia = r.inertia;
  return s;
}

template <real_scalar T>
std::vector<std::vector<scale_clustering<T>>> run_multiscale(
    std::span<const matrix_ref<const T>> images, index_t h, index_t w, const multiscale_options& p,
    std::uint64_t first_image) {
  check_multiscale(p);
  const index_t ns = scale_count(p);
  std::vector<kmeans_problem<T>> problems;
  problems.reserve(images.size() * ns);
  for (index_t b = 0; b < images.size(); ++b) {
    const auto& img = images[b];
    detail::check_window_args("multiscale_kmeans", img.rows, h, w, 1);
    if (img.cols == 0)
      throw std::invalid_argument("multiscale_kmeans: image " + std::to_string(b) + " has D = 0");
    for (index_t j = 0; j < ns; ++j) {
      if (!p.ks.empty() && (p.ks[j] == 0 || p.ks[j] > img.rows))
        throw std::invalid_argument("multiscale_kmeans: k (" + std::to_string(p.ks[j]) +
                                    ") must be in [1, number of tokens (" +
                                    std::to_string(img.rows) + ")]");
      problems.push_back(scale_problem<T>(img, h, w, p, first_image + b, j));
    }
  }
  // Nested seeds: one k-means++ seeding per image for the largest K (the data checked first, as
  // `kmeans` would: the seeding itself must not see non-finite or overflowing values).
  std::vector<tensor<T, 2>> nested;
  if (p.nested_seeds) {
    const index_t jmax = index_t(std::max_element(p.ks.begin(), p.ks.end()) - p.ks.begin());
    nested.resize(images.size());
    // parallel_for rethrows the error of the lowest failing image (static ranges, slot order).
    parallel_for(images.size(), resolve_threads(p.threads), [&](index_t b, int) {
      const auto& img = images[b];
      const T amax = max_abs_or_nan(img, 1);
      if (std::isnan(amax)) throw_non_finite("multiscale_kmeans", img);
      require(safe_scale_exponent(amax, img.rows, img.cols) == 0,
              "multiscale_kmeans: nested_seeds needs tokens whose squares neither overflow nor "
              "underflow (max |x| = " +
                  std::to_string(double(amax)) + "); normalise them or turn it off");
      nested[b] =
          kmeanspp_init<T>(img, p.ks[jmax], p.seed, ((first_image + b) << 16) | std::uint64_t(jmax),
                           p.local_trials, 1);
    });
    for (index_t b = 0; b < images.size(); ++b)
      for (index_t j = 0; j < ns; ++j)
        problems[b * ns + j].init_centroids =
            matrix_ref<const T>(nested[b].data(), p.ks[j], images[b].cols);
  }
  auto results = kmeans_batch<T>(std::span<const kmeans_problem<T>>(problems), p.threads);
  std::vector<std::vector<scale_clustering<T>>> out(images.size());
  for (index_t b = 0; b < images.size(); ++b) {
    out[b].reserve(ns);
    for (index_t j = 0; j < ns; ++j)
      out[b].push_back(to_scale_clustering<T>(std::move(results[b * ns + j]), p, h, w, j));
  }
  return out;
}

}  // namespace detail

/**
 * Multi-scale K-Means of one image (DESIGN §2.3 steps 1–2).
 * @param tokens Q × D tokens (L2-normalised by the caller), row q = grid cell (q / w, q % w).
 * @param h, w   token grid (h·w = Q).
 * @param p      options; scales run in parallel over `p.threads`.
 * @param image  image index: k-means++ stream (b << 16) | j, so a single call reproduces image b of
 * a batch.
 * @returns one `scale_clustering` per scale, in the order of `p.windows` (or `p.ks`), labels in [0,
 * K').
 * @throws std::invalid_argument when h·w ≠ Q, a window is 0, a K is 0 or exceeds Q, or a token is
 * non-finite.
 */
template <real_scalar T>
std::vector<scale_clustering<T>> multiscale_kmeans(matrix_ref<const T> tokens, index_t h, index_t w,
                                                   const multiscale_options& p = {},
                                                   std::uint64_t image = 0) {
  auto out =
      detail::run_multiscale<T>(std::span<const matrix_ref<const T>>(&tokens, 1), h, w, p, image);
  return std::move(out[0]);
}

/// Multi-scale K-Means of one h × w × D token tensor.
template <real_scalar T>
std::vector<scale_clustering<T>> multiscale_kmeans(const tensor<T, 3>& tokens,
                                                   const multiscale_options& p = {},
                                                   std::uint64_t image = 0) {
  const index_t h = tokens.shape()[0], w = tokens.shape()[1];
  return multiscale_kmeans<T>(matrix_ref<const T>(tokens.data(), h * w, tokens.shape()[2]), h, w, p,
                              image);
}

/**
 * Multi-scale K-Means of B images, every (image, scale) problem on one thread.
 * @param images B views of Q × D tokens, all on the same h × w grid.
 * @returns result[b][j] = multiscale_kmeans(images[b], h, w, p, b)[j], bitwise.
 * @throws std::invalid_argument as `multiscale_kmeans` (the problem's index in the message).
 */
template <real_scalar T>
std::vector<std::vector<scale_clustering<T>>> multiscale_kmeans_batch(
    std::span<const matrix_ref<const T>> images, index_t h, index_t w,
    const multiscale_options& p = {}) {
  return detail::run_multiscale<T>(images, h, w, p, 0);
}

/// Multi-scale K-Means of a B × h × w × D token tensor.
template <real_scalar T>
std::vector<std::vector<scale_clustering<T>>> multiscale_kmeans_batch(
    const tensor<T, 4>& tokens, const multiscale_options& p = {}) {
  const index_t b = tokens.shape()[0], h = tokens.shape()[1], w = tokens.shape()[2],
                d = tokens.shape()[3];
  std::vector<matrix_ref<const T>> images;
  for (index_t i = 0; i < b; ++i) images.emplace_back(tokens.data() + i * h * w * d, h * w, d);
  return multiscale_kmeans_batch<T>(std::span<const matrix_ref<const T>>(images), h, w, p);
}

}  // namespace zss
