// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/cluster/kmeans.hpp
 * K-Means (Lloyd) for float and double: one problem (`kmeans`) or many independent ones run
 * one per thread (`kmeans_batch`). DESIGN.md §2.3 steps 1–2, §5, §6; STYLE §6, §8, §9, §10.
 *
 * Legend: N points (rows of X), D width, K clusters (K' ≤ K after dropping), B problems.
 *
 * The driver owns the loop; each iteration is one fused `lloyd_step` (distances, argmin,
 * label-change count, centroid sums in one pass). It stops when
 *  - no label changed, or no centroid moved (strict convergence: a fixed point), or
 *  - the centre shift Σ_k‖c_k,new − c_k,old‖² ≤ tol · mean_d var(X[:, d]) (scikit-learn's test), or
 *  - after `max_iter` steps.
 * Unless it stopped strictly, one assignment-only pass makes the labels match the final
 * centroids. The inertia is then computed exactly as Σ‖x − c‖² (fixed-size row chunks summed
 * in order, in double). With `spherical`, centroids (initial ones included) are renormalised
 * after every update.
 *
 * Range: data whose squared distances or centroid sums could overflow T (max|x| above
 * √(max_T / (16·max(N, D))), e.g. ±3e38 in float) or whose squares would be subnormal is
 * clustered as X·2^−e (exact: a power of two) and the centroids scaled back, so any finite
 * input is clustered right; the inertia is then recomputed from X in double (finite for any
 * float input; for double input beyond ≈ 1e154 it may exceed double's range and be +∞), the
 * objective history is the scaled one's times 2^2e (with `spherical`: the scaled data's).
 * Coordinates more than ~2^150 (float) below max|x| may flush to zero in the scaled copy: they
 * cannot move a label next to such values. Data within the range (any normalised embedding)
 * is never copied or scaled.
 *
 * Determinism: same data, params and thread count ⇒ bitwise the same result. k-means++ seeds,
 * labels given centroids and the inertia do not depend on the thread count; the centroid sums
 * are added in thread order, so different thread counts can differ in the last bits (and, on
 * near-ties, in a later label). `kmeans_batch` runs every problem single-threaded, so its
 * results do not depend on its thread count or on the order in which problems are picked up.
 */
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <map>
#include <numeric>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "zss/cluster/empty_cluster.hpp"
#include "zss/cluster/hamerly.hpp"
#include "zss/cluster/kmeans_options.hpp"
#include "zss/cluster/kmeanspp_init.hpp"
#include "zss/cluster/lloyd_step.hpp"
#include "zss/cluster/window_seeds.hpp"
#include "zss/core/aligned.hpp"
#include "zss/core/check.hpp"
#include "zss/core/parallel.hpp"
#include "zss/core/simd.hpp"
#include "zss/core/tensor.hpp"

namespace zss {

namespace detail {

/// mean over d of the (population) variance of column d of X, in double.
template <real_scalar T>
double mean_variance(matrix_ref<const T> X, int threads) {
  const index_t n = X.rows, d = X.cols;
  threads = static_cast<int>(
      std::min<index_t>(static_cast<index_t>(threads), std::max<index_t>(1, n / 1024)));
  std::vector<std::vector<double>> acc(static_cast<std::size_t>(threads),
                                       std::vector<double>(2 * d, 0.0));
  parallel_for(static_cast<index_t>(threads), threads, [&](index_t t, int) {
    const auto [b, e] = static_chunk(n, threads, static_cast<int>(t));
    double* s = acc[t].data();
    double* s2 = s + d;
    for (index_t i = b; i < e; ++i) {
      const T* x = X.row(i);
      for (index_t j = 0; j < d; ++j) {
        const double v = static_cast<double>(x[j]);
        s[j] += v;
        s2[j] += v * v;
      }
    }
  });
  double total = 0;
  for (index_t j = 0; j < d; ++j) {
    double s = 0, s2 = 0;
    for (const auto& a : acc) s += a[j], s2 += a[d + j];
    const double mean = s / static_cast<double>(n);
    total += std::max(0.0, s2 / static_cast<double>(n) - mean * mean);
  }
  return total / static_cast<double>(d);
}

/// Σ_i ‖x_i − c_{label_i}‖², exact, in chunks of 256 rows summed in order (thread-independent).
template <real_scalar T>
double exact_inertia(matrix_ref<const T> X, matrix_ref<const T> C,
                     std::span<const std::int32_t> labels, int threads) {
  return parallel_reduce(X.rows, 256, threads, 0.0, [&](index_t b, index_t e) {
    double s = 0;
    for (index_t i = b; i < e; ++i)
      s += static_cast<double>(
          simd::squared_distance(X.row(i), C.row(static_cast<index_t>(labels[i])), X.cols));
    return s;
  });
}

template <real_scalar T>
void normalize_centroids(matrix_ref<T> C) {
  for (index_t c = 0; c < C.rows; ++c) {
    const T nrm = std::sqrt(simd::squared_norm(C.row(c), C.cols));
    if (nrm > T(0)) simd::scale(T(1) / nrm, C.row(c), C.cols);
  }
}

/// max |x| over X in one vectorised pass, or NaN when X holds a NaN or ±∞ (x − x is 0 for
/// finite x and NaN otherwise, so one sum per row block decides). Thread-independent.
template <real_scalar T>
T max_abs_or_nan(matrix_ref<const T> X, int threads) {
  constexpr index_t W = simd::width<T>, chunk = 256;
  const index_t d = X.cols, chunks = (X.rows + chunk - 1) / chunk;
  std::vector<T> part(chunks, T(0));
  parallel_for(chunks, threads, [&](index_t c, int) {
    simd::batch<T> acc(T(0)), big(T(0));
    T tail = 0, tail_big = 0;
    for (index_t i = c * chunk; i < std::min(X.rows, (c + 1) * chunk); ++i) {
      const T* x = X.row(i);
      index_t j = 0;
      for (; j + W <= d; j += W) {
        const auto v = simd::batch<T>::load_unaligned(x + j);
        acc += v - v;
        big = xsimd::max(big, xsimd::abs(v));
      }
      for (; j < d; ++j) tail += x[j] - x[j], tail_big = std::max(tail_big, std::abs(x[j]));
    }
    part[c] = simd::reduce_add(acc) + tail == T(0) ? std::max(simd::reduce_max(big), tail_big)
                                                   : std::numeric_limits<T>::quiet_NaN();
  });
  T m = 0;
  for (T v : part)
    m = std::isnan(v) || std::isnan(m) ? std::numeric_limits<T>::quiet_NaN() : std::max(m, v);
  return m;
}

/// Throws naming the first (row, column) of X that is NaN or ±∞.
template <real_scalar T>
[[noreturn]] void throw_non_finite(std::string_view where, matrix_ref<const T> X) {
  for (index_t i = 0; i < X.rows; ++i)
    for (index_t j = 0; j < X.cols; ++j)
      if (!std::isfinite(X(i, j))) {
        std::ostringstream os;
        os << where << ": X contains a non-finite value (" << X(i, j) << ") at (" << i << ", " << j
           << ")";
        throw std::invalid_argument(os.str());
      }
  throw std::logic_error(std::string(where) + ": non-finite value not found");
}

/// Throws naming the first (row, column) of X that is NaN or ±∞.
template <real_scalar T>
void check_finite_rows(std::string_view where, matrix_ref<const T> X, int threads) {
  if (std::isnan(max_abs_or_nan(X, threads))) throw_non_finite(where, X);
}

/**
 * The power of two e such that X · 2^−e is safe to cluster in T: 0 (no scaling) while
 * max|x| ≤ √(max_T / (16·max(N, D))) — then ‖x‖², ‖x − c‖² ≤ 4D·max|x|² and the centroid sums
 * ≤ N·max|x| cannot overflow — and max|x| ≥ √(min_normal_T) (squares stay normal numbers);
 * otherwise ilogb(max|x|), which brings max|x| into [1, 2). Scaling by a power of two is exact
 * (values more than 2^(bits of the exponent range) below max|x| may flush to zero; they cannot
 * change a squared distance that large).
 */
template <real_scalar T>
int safe_scale_exponent(T max_abs, index_t n, index_t d) {
  if (!(max_abs > T(0)) || !std::isfinite(max_abs)) return 0;
  const double hi = std::sqrt(double(std::numeric_limits<T>::max()) /
                              (16.0 * double(std::max<index_t>({n, d, 1}))));
  const double lo = std::sqrt(double(std::numeric_limits<T>::min()));
  if (double(max_abs) <= hi && double(max_abs) >= lo) return 0;
  return std::ilogb(max_abs);
}

/// X · 2^−e into a new N × D tensor.
template <real_scalar T>
tensor<T, 2> scaled_copy(matrix_ref<const T> X, int e) {
  tensor<T, 2> out = tensor<T, 2>::from_shape({X.rows, X.cols});
  for (index_t i = 0; i < X.rows; ++i)
    for (index_t j = 0; j < X.cols; ++j) out(i, j) = std::ldexp(X(i, j), -e);
  return out;
}

inline void check_data(std::string_view where, index_t rows, index_t cols) {
  if (rows == 0 || cols == 0)
    throw std::invalid_argument(std::string(where) + ": X has shape " + shape_string({rows, cols}) +
                                ", expected at least one point and one feature");
}

/// Lloyd iterations from `C` (K × D, consumed). Arguments already validated.
template <real_scalar T>
kmeans_result<T> lloyd_fit(const_matrix_ref<T> X, tensor<T, 2> C, const kmeans_options& p,
                           int threads, lloyd_workspace<T>& ws, std::span<const T> x_norms = {}) {
  const index_t n = X.rows, d = X.cols;
  index_t k = C.shape()[0];
  const bool reseed = p.empty == empty_cluster_policy::reseed_farthest;
  tensor<T, 2> Cn = tensor<T, 2>::from_shape({k, d});
  std::vector<std::int32_t> labels(n, -1);
  std::vector<index_t> counts(k, 0);
  std::vector<T> dist(reseed ? n : 0);
  const double tol_abs = p.tol > 0 ? p.tol * mean_variance(X, threads) : 0.0;
  ws.prepare(X, k, threads, x_norms);
  hamerly_state<T> bounds;
  if (p.prune) bounds.prepare(X, k, ws);
  if (p.spherical) normalize_centroids(matrix_ref<T>(C.data(), k, d));

  kmeans_result<T> r;
  r.objective.reserve(std::min<index_t>(p.max_iter, 1024));  // max_iter may be "unbounded"
  r.changed.reserve(std::min<index_t>(p.max_iter, 1024));
  bool strict = false;
  for (index_t it = 0; it < p.max_iter; ++it) {
    matrix_ref<T> Cm(C.data(), k, d), Cnm(Cn.data(), k, d);
    const auto st =
        p.prune ? bounds.step(X, Cm, labels, Cnm, std::span<index_t>(counts.data(), k))
                : lloyd_step<T>(X, Cm, labels, Cnm, std::span<index_t>(counts.data(), k), dist, ws);
    r.distances_computed += p.prune ? bounds.computed() : n * k;
    r.objective.push_back(st.objective);
    r.changed.push_back(st.changed);
    r.iterations = it + 1;
    const auto empties = static_cast<index_t>(
        std::count(counts.begin(), counts.begin() + static_cast<std::ptrdiff_t>(k), index_t(0)));
    index_t moved = 0;
    if (empties > 0) {
      r.empty_clusters += empties;
      if (reseed) {
        if (p.prune) {  // the distances the re-seeding needs (labels stay: they are Lloyd's)
          lloyd_assign<T>(X, Cm, labels, dist, ws);
          r.distances_computed += n * k;
        }
        moved =
            reseed_empty_clusters<T>(X, Cnm, labels, std::span<index_t>(counts.data(), k), dist);
        if (p.prune && moved > 0) bounds.invalidate();
      } else {
        k = drop_empty_clusters<T>(Cnm, labels, std::span<index_t>(counts.data(), k), Cm);
        Cm.rows = Cnm.rows = k;
        if (p.prune) bounds.invalidate();  // per-centroid bounds follow the old numbering
      }
    }
    if (p.spherical) normalize_centroids(Cnm);
    if (p.prune) bounds.moved(Cm, Cnm);
    double shift = 0;
    for (index_t c = 0; c < k; ++c)
      shift += static_cast<double>(simd::squared_distance(Cnm.row(c), Cm.row(c), d));
    // Centroids that did not move reproduce this step's labels exactly: as strict as no change.
    strict = (st.changed == 0 && moved == 0) || shift == 0;
    std::swap(C, Cn);
    if (strict || shift <= tol_abs) {
      r.converged = true;
      break;
    }
  }
  matrix_ref<T> Cm(C.data(), k, d);
  if (!strict) {
    lloyd_assign<T>(X, Cm, labels, {}, ws);
    r.distances_computed += n * k;
    if (!reseed) {
      std::fill(counts.begin(), counts.end(), index_t(0));
      for (auto l : labels) ++counts[static_cast<index_t>(l)];
      const index_t kept = drop_empty_clusters<T>(Cm, labels, std::span<index_t>(counts.data(), k));
      r.empty_clusters += k - kept;
      k = kept;
      Cm.rows = k;
    }
  }
  r.strict_convergence = strict;
  r.inertia = exact_inertia<T>(X, Cm, labels, threads);
  r.centroids = tensor<T, 2>::from_shape({k, d});
  std::copy_n(C.data(), k * d, r.centroids.data());
  r.labels = std::move(labels);
  return r;
}

template <real_scalar T>
kmeans_result<T> fit_in_range(const_matrix_ref<T> X, const const_matrix_ref<T>* C0,
                              const kmeans_options& p, int threads, lloyd_workspace<T>& ws,
                              std::span<const T> x_norms = {});

/// Validates, brings the data into a safe range, seeds (kmeans++ or window), then fits. `C0`
/// non-null for `given`; `scanned` non-null = `max_abs_or_nan(X)` already known, and `x_norms`
/// (N values, or empty) X's squared row norms (kmeans_batch computes both once for the problems
/// that share one data set).
template <real_scalar T>
kmeans_result<T> fit(const_matrix_ref<T> X, const const_matrix_ref<T>* C0, const kmeans_options& p,
                     int threads, lloyd_workspace<T>& ws, const T* scanned = nullptr,
                     std::span<const T> x_norms = {}) {
  constexpr std::string_view where = "kmeans";
  check_params(where, p);
  check_data(where, X.rows, X.cols);
  // One pass finds non-finite values and the range; data whose squares could overflow (or
  // underflow) is clustered as X · 2^−e, and the result scaled back exactly.
  T amax = scanned ? *scanned : max_abs_or_nan(X, threads);
  if (p.check_finite && std::isnan(amax)) throw_non_finite(where, X);
  if (C0) {
    const T cmax = max_abs_or_nan(*C0, 1);
    amax = std::isnan(cmax) ? cmax : std::max(amax, cmax);
  }
  if (const int e = safe_scale_exponent(amax, X.rows, X.cols); e != 0) {
    const tensor<T, 2> Xs = scaled_copy(X, e);
    tensor<T, 2> C0s;
    const_matrix_ref<T> C0m;
    if (C0) C0s = scaled_copy(*C0, e), C0m = as_matrix(C0s);
    kmeans_result<T> r = fit_in_range<T>(as_matrix(Xs), C0 ? &C0m : nullptr, p, threads, ws);
    if (!p.spherical) {  // unit centroids and labels (argmax x·c) do not depend on the scale
      for (auto& c : r.centroids) c = std::ldexp(c, e);
      for (auto& o : r.objective) o = std::ldexp(o, 2 * e);
    }
    // The inertia from X itself, in double: exact for coordinates far below max|x| too (the
    // scaled copy may have flushed their differences to zero).
    r.inertia = 0;
    for (index_t i = 0; i < X.rows; ++i) {
      const T* c = r.centroids.data() + index_t(r.labels[i]) * X.cols;
      for (index_t j = 0; j < X.cols; ++j) {
        const double diff = double(X(i, j)) - double(c[j]);
        r.inertia += diff * diff;
      }
    }
    return r;
  }
  return fit_in_range<T>(X, C0, p, threads, ws, x_norms);  // X itself: its norms hold
}

/// `fit` on data whose range is safe (`safe_scale_exponent` is 0), X already checked.
template <real_scalar T>
kmeans_result<T> fit_in_range(const_matrix_ref<T> X, const const_matrix_ref<T>* C0,
                              const kmeans_options& p, int threads, lloyd_workspace<T>& ws,
                              std::span<const T> x_norms) {
  constexpr std::string_view where = "kmeans";
  tensor<T, 2> C;
  if (C0) {
    const auto& c0 = *C0;
    check_k(where, c0.rows, X.rows);
    check_extent(where, "initial centroid width", c0.cols, "data width", X.cols);
    C = tensor<T, 2>::from_shape({c0.rows, c0.cols});
    for (index_t c = 0; c < c0.rows; ++c) std::copy_n(c0.row(c), c0.cols, C.data() + c * c0.cols);
    if (p.check_finite) check_finite(where, "initial centroids", C);
  } else if (p.init == kmeans_init::kmeanspp) {
    check_k(where, p.k, X.rows);
    C = kmeanspp_init<T>(X, p.k, p.seed, p.stream, p.local_trials, threads, x_norms);
  } else if (p.init == kmeans_init::window) {
    if (p.grid_h == 0 || p.grid_w == 0)
      throw std::invalid_argument(
          "kmeans: window init needs the token grid (grid_h, grid_w), got " +
          std::to_string(p.grid_h) + " x " + std::to_string(p.grid_w));
    C = window_seeds<T>(X, p.grid_h, p.grid_w, p.window);
  } else {
    throw std::invalid_argument(
        "kmeans: init 'given' needs initial centroids: call kmeans(X, C0, params)");
  }
  return lloyd_fit<T>(X, std::move(C), p, threads, ws, x_norms);
}

}  // namespace detail

/**
 * K-Means of X seeded by `p.init` (k-means++ with `p.k` seeds, or window seeds of the
 * `p.grid_h × p.grid_w` grid).
 * @param X N × D points (any row stride).
 * @param p options; `p.threads` threads.
 * @returns centroids (K' × D), labels (N), inertia, iterations, convergence, objective per step.
 * @throws std::invalid_argument on an empty X, K = 0, K > N ("kmeans: k (9) exceeds the number of
 *         points (7)"), a grid that does not match N, `init == given`, non-finite X (with
 *         `check_finite`), or bad numbers in `p`.
 */
template <real_scalar T>
kmeans_result<T> kmeans(matrix_ref<const T> X, const kmeans_options& p) {
  const int threads = resolve_threads(p.threads);
  lloyd_workspace<T> ws;
  return detail::fit<T>(X, nullptr, p, threads, ws);
}

/**
 * K-Means of X from given centroids (`p.init` and `p.k` are ignored: K = rows of C0).
 * @param X  N × D points.
 * @param C0 K × D initial centroids (1 ≤ K ≤ N).
 * @throws std::invalid_argument as above, and when C0's width differs from D or C0 is not finite.
 */
template <real_scalar T>
kmeans_result<T> kmeans(matrix_ref<const T> X, matrix_ref<const T> C0, const kmeans_options& p) {
  const int threads = resolve_threads(p.threads);
  lloyd_workspace<T> ws;
  return detail::fit<T>(X, &C0, p, threads, ws);
}

/// `kmeans` on an N × D xtensor.
template <real_scalar T>
kmeans_result<T> kmeans(const tensor<T, 2>& X, const kmeans_options& p) {
  return kmeans<T>(as_matrix(X), p);
}

/// `kmeans` on an N × D xtensor from K × D given centroids.
template <real_scalar T>
kmeans_result<T> kmeans(const tensor<T, 2>& X, const tensor<T, 2>& C0, const kmeans_options& p) {
  return kmeans<T>(as_matrix(X), as_matrix(C0), p);
}

/// `kmeans` on an h × w × D token grid: N = h·w, and the grid of window seeds is the tensor's.
template <real_scalar T>
kmeans_result<T> kmeans(const tensor<T, 3>& X, kmeans_options p) {
  p.grid_h = X.shape()[0];
  p.grid_w = X.shape()[1];
  return kmeans<T>(matrix_ref<const T>(X.data(), p.grid_h * p.grid_w, X.shape()[2]), p);
}

/**
 * One independent problem of a batch: its own data, K (or seeds) and seed.
 * @tparam T float or double.
 */
template <real_scalar T>
struct kmeans_problem {
  matrix_ref<const T> data;  ///< N × D points
  kmeans_options params;     ///< options (`params.threads` is ignored: one thread per problem)
  matrix_ref<const T>
      init_centroids;  ///< K × D initial centroids, used when it has rows (else `params.init`)
};

/**
 * Runs B independent K-Means problems, one per thread (each single-threaded inside). Problems
 * on the same data view (same pointer, shape and stride: the scales of one image) form a group:
 * its finiteness / range scan runs once, and its problems are handed out back to back, so the
 * data stays in cache; groups go the most expensive first, and so do problems within a group.
 * Result b is bitwise what `kmeans` gives for problem b with `threads = 1`, whatever `threads`
 * is.
 * @param problems B problems.
 * @param threads  threads (0 = OpenMP default).
 * @returns B results, in the order of `problems`.
 * @throws std::invalid_argument from the first (by index) invalid problem, its index in the
 * message.
 */
template <real_scalar T>
std::vector<kmeans_result<T>> kmeans_batch(std::span<const kmeans_problem<T>> problems,
                                           int threads = 0) {
  threads = resolve_threads(threads);
  const index_t b = problems.size();
  std::vector<kmeans_result<T>> results(b);
  std::vector<std::exception_ptr> errors(b);
  auto cost = [&](index_t i) {
    const auto& pr = problems[i];
    const index_t k = pr.init_centroids.rows ? pr.init_centroids.rows : pr.params.k;
    return pr.data.rows * pr.data.cols * std::max<index_t>(k, 1) *
           std::min<index_t>(pr.params.max_iter, 100);
  };
  // Groups of problems on the same data view, numbered by first appearance.
  std::vector<index_t> group(b), first_of;  // problem → group; group → its first problem
  {
    std::map<std::tuple<const void*, index_t, index_t, index_t>, index_t> seen;
    for (index_t i = 0; i < b; ++i) {
      const auto& d = problems[i].data;
      const auto [it, added] = seen.try_emplace(
          std::make_tuple(static_cast<const void*>(d.data), d.rows, d.cols, d.stride),
          first_of.size());
      if (added) first_of.push_back(i);
      group[i] = it->second;
    }
  }
  const index_t groups = first_of.size();
  std::vector<index_t> group_cost(groups, 0);
  for (index_t i = 0; i < b; ++i) group_cost[group[i]] += cost(i);
  std::vector<index_t> order(b);
  std::iota(order.begin(), order.end(), index_t(0));
  std::stable_sort(order.begin(), order.end(), [&](index_t a, index_t c) {
    if (group[a] != group[c])
      return group_cost[group[a]] != group_cost[group[c]]
                 ? group_cost[group[a]] > group_cost[group[c]]
                 : group[a] < group[c];
    return cost(a) > cost(c);
  });
  // One scan per group (a problem with bad data still fails alone, in `fit`, as before). The
  // scan is thread-independent, so every problem sees the value its own scan would give. The
  // squared row norms too, once per group instead of twice per problem (k-means++ and the Lloyd
  // workspace): the same `simd::squared_norm` values, so the results are bitwise unchanged. Only
  // for finite data whose squares cannot overflow: other data's fits run on a scaled copy and
  // compute that copy's norms (`fit`).
  std::vector<T> scanned(groups);
  std::vector<aligned_vector<T>> norms(groups);
  parallel_for(groups, threads, [&](index_t g, int) {
    const auto& d = problems[first_of[g]].data;
    scanned[g] = d.rows > 0 && d.cols > 0 ? detail::max_abs_or_nan(d, 1) : T(0);
    if (d.rows > 0 && d.cols > 0 && !std::isnan(scanned[g]) &&
        detail::safe_scale_exponent(scanned[g], d.rows, d.cols) == 0) {
      norms[g].resize(d.rows);
      detail::row_squared_norms(d, 0, d.rows, norms[g].data());
    }
  });
  std::atomic<index_t> next{0};
  const int used =
      static_cast<int>(std::min<index_t>(static_cast<index_t>(threads), std::max<index_t>(b, 1)));
  auto worker = [&] {
    lloyd_workspace<T> ws;
    for (index_t j = next++; j < b; j = next++) {
      const index_t i = order[j];
      try {
        const auto& pr = problems[i];
        const auto& xn = norms[group[i]];
        results[i] = detail::fit<T>(pr.data, pr.init_centroids.rows ? &pr.init_centroids : nullptr,
                                    pr.params, 1, ws, &scanned[group[i]],
                                    std::span<const T>(xn.data(), xn.size()));
      } catch (...) {
        errors[i] = std::current_exception();
      }
    }
  };
  if (used <= 1) {
    worker();
  } else {
#pragma omp parallel num_threads(used)
    worker();
  }
  for (index_t i = 0; i < b; ++i) {
    if (!errors[i]) continue;
    try {
      std::rethrow_exception(errors[i]);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("kmeans_batch: problem " + std::to_string(i) + ": " + e.what());
    }
  }
  return results;
}

/// `kmeans_batch` over a vector of problems.
template <real_scalar T>
std::vector<kmeans_result<T>> kmeans_batch(const std::vector<kmeans_problem<T>>& problems,
                                           int threads = 0) {
  return kmeans_batch<T>(std::span<const kmeans_problem<T>>(problems), threads);
}

}  // namespace zss
