// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/clip/attention_pool.hpp
 * CLIP-ResNet's attention-pooling head and MaskCLIP's dense tokens from the same weights,
 * forward and backward (DESIGN.md §4, the learned teacher).
 *
 * Legend: B images, Q grid tokens per image (h·w), C token width (the trunk's output),
 * A attention width, D embedding width; image b's tokens `x_b1 … x_bQ`, its memory
 * `mem_b = [m_b ; x_b1 … x_bQ]` (Q + 1 rows, j = 0 the mean token).
 *
 * Pooling (CLIP's `AttentionPool2d` with one head and no positional embedding; query = the mean
 * token):
 *
 *     m_b = (1/Q) Σ_q x_bq,    q_b = W_q m_b + b_q                                     (A)
 *     e_bj = ⟨q_b, W_k mem_bj + b_k⟩/√A,   a_b = softmax_j(e_b)
 *     y_b = W_o (W_v (Σ_j a_bj mem_bj) + b_v) + b_o                                     (D)
 *
 * computed as CLIP's formula reads but in the cheaper order: `e_bj = ⟨k̃_b, mem_bj⟩/√A` with
 * `k̃_b = W_kᵀ q_b` (C), and the value projection applied once to the pooled memory
 * `u_b = Σ_j a_bj mem_bj` (the weights sum to 1, so `Σ_j a_bj (W_v mem_bj + b_v) = W_v u_b + b_v`).
 * That is O(Q·C) per image instead of O(Q·C·A). The key bias adds ⟨q_b, b_k⟩ to every score of
 * image b and cancels in the softmax: it is left out (it would never receive a gradient).
 *
 * Dense tokens (MaskCLIP): the value and output projections applied to every grid token, the
 * query/key path skipped: `z_bq = W_o (W_v x_bq + b_v) + b_o`. Then `y_b = Σ_j a_bj z_bj`
 * exactly (z of the mean token included): the CLS embedding is an attention-weighted mean of the
 * dense tokens, which is why MaskCLIP's tokens live in the text space at all.
 *
 * Backward of the pooling (adds into every gradient): through o and v (nn/linear.hpp) to du_b;
 * `da_bj = ⟨du_b, mem_bj⟩`, `de_bj = a_bj (da_bj − Σ_j' a_bj' da_bj')`;
 * `dmem_bj += a_bj du_b + de_bj k̃_b/√A`, `dk̃_b = Σ_j de_bj mem_bj/√A`;
 * `dq_b += W_k dk̃_b`, `dW_k += q_b dk̃_bᵀ`; through q (nn/linear.hpp) to dm_b; finally
 * `dx_bq += dmem_b(1+q) + (dm_b + dmem_b0)/Q`.
 *
 * Our decisions: one head (the toy's C = 64 is one CLIP head's width); no positional embedding
 * (captions say nothing about positions, and a positional term would add a position-dependent
 * bias to every dense token).
 *
 * Threads: per-image work runs in parallel over images, the B-row projections through
 * nn/linear.hpp and the two W_k products as one Eigen product each. With Eigen single-threaded
 * (`zss::eigen_single_thread_guard`, as every caller in zss holds) every output and gradient is
 * bitwise independent of `threads`.
 */
#include <cmath>
#include <string>
#include <vector>

#include "zss/core/aligned.hpp"
#include "zss/core/check.hpp"
#include "zss/core/eigen_map.hpp"
#include "zss/core/parallel.hpp"
#include "zss/core/param_buffer.hpp"
#include "zss/core/random.hpp"
#include "zss/core/simd.hpp"
#include "zss/core/tensor.hpp"
#include "zss/nn/linear.hpp"
#include "zss/nn/softmax.hpp"

namespace zss::clip {

/// Views of the head's parameters: q (A × C, bias A), k (A × C, no bias), v (A × C, bias A),
/// o (D × A, bias D).
template <real_scalar T>
struct attention_pool_params {
  linear_params<T> q;
  matrix_ref<const T> k;
  linear_params<T> v, o;
};

/// Gradient accumulators of the head (add into; null views skip).
template <real_scalar T>
struct attention_pool_grads {
  linear_grads<T> q;
  matrix_ref<T> dk;
  linear_grads<T> v, o;
};

/// Ids of the head's tensors in a `param_buffer`.
struct attention_pool_ids {
  index_t in_width = 0, attn_width = 0, dim = 0;  ///< C, A, D
  index_t q_w = 0, q_b = 0, k_w = 0, v_w = 0, v_b = 0, o_w = 0, o_b = 0;

  /// Declares the seven tensors in `buf` (before `allocate()`) behind `prefix`.
  template <real_scalar T>
  static attention_pool_ids declare(param_buffer<T>& buf, index_t in_width, index_t attn_width,
                                    index_t dim, const std::string& prefix = "image.pool.") {
    require(in_width > 0 && attn_width > 0 && dim > 0,
            "clip::attention_pool_ids: widths must be >= 1");
    attention_pool_ids ids;
    ids.in_width = in_width, ids.attn_width = attn_width, ids.dim = dim;
    const index_t C = in_width, A = attn_width;
    ids.q_w = buf.add(prefix + "q.weight", {A, C});
    ids.q_b = buf.add(prefix + "q.bias", {A});
    ids.k_w = buf.add(prefix + "k.weight", {A, C});
    ids.v_w = buf.add(prefix + "v.weight", {A, C});
    ids.v_b = buf.add(prefix + "v.bias", {A});
    ids.o_w = buf.add(prefix + "o.weight", {dim, A});
    ids.o_b = buf.add(prefix + "o.bias", {dim});
    return ids;
  }
  template <real_scalar T>
  attention_pool_params<T> params(const param_buffer<T>& buf) const {
    const index_t C = in_width, A = attn_width;
    return {{{buf.value(q_w), A, C}, buf.value(q_b)},
            {buf.value(k_w), A, C},
            {{buf.value(v_w), A, C}, buf.value(v_b)},
            {{buf.value(o_w), dim, A}, buf.value(o_b)}};
  }
  template <real_scalar T>
  attention_pool_grads<T> grads(param_buffer<T>& buf) const {
    const index_t C = in_width, A = attn_width;
    return {{{buf.grad(q_w), A, C}, buf.grad(q_b)},
            {buf.grad(k_w), A, C},
            {{buf.grad(v_w), A, C}, buf.grad(v_b)},
            {{buf.grad(o_w), dim, A}, buf.grad(o_b)}};
  }
  /// CLIP's init: weights N(0, 1/fan_in) (q, k, v: C; o: A), biases 0. Weight i of (q, k, v, o)
  /// draws from stream `stream + i`.
  template <real_scalar T>
  void init(param_buffer<T>& buf, std::uint64_t seed, std::uint64_t stream = 0) const {
    const index_t ws[4] = {q_w, k_w, v_w, o_w};
    for (index_t i = 0; i < 4; ++i) {
      const auto& e = buf.entries()[ws[i]];
      const double sd = 1.0 / std::sqrt(double(e.shape[1]));
      rng g(seed, stream + i);
      T* w = buf.value(ws[i]);
      for (index_t j = 0; j < e.size; ++j) w[j] = T(sd * g.normal<double>());
    }
    for (index_t b : {q_b, v_b, o_b}) std::fill_n(buf.value(b), buf.entries()[b].size, T(0));
  }
};

/// What the pooling's backward needs, and its scratch.
template <real_scalar T>
struct attention_pool_cache {
  aligned_vector<T> mean;                                     ///< B × C mean tokens m_b
  aligned_vector<T> query;                                    ///< B × A q_b
  aligned_vector<T> kq;                                       ///< B × C k̃_b = W_kᵀ q_b
  aligned_vector<T> attn;                                     ///< B × (Q + 1) softmax weights a_b
  aligned_vector<T> pooled;                                   ///< B × C u_b
  aligned_vector<T> value;                                    ///< B × A W_v u_b + b_v
  aligned_vector<T> dvalue, dpooled, dkq, dquery, dmean, de;  ///< backward scratch
  index_t batch = 0, tokens = 0;
};

namespace detail {
template <real_scalar T>
void attention_pool_check(std::string_view where, const_matrix_ref<T> X, index_t Q,
                          const attention_pool_params<T>& p) {
  require(Q > 0 && X.rows % Q == 0, std::string(where) + ": X has " + std::to_string(X.rows) +
                                        " rows, not a multiple of Q = " + std::to_string(Q));
  const index_t C = X.cols, A = p.q.W.rows;
  check_extent(where, "columns of W_q", p.q.W.cols, "token width C", C);
  check_shape(where, "W_k", p.k, A, C);
  check_shape(where, "W_v", p.v.W, A, C);
  check_extent(where, "columns of W_o", p.o.W.cols, "attention width A", A);
}
/// Row j of image b's memory: the mean token for j = 0, else token j − 1.
template <real_scalar T>
const T* memory_row(const_matrix_ref<T> X, const T* mean, index_t b, index_t Q, index_t j) {
  return j == 0 ? mean : X.row(b * Q + j - 1);
}
}  // namespace detail

/**
 * Forward: the pooled (CLS) output of every image.
 * @param Y      B × D output (not normalised).
 * @param cache  filled for backward.
 * @param X      B·Q × C grid tokens, image b's at rows [b·Q, (b+1)·Q).
 * @param Q      tokens per image (≥ 1).
 * @param p      the head's projections (attention_pool_ids::params).
 * @param threads 0 = OpenMP default; Y does not depend on it.
 * @throws std::invalid_argument on mismatched shapes.
 */
template <real_scalar T>
void attention_pool_forward(matrix_ref<T> Y, attention_pool_cache<T>& cache, const_matrix_ref<T> X,
                            index_t Q, const attention_pool_params<T>& p, int threads = 0) {
  eigen_single_thread_guard guard;  // one thread pool: ours (nn/detail/panel_gemm.hpp)
  constexpr const char* where = "clip::attention_pool_forward";
  detail::attention_pool_check(where, X, Q, p);
  const index_t B = X.rows / Q, C = X.cols, A = p.q.W.rows, D = p.o.W.rows;
  check_shape(where, "Y", Y, B, D);
  cache.batch = B, cache.tokens = Q;
  cache.mean.assign(B * C, T(0));
  cache.query.resize(B * A);
  cache.kq.resize(B * C);
  cache.attn.resize(B * (Q + 1));
  cache.pooled.assign(B * C, T(0));
  cache.value.resize(B * A);
  parallel_for(B, threads, [&](index_t b, int) {
    T* m = cache.mean.data() + b * C;
    for (index_t q = 0; q < Q; ++q) simd::axpy(T(1), X.row(b * Q + q), m, C);
    simd::scale(T(1) / T(Q), m, C);
  });
  linear_forward(matrix_ref<T>(cache.query.data(), B, A),
                 matrix_ref<const T>(cache.mean.data(), B, C), p.q, threads);
  // k̃ = Qm W_k (B × A times A × C)
  eigen_map(matrix_ref<T>(cache.kq.data(), B, C)).noalias() =
      eigen_map(matrix_ref<const T>(cache.query.data(), B, A)) * eigen_map(p.k);
  const T scale = T(1) / std::sqrt(T(A));
  parallel_for(B, threads, [&](index_t b, int) {
    const T* kq = cache.kq.data() + b * C;
    const T* m = cache.mean.data() + b * C;
    T* a = cache.attn.data() + b * (Q + 1);
    for (index_t j = 0; j <= Q; ++j)
      a[j] = scale * simd::dot(kq, detail::memory_row(X, m, b, Q, j), C);
    softmax_row(a, a, Q + 1);
    T* u = cache.pooled.data() + b * C;
    for (index_t j = 0; j <= Q; ++j) simd::axpy(a[j], detail::memory_row(X, m, b, Q, j), u, C);
  });
  linear_forward(matrix_ref<T>(cache.value.data(), B, A),
                 matrix_ref<const T>(cache.pooled.data(), B, C), p.v, threads);
  linear_forward(Y, matrix_ref<const T>(cache.value.data(), B, A), p.o, threads);
}

/**
 * Backward: **adds** `∂L/∂X` into `dX` (skipped when `dX.data` is null) and the projections'
 * gradients into `g`, given `dY = ∂L/∂Y` (see the file comment).
 */
template <real_scalar T>
void attention_pool_backward(matrix_ref<T> dX, const attention_pool_grads<T>& g,
                             const_matrix_ref<T> dY, attention_pool_cache<T>& cache,
                             const_matrix_ref<T> X, index_t Q, const attention_pool_params<T>& p,
                             int threads = 0) {
  eigen_single_thread_guard guard;  // one thread pool: ours (nn/detail/panel_gemm.hpp)
  constexpr const char* where = "clip::attention_pool_backward";
  detail::attention_pool_check(where, X, Q, p);
  const index_t B = cache.batch, C = X.cols, A = p.q.W.rows, D = p.o.W.rows;
  check_extent(where, "cached tokens per image", cache.tokens, "Q", Q);
  check_extent(where, "rows of X", X.rows, "B·Q of the forward", B * Q);
  check_shape(where, "dY", dY, B, D);
  if (dX.data) check_shape(where, "dX", dX, B * Q, C);
  cache.dvalue.assign(B * A, T(0));
  cache.dpooled.assign(B * C, T(0));
  cache.dkq.assign(B * C, T(0));
  cache.dquery.assign(B * A, T(0));
  cache.dmean.assign(B * C, T(0));
  cache.de.resize(B * (Q + 1));
  linear_backward(matrix_ref<T>(cache.dvalue.data(), B, A), g.o, dY,
                  matrix_ref<const T>(cache.value.data(), B, A), p.o, threads);
  linear_backward(matrix_ref<T>(cache.dpooled.data(), B, C), g.v,
                  matrix_ref<const T>(cache.dvalue.data(), B, A),
                  matrix_ref<const T>(cache.pooled.data(), B, C), p.v, threads);
  const T scale = T(1) / std::sqrt(T(A));
  parallel_for(B, threads, [&](index_t b, int) {
    const T* du = cache.dpooled.data() + b * C;
    const T* a = cache.attn.data() + b * (Q + 1);
    const T* kq = cache.kq.data() + b * C;
    const T* m = cache.mean.data() + b * C;
    T* de = cache.de.data() + b * (Q + 1);
    T dot = 0;
    for (index_t j = 0; j <= Q; ++j) {
      de[j] = simd::dot(du, detail::memory_row(X, m, b, Q, j), C);
      dot += a[j] * de[j];
    }
    for (index_t j = 0; j <= Q; ++j) de[j] = a[j] * (de[j] - dot);
    T* dkq = cache.dkq.data() + b * C;
    for (index_t j = 0; j <= Q; ++j)
      simd::axpy(de[j] * scale, detail::memory_row(X, m, b, Q, j), dkq, C);
    // dmem_j = a_j du + de_j k̃/√A: the mean row into dmean, token rows into dX.
    T* dm = cache.dmean.data() + b * C;
    simd::axpy(a[0], du, dm, C);
    simd::axpy(de[0] * scale, kq, dm, C);
    if (dX.data)
      for (index_t q = 0; q < Q; ++q) {
        simd::axpy(a[q + 1], du, dX.row(b * Q + q), C);
        simd::axpy(de[q + 1] * scale, kq, dX.row(b * Q + q), C);
      }
  });
  // dQm = dK̃ W_kᵀ (B × C times C × A), dW_k += Qmᵀ dK̃ (A × B times B × C)
  const auto dKq = eigen_map(matrix_ref<const T>(cache.dkq.data(), B, C));
  eigen_map(matrix_ref<T>(cache.dquery.data(), B, A)).noalias() += dKq * eigen_map(p.k).transpose();
  if (g.dk.data) {
    check_shape(where, "dW_k", g.dk, A, C);
    eigen_map(g.dk).noalias() +=
        eigen_map(matrix_ref<const T>(cache.query.data(), B, A)).transpose() * dKq;
  }
  linear_backward(matrix_ref<T>(cache.dmean.data(), B, C), g.q,
                  matrix_ref<const T>(cache.dquery.data(), B, A),
                  matrix_ref<const T>(cache.mean.data(), B, C), p.q, threads);
  if (!dX.data) return;
  parallel_for(B, threads, [&](index_t b, int) {
    const T* dm = cache.dmean.data() + b * C;
    for (index_t q = 0; q < Q; ++q) simd::axpy(T(1) / T(Q), dm, dX.row(b * Q + q), C);
  });
}

/// What the dense tokens' backward needs: the value projections.
template <real_scalar T>
struct dense_tokens_cache {
  aligned_vector<T> values;  ///< N × A
  aligned_vector<T> dvalues;
};

/**
 * Forward of MaskCLIP's dense tokens: `Z = (X W_vᵀ + b_v) W_oᵀ + b_o` for every row of X.
 * @param Z  N × D output (not normalised). @param X N × C tokens.
 */
template <real_scalar T>
void dense_tokens_forward(matrix_ref<T> Z, dense_tokens_cache<T>& cache, const_matrix_ref<T> X,
                          const attention_pool_params<T>& p, int threads = 0) {
  eigen_single_thread_guard guard;  // one thread pool: ours (nn/detail/panel_gemm.hpp)
  const index_t N = X.rows, A = p.v.W.rows;
  cache.values.resize(N * A);
  linear_forward(matrix_ref<T>(cache.values.data(), N, A), X, p.v, threads);
  linear_forward(Z, matrix_ref<const T>(cache.values.data(), N, A), p.o, threads);
}

/// Backward of the dense tokens: **adds** into `dX` (null data skips it) and the v and o
/// gradients of `g` (q and k receive nothing).
template <real_scalar T>
void dense_tokens_backward(matrix_ref<T> dX, const attention_pool_grads<T>& g,
                           const_matrix_ref<T> dZ, dense_tokens_cache<T>& cache,
                           const_matrix_ref<T> X, const attention_pool_params<T>& p,
                           int threads = 0) {
  eigen_single_thread_guard guard;  // one thread pool: ours (nn/detail/panel_gemm.hpp)
  const index_t N = X.rows, A = p.v.W.rows;
  check_extent("clip::dense_tokens_backward", "cached values", cache.values.size(), "N·A", N * A);
  cache.dvalues.assign(N * A, T(0));
  linear_backward(matrix_ref<T>(cache.dvalues.data(), N, A), g.o, dZ,
                  matrix_ref<const T>(cache.values.data(), N, A), p.o, threads);
  linear_backward(dX, g.v, matrix_ref<const T>(cache.dvalues.data(), N, A), X, p.v, threads);
}

}  // namespace zss::clip
