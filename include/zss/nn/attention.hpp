// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/nn/attention.hpp
 * Single-head scaled dot-product cross-attention with grouped memories, forward and backward
 * (DESIGN.md §2.1; the synthesizer's attention, §2.4).
 *
 * Legend: B groups (images), N query rows, M memory rows, D query width, F memory width,
 * A attention width (rows of W_q), E output width (rows of W_o). Group b owns query rows
 * `[qo[b], qo[b+1])` and memory rows `[mo[b], mo[b+1])` (offsets, B + 1 entries each): its
 * queries attend to its own memory only, because the memory (the teacher's tokens) differs per
 * image.
 *
 *     Q = X W_qᵀ + b_q,  K = Mem W_kᵀ + b_k,  V = Mem W_vᵀ + b_v
 *     S_b = Q_b K_bᵀ / √A,  P_b = softmax_rows(S_b),  O_b = P_b V_b,  Y = O W_oᵀ + b_o
 *
 * Backward (`G = dY`): dO = G W_o; per group dP = dO_b V_bᵀ, dV_b = P_bᵀ dO_b,
 * dS = P ⊙ (dP − rowsum(dP ⊙ P)), dQ_b = dS K_b / √A, dK_b = dSᵀ Q_b / √A; then the three input
 * projections' linear backward. With a single memory row per group the attention is constant
 * (P = 1) and no gradient reaches W_q, b_q, W_k, b_k or X through the attention.
 *
 * Products run through `Eigen::Map` (projections over all rows at once, split in fixed column
 * panels; per-group score products on one thread each): results do not depend on `threads` when
 * Eigen itself is single-threaded (see zss/nn/detail/panel_gemm.hpp).
 */
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include "zss/core/aligned.hpp"
#include "zss/core/check.hpp"
#include "zss/core/eigen_map.hpp"
#include "zss/core/parallel.hpp"
#include "zss/core/tensor.hpp"
#include "zss/nn/linear.hpp"
#include "zss/nn/softmax.hpp"

namespace zss {

/// Views of the four projections: q (A × D), k (A × F), v (A × F), o (E × A), biases optional.
template <real_scalar T>
struct attention_params {
  linear_params<T> q, k, v, o;
};

/// Gradient accumulators of the four projections (adds into; null views skip).
template <real_scalar T>
struct attention_grads {
  linear_grads<T> q, k, v, o;
};

/// What the backward needs (Q, K, V, P, O) and its scratch (dO, dQ, dK, dV, dS).
template <real_scalar T>
struct attention_cache {
  aligned_vector<T> Q;         ///< N × A
  aligned_vector<T> K, V;      ///< M × A
  aligned_vector<T> P;         ///< Σ_b n_b m_b: group b's n_b × m_b probabilities at p_off[b]
  aligned_vector<T> O;         ///< N × A
  std::vector<index_t> p_off;  ///< B + 1 offsets into P
  aligned_vector<T> dO, dQ, dK, dV, dS;  ///< backward scratch
  index_t rows = 0, mem_rows = 0, width = 0;
};

namespace detail {
/// Validates a B + 1 offset array covering [0, total).
inline void check_offsets(std::string_view where, std::string_view name,
                          std::span<const index_t> off, index_t total) {
  require(!off.empty(),
          std::string(where) + ": " + std::string(name) + " needs B + 1 >= 1 entries, got 0");
  require(off.front() == 0, std::string(where) + ": " + std::string(name) + "[0] is " +
                                std::to_string(off.front()) + ", expected 0");
  for (index_t b = 0; b + 1 < off.size(); ++b)
    require(off[b] <= off[b + 1], std::string(where) + ": " + std::string(name) + " decreases at " +
                                      std::to_string(b) + " (" + std::to_string(off[b]) + " > " +
                                      std::to_string(off[b + 1]) + ")");
  require(off.back() == total, std::string(where) + ": " + std::string(name) + " ends at " +
                                   std::to_string(off.back()) + ", expected " +
                                   std::to_string(total) + " rows");
}
}  // namespace detail

/**
 * Forward: grouped cross-attention `Y = Attn(X, Mem)`.
 * @param Y      N × E output (must not alias X).
 * @param cache  filled with Q, K, V, P, O (resized; reuse to avoid allocation).
 * @param X      N × D queries' input (in the synthesizer, LN(p)).
 * @param Mem    M × F memory.
 * @param query_offsets  B + 1 offsets of the groups' query rows (0 … N).
 * @param memory_offsets B + 1 offsets of the groups' memory rows (0 … M); every group with at
 *                       least one query needs at least one memory row.
 * @param params the four projections.
 * @throws std::invalid_argument when shapes or offsets disagree.
 */
template <real_scalar T>
void attention_forward(matrix_ref<T> Y, attention_cache<T>& cache, const_matrix_ref<T> X,
                       const_matrix_ref<T> Mem, std::span<const index_t> query_offsets,
                       std::span<const index_t> memory_offsets, const attention_params<T>& params,
                       int threads = 0) {
  constexpr const char* where = "attention_forward";
  const index_t a = params.q.W.rows;
  check_extent(where, "rows of W_k " + shape_string(params.k.W.shape()), params.k.W.rows,
               "rows of W_q " + shape_string(params.q.W.shape()), a);
  check_extent(where, "rows of W_v " + shape_string(params.v.W.shape()), params.v.W.rows,
               "rows of W_q " + shape_string(params.q.W.shape()), a);
  check_extent(where, "columns of W_o " + shape_string(params.o.W.shape()), params.o.W.cols,
               "rows of W_q " + shape_string(params.q.W.shape()), a);
  require(a > 0, std::string(where) + ": attention width (rows of W_q) must be >= 1");
  check_extent(where, "query groups (query_offsets.size() - 1)", query_offsets.size(),
               "memory groups (memory_offsets.size() - 1)", memory_offsets.size());
  detail::check_offsets(where, "query_offsets", query_offsets, X.rows);
  detail::check_offsets(where, "memory_offsets", memory_offsets, Mem.rows);
  const index_t groups = query_offsets.size() - 1;
  cache.p_off.assign(groups + 1, 0);
  for (index_t b = 0; b < groups; ++b) {
    const index_t nb = query_offsets[b + 1] - query_offsets[b];
    const index_t mb = memory_offsets[b + 1] - memory_offsets[b];
    require(nb == 0 || mb > 0, std::string(where) + ": group " + std::to_string(b) + " has " +
                                   std::to_string(nb) + " queries but no memory rows");
    cache.p_off[b + 1] = cache.p_off[b] + nb * mb;
  }
  const index_t n = X.rows, m = Mem.rows;
  cache.rows = n;
  cache.mem_rows = m;
  cache.width = a;
  cache.Q.resize(n * a);
  cache.K.resize(m * a);
  cache.V.resize(m * a);
  cache.O.resize(n * a);
  cache.P.resize(cache.p_off[groups]);
  matrix_ref<T> Q(cache.Q.data(), n, a), K(cache.K.data(), m, a), V(cache.V.data(), m, a),
      O(cache.O.data(), n, a);
  linear_forward(Q, X, params.q, threads);
  linear_forward(K, Mem, params.k, threads);
  linear_forward(V, Mem, params.v, threads);
  const T scale = T(1) / std::sqrt(T(a));
  parallel_for(groups, threads, [&](index_t b, int) {
    const index_t q0 = query_offsets[b], nb = query_offsets[b + 1] - q0;
    const index_t m0 = memory_offsets[b], mb = memory_offsets[b + 1] - m0;
    if (nb == 0) return;
    matrix_ref<T> Pb(cache.P.data() + cache.p_off[b], nb, mb);
    const auto Qb = eigen_map(matrix_ref<const T>(Q.row(q0), nb, a));
    const auto Kb = eigen_map(matrix_ref<const T>(K.row(m0), mb, a));
    const auto Vb = eigen_map(matrix_ref<const T>(V.row(m0), mb, a));
    eigen_map(Pb).noalias() = scale * (Qb * Kb.transpose());
    for (index_t i = 0; i < nb; ++i) softmax_row(Pb.row(i), Pb.row(i), mb);
    eigen_map(matrix_ref<T>(O.row(q0), nb, a)).noalias() = eigen_map(matrix_ref<const T>(Pb)) * Vb;
  });
  linear_forward(Y, matrix_ref<const T>(O), params.o, threads);
}

/**
 * Backward (DESIGN §2.1): **adds** `∂L/∂X` into `dX`, `∂L/∂Mem` into `dMem` and the projections'
 * gradients into `grads`.
 * @param dX     N × D (adds into), or null data to skip.
 * @param dMem   M × F (adds into), or null data to skip (the synthesizer's memory is constant).
 * @param grads  gradient accumulators of q, k, v, o.
 * @param dY     N × E upstream gradient.
 * @param cache  from the forward (its scratch is overwritten).
 * @param X, Mem, query_offsets, memory_offsets, params  as in the forward.
 */
template <real_scalar T>
void attention_backward(matrix_ref<T> dX, matrix_ref<T> dMem, const attention_grads<T>& grads,
                        const_matrix_ref<T> dY, attention_cache<T>& cache, const_matrix_ref<T> X,
                        const_matrix_ref<T> Mem, std::span<const index_t> query_offsets,
                        std::span<const index_t> memory_offsets, const attention_params<T>& params,
                        int threads = 0) {
  constexpr const char* where = "attention_backward";
  const index_t n = X.rows, m = Mem.rows, a = params.q.W.rows;
  check_extent(where, "cache rows", cache.rows, "rows of X", n);
  check_extent(where, "cache memory rows", cache.mem_rows, "rows of Mem", m);
  check_extent(where, "cache width", cache.width, "rows of W_q", a);
  check_extent(where, "cache groups", cache.p_off.size(), "query_offsets.size()",
               query_offsets.size());
  check_shape(where, "dY", dY, n, params.o.W.rows);
  const index_t groups = query_offsets.size() - 1;
  cache.dO.assign(n * a, T(0));
  cache.dQ.resize(n * a);
  cache.dK.assign(m * a, T(0));
  cache.dV.assign(m * a, T(0));
  cache.dS.resize(cache.P.size());
  matrix_ref<T> dO(cache.dO.data(), n, a), dQ(cache.dQ.data(), n, a), dK(cache.dK.data(), m, a),
      dV(cache.dV.data(), m, a);
  const matrix_ref<const T> Q(cache.Q.data(), n, a), K(cache.K.data(), m, a),
      V(cache.V.data(), m, a);
  linear_backward(dO, grads.o, dY, matrix_ref<const T>(cache.O.data(), n, a), params.o, threads);
  const T scale = T(1) / std::sqrt(T(a));
  parallel_for(groups, threads, [&](index_t b, int) {
    const index_t q0 = query_offsets[b], nb = query_offsets[b + 1] - q0;
    const index_t m0 = memory_offsets[b], mb = memory_offsets[b + 1] - m0;
    if (nb == 0) return;
    const matrix_ref<const T> Pb(cache.P.data() + cache.p_off[b], nb, mb);
    matrix_ref<T> dSb(cache.dS.data() + cache.p_off[b], nb, mb);
    const auto dOb = eigen_map(matrix_ref<const T>(dO.row(q0), nb, a));
    const auto Vb = eigen_map(matrix_ref<const T>(V.row(m0), mb, a));
    const auto Kb = eigen_map(matrix_ref<const T>(K.row(m0), mb, a));
    const auto Qb = eigen_map(matrix_ref<const T>(Q.row(q0), nb, a));
    eigen_map(matrix_ref<T>(dV.row(m0), mb, a)).noalias() = eigen_map(Pb).transpose() * dOb;
    eigen_map(dSb).noalias() = dOb * Vb.transpose();  // dP
    for (index_t i = 0; i < nb; ++i) {
      const T* p = Pb.row(i);
      T* ds = dSb.row(i);
      T dot = 0;
      for (index_t j = 0; j < mb; ++j) dot += ds[j] * p[j];
      for (index_t j = 0; j < mb; ++j) ds[j] = scale * p[j] * (ds[j] - dot);  // scaled dS
    }
    const auto dS = eigen_map(matrix_ref<const T>(dSb));
    eigen_map(matrix_ref<T>(dQ.row(q0), nb, a)).noalias() = dS * Kb;
    eigen_map(matrix_ref<T>(dK.row(m0), mb, a)).noalias() = dS.transpose() * Qb;
  });
  linear_backward(dX, grads.q, matrix_ref<const T>(dQ), X, params.q, threads);
  linear_backward(dMem, grads.k, matrix_ref<const T>(dK), Mem, params.k, threads);
  linear_backward(dMem, grads.v, matrix_ref<const T>(dV), Mem, params.v, threads);
}

}  // namespace zss
