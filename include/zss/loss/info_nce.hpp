// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/loss/info_nce.hpp
 * InfoNCE over given queries and keys (DESIGN.md §2.2).
 *
 * Legend: n queries, m keys, D width.
 *
 *     z_ij = ⟨q_i, k_j⟩ / τ,   L = −(1/n) Σ_i log softmax_j(z_i)[y_i],   y_i ∈ [0, m)
 *
 * Queries and keys are used as given: GLM (glm.hpp) passes `g_b = n(ŝ_b)` and the keys
 * `[n(c_1) … n(c_B) ; bank]`, so the logits are cosines over τ. Backward adds
 * `dq_i = (dL/n) Σ_j (p_ij − [j = y_i]) k_j / τ` into `dQ` and, when wanted, the matching
 * `dk_j` into `dK` (keys are teacher constants in GLM; the option is for other uses).
 * A shard of a batch (data parallelism): `batch_queries` = the batch's n makes the loss and
 * gradients this shard's part of the batch's mean.
 * The sizes here are tiny (n = B, m = B + M): plain loops, single-threaded, deterministic.
 * The bank of past CLS tokens that GLM adds to the keys: loss/cls_bank.hpp.
 */
#include <algorithm>
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include "zss/core/aligned.hpp"
#include "zss/core/check.hpp"
#include "zss/core/simd.hpp"
#include "zss/core/tensor.hpp"
#include "zss/nn/normalize.hpp"
#include "zss/nn/softmax.hpp"

namespace zss {

/// Options of InfoNCE.
struct info_nce_options {
  double tau = 0.07;  ///< temperature τ_g (DESIGN §2.2 default 0.07); used as T(tau)
};

/// What `info_nce_backward` needs: the probabilities (n × m, tiny).
template <real_scalar T>
struct info_nce_cache {
  aligned_vector<T> prob;  ///< n × m softmax of the logits
  index_t n = 0, m = 0;
  index_t normalizer = 0;  ///< what the mean divides by: n, or the batch's n for a shard
};

namespace detail {
template <real_scalar T>
void info_nce_check(std::string_view where, matrix_ref<const T> Q, matrix_ref<const T> K,
                    std::span<const int> targets, const info_nce_options& params) {
  check_extent(where, "width of the keys", K.cols, "width of the queries", Q.cols);
  check_extent(where, "number of targets", targets.size(), "number of queries", Q.rows);
  require(T(params.tau) > T(0),
          std::string(where) + ": tau must be > 0, got " + std::to_string(params.tau));
  require(Q.rows == 0 || K.rows > 0, std::string(where) + ": no keys");
  for (index_t i = 0; i < targets.size(); ++i)
    if (targets[i] < 0 || static_cast<index_t>(targets[i]) >= K.rows)
      throw std::invalid_argument(std::string(where) + ": target " + std::to_string(targets[i]) +
                                  " of query " + std::to_string(i) + " is out of range [0, " +
                                  std::to_string(K.rows) + ")");
}
}  // namespace detail

/**
 * Forward (DESIGN §2.2): `loss = −mean_i log softmax_j(⟨q_i, k_j⟩/τ)[y_i]`; 0 when n = 0.
 * @param Q n × D queries; @param K m × D keys; @param targets n indices into the keys.
 * @param batch_queries the batch's number of queries when Q is one shard of it (0 = Q is the
 *        batch); kept in the cache for the backward.
 * @throws std::invalid_argument on mismatched widths or counts, targets out of range, τ ≤ 0,
 *         `batch_queries` in (0, n).
 */
template <real_scalar T>
void info_nce_forward(T& loss, info_nce_cache<T>& cache, const_matrix_ref<T> Q,
                      const_matrix_ref<T> K, std::span<const int> targets,
                      const info_nce_options& params, index_t batch_queries = 0) {
  detail::info_nce_check("info_nce_forward", Q, K, targets, params);
  const index_t n = Q.rows, m = K.rows, D = Q.cols;
  require(batch_queries == 0 || batch_queries >= n,
          "info_nce_forward: the batch's " + std::to_string(batch_queries) +
              " queries are fewer than this shard's " + std::to_string(n));
  cache.n = n, cache.m = m;
  cache.normalizer = batch_queries ? batch_queries : n;
  cache.prob.assign(n * m, T(0));
  double sum = 0;
  const T inv_tau = T(1) / T(params.tau);
  for (index_t i = 0; i < n; ++i) {
    T* z = cache.prob.data() + i * m;
    for (index_t j = 0; j < m; ++j) z[j] = simd::dot(Q.row(i), K.row(j), D) * inv_tau;
    const T zy = z[targets[i]];
    const T lse = softmax_row(z, z, m);
    sum += double(lse) - double(zy);
  }
  loss = n == 0 ? T(0) : T(sum / double(cache.normalizer));
}

/**
 * Backward: **adds** `dloss·∂L/∂Q` into `dQ` and, when `dK` is given, `dloss·∂L/∂K` into it
 * (the mean over the forward's normaliser).
 * @param dQ n × D (adds into); @param dK m × D (adds into) or empty.
 */
template <real_scalar T>
void info_nce_backward(matrix_ref<T> dQ, matrix_ref<T> dK, T dloss, const info_nce_cache<T>& cache,
                       const_matrix_ref<T> Q, const_matrix_ref<T> K, std::span<const int> targets,
                       const info_nce_options& params) {
  detail::info_nce_check("info_nce_backward", Q, K, targets, params);
  check_shape("info_nce_backward", "dQ", dQ, Q.rows, Q.cols);
  if (dK.data) check_shape("info_nce_backward", "dK", dK, K.rows, K.cols);
  check_extent("info_nce_backward", "cached queries", cache.n, "number of queries", Q.rows);
  check_extent("info_nce_backward", "cached keys", cache.m, "number of keys", K.rows);
  const index_t n = Q.rows, m = K.rows, D = Q.cols;
  if (n == 0) return;
  const T c = dloss / (T(cache.normalizer) * T(params.tau));
  for (index_t i = 0; i < n; ++i) {
    const T* p = cache.prob.data() + i * m;
    for (index_t j = 0; j < m; ++j) {
      const T dz = c * (p[j] - (static_cast<index_t>(targets[i]) == j ? T(1) : T(0)));
      simd::axpy(dz, K.row(j), dQ.row(i), D);
      if (dK.data) simd::axpy(dz, Q.row(i), dK.row(j), D);
    }
  }
}

}  // namespace zss
