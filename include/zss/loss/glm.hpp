// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/loss/glm.hpp
 * The Global Learning Module loss (DESIGN.md §2.2): the teacher's CLS attends over the student's
 * dense features; the pooled vector must match its own image's CLS against the batch's other
 * CLS tokens and a bank of past ones (InfoNCE).
 *
 * Legend: B images, P pixels per image, D width, M tokens in the bank, N = B·P rows.
 * `R` is the student's dense features as an N × D matrix (image b owns rows `[bP, (b+1)P)`),
 * `C` the teacher's CLS tokens (B × D, constants: no gradient).
 *
 *     e_bp = ⟨c_b, r_bp⟩/√D,  a_b = softmax_p(e_b),  ŝ_b = Σ_p a_bp r_bp,  g_b = n(ŝ_b)
 *     keys  = [n(c_1) … n(c_B) ; V]       (V: the bank, cls_bank<T>, oldest first)
 *     L_glm = −mean_b log softmax_j(⟨g_b, k_j⟩/τ_g)[b]
 *
 * Backward (DESIGN §2.2): `dŝ` from InfoNCE and the normalisation, then
 * `da_bp = ⟨dŝ_b, r_bp⟩`, `de_bp = a_bp (da_bp − Σ_p' a_bp' da_bp')`,
 * `dr_bp = a_bp dŝ_b + de_bp c_b/√D`. Since `Σ_p a_bp da_bp = ⟨dŝ_b, ŝ_b⟩`, the backward is one
 * pass over `R` (read r_bp, add into dr_bp). (Through `g = n(ŝ)` that sum is 0 up to rounding,
 * as `dŝ ⊥ ŝ`; the term is kept so the pooling backward is exact for any upstream `dŝ`.)
 *
 * Pool variants (`glm_options::pool`):
 *  - `attention` (default, the paper) as above; the forward is one pass over R per image with
 *    an online softmax (running max, rescaled accumulator).
 *  - `mean`: `ŝ_b = mean_p r_bp`.
 *  - `selective` (after Chimera-Seg): `ŝ_b` = mean of the `k = clamp(⌈ρP⌉, 1, P)` pixels with the
 *    highest cosine `⟨n(r_bp), c_b⟩` (ties to the lower pixel index); the selection carries no
 *    gradient. zss's reading: the selected pixels are *mean*-pooled, then InfoNCE as above.
 *  - `dense`: every pixel is a row, `L = −mean_{b,p} log softmax_j(⟨n(r_bp), k_j⟩/τ)[b]` against
 *    the same keys (batch CLS then bank), computed by cosine_ce.hpp's fused kernel: gradient
 *    during the forward, one row block at a time.
 *
 * A shard of a batch (data parallelism, zss/dist; `glm_shard`): the call's B images are images
 * `first … first + B − 1` of a batch of B_all whose CLS tokens are all given; the keys are
 * `[n(c_1) … n(c_B_all) ; V]`, image b's positive key is `first + b`, and the mean is over the
 * batch's B_all images (`dense`: B_all·P rows). The shards' losses and gradients then add up to
 * the batch's: N ranks with B images each compute what one process computes with N·B.
 *
 * Threads: pooled variants run one image per work item (results independent of the thread
 * count); `dense` uses cosine_ce's fixed groups (bitwise identical for every thread count).
 * The bank is read, never written: push the batch's CLS tokens after the step.
 */
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "zss/core/aligned.hpp"
#include "zss/core/check.hpp"
#include "zss/core/eigen_map.hpp"
#include "zss/core/option_fields.hpp"
#include "zss/core/parallel.hpp"
#include "zss/core/simd.hpp"
#include "zss/core/tensor.hpp"
#include "zss/loss/cls_bank.hpp"
#include "zss/loss/cosine_ce.hpp"
#include "zss/loss/info_nce.hpp"
#include "zss/nn/normalize.hpp"

namespace zss {

/// How GLM pools a dense feature map (DESIGN §2.2).
enum class glm_pool { attention, mean, dense, selective };
/// Names of the pooling variants (configuration text, command line).
inline const enum_names<glm_pool, 4> glm_pool_names{{{glm_pool::attention, "attention"},
                                                     {glm_pool::mean, "mean"},
                                                     {glm_pool::dense, "dense"},
                                                     {glm_pool::selective, "selective"}}};

/// Options of the GLM loss.
struct glm_options {
  glm_pool pool = glm_pool::attention;  ///< the paper's attention pooling by default
  double tau = 0.07;                    ///< τ_g (used as T(tau))
  double rho = 0.25;          ///< `selective`: fraction of pixels kept (0, 1]; unpublished, tunable
  double eps = 1e-12;         ///< ε of every normalisation (normalize_eps; used as T(eps))
  int threads = 0;            ///< 0 = OpenMP default
  index_t block_rows = 128;   ///< `dense`: rows per block
  bool check_finite = false;  ///< check R and C for NaN/Inf first
  /// true: the backward adds into dR; false: it writes every row of dR (=) and never reads it,
  /// so the caller need not zero it first (as `cosine_ce_options::accumulate`).
  bool accumulate = true;
};

/**
 * This call's images as a shard of a larger batch (see the file comment); the default (no
 * `batch_cls`) means the call is the whole batch.
 */
template <real_scalar T>
struct glm_shard {
  matrix_ref<const T> batch_cls;  ///< B_all × D: the batch's CLS tokens, in batch order
  index_t first = 0;              ///< the batch index of this call's image 0
  bool active() const noexcept { return batch_cls.data != nullptr; }
};

/// Everything the backward needs, plus reusable scratch.
template <real_scalar T>
struct glm_cache {
  index_t B = 0, P = 0, D = 0, keys_count = 0;
  index_t first = 0, batch_images = 0;  ///< the shard's place in its batch (B_all = batch_images)
  glm_pool pool = glm_pool::attention;
  aligned_vector<T> keys;          ///< (B + M) × D: n(C) then the bank
  aligned_vector<T> attn;          ///< B × P attention weights a_bp (`attention`)
  std::vector<index_t> selected;   ///< B × k selected pixels, ascending (`selective`)
  index_t selected_per_image = 0;  ///< k
  aligned_vector<T> pooled;        ///< B × D: ŝ
  aligned_vector<T> g;             ///< B × D: n(ŝ)
  normalize_cache<T> g_norm;
  info_nce_cache<T> nce;
  std::vector<int> targets;  ///< B: first … first + B − 1
  double loss = 0;
  // Scratch.
  aligned_vector<T> dg, dpooled;
  std::vector<detail::cosine_ce_scratch<T>> scratch;
  aligned_vector<T> group_dw;
};

namespace detail {

template <real_scalar T>
void glm_check(std::string_view where, matrix_ref<const T> R, index_t P, matrix_ref<const T> C,
               const glm_options& params) {
  const index_t B = C.rows;
  require(P > 0, std::string(where) + ": P must be > 0");
  require(B > 0, std::string(where) + ": C has no rows (B = 0)");
  check_extent(where, "rows of R", R.rows, "B·P = " + std::to_string(B) + "·" + std::to_string(P),
               B * P);
  check_extent(where, "width of C", C.cols, "width of R", R.cols);
  require(R.cols > 0, std::string(where) + ": D must be > 0");
  require(T(params.tau) > T(0),
          std::string(where) + ": tau must be > 0, got " + std::to_string(params.tau));
  require(T(params.eps) > T(0), std::string(where) + ": eps must be > 0");
  if (params.pool == glm_pool::selective)
    require(T(params.rho) > T(0) && T(params.rho) <= T(1),
            std::string(where) + ": rho must be in (0, 1], got " +
                std::to_string(double(T(params.rho))));
}

template <real_scalar T>
cosine_ce_kernel<T> glm_dense_kernel(const glm_cache<T>& cache, const_matrix_ref<T> R,
                                     const glm_options& params) {
  cosine_ce_kernel<T> k;
  k.X = R;
  k.seen_hat = matrix_ref<const T>(cache.keys.data(), cache.keys_count, cache.D);
  k.pseudo_hat = matrix_ref<const T>(nullptr, 0, cache.D);
  k.alpha = T(1) / T(params.tau);
  k.beta = k.alpha;
  k.eps = T(params.eps);
  k.block_rows = params.block_rows;
  return k;
}

template <real_scalar T>
double glm_dense_run(glm_cache<T>& cache, matrix_ref<T> dR, T dloss, bool want_grad,
                     const_matrix_ref<T> R, const glm_options& params) {
  auto k = glm_dense_kernel(cache, R, params);
  const index_t offsets[2] = {0, R.rows};
  k.row_offsets = std::span<const index_t>(offsets, 2);
  k.dX = dR;
  k.dx_assign = !params.accumulate;
  if (want_grad && dR.data && !params.accumulate && dloss == T(0))
    for (index_t i = 0; i < dR.rows; ++i) std::fill_n(dR.row(i), dR.cols, T(0));  // 0 gradient
  const index_t P = cache.P, first = cache.first;
  const double rows = double(cache.batch_images * P);  // the batch's rows (R.rows unless a shard)
  const T coef = want_grad ? T(double(dloss) / rows) : T(0);
  eigen_single_thread_guard guard;
  const double sum = k.run([P, first](index_t i) { return static_cast<int>(first + i / P); },
                           [](index_t) { return T(1); }, coef, want_grad && dloss != T(0),
                           resolve_threads(params.threads), cache.scratch, cache.group_dw);
  return sum / rows;
}

/// `out[j] = ⟨v, r_j⟩` for four rows at once: `v` is loaded once per batch and the four
/// independent dot products (two accumulators each) overlap instead of forming one long chain.
template <real_scalar T>
inline void dot4(const T* v, const T* const* r, index_t n, T* out) noexcept {
  using V = simd::batch<T>;
  constexpr index_t W = simd::width<T>;
  V a[4] = {V(T(0)), V(T(0)), V(T(0)), V(T(0))}, b[4] = {V(T(0)), V(T(0)), V(T(0)), V(T(0))};
  index_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    const V x = V::load_unaligned(v + i), y = V::load_unaligned(v + i + W);
    for (int j = 0; j < 4; ++j) {
      a[j] = simd::fma(x, V::load_unaligned(r[j] + i), a[j]);
      b[j] = simd::fma(y, V::load_unaligned(r[j] + i + W), b[j]);
    }
  }
  for (; i + W <= n; i += W) {
    const V x = V::load_unaligned(v + i);
    for (int j = 0; j < 4; ++j) a[j] = simd::fma(x, V::load_unaligned(r[j] + i), a[j]);
  }
  for (int j = 0; j < 4; ++j) {
    T o = simd::reduce_add(a[j] + b[j]);
    for (index_t k = i; k < n; ++k) o += v[k] * r[j][k];
    out[j] = o;
  }
}

/// `s += Σ_j w_j r_j` over four rows: one read-modify-write of `s` per four rows.
template <real_scalar T>
inline void axpy4(const T* w, const T* const* r, T* s, index_t n) noexcept {
  using V = simd::batch<T>;
  constexpr index_t W = simd::width<T>;
  const V w0(w[0]), w1(w[1]), w2(w[2]), w3(w[3]);
  index_t i = 0;
  for (; i + W <= n; i += W) {
    V acc = V::load_unaligned(s + i);
    acc = simd::fma(w0, V::load_unaligned(r[0] + i), acc);
    acc = simd::fma(w1, V::load_unaligned(r[1] + i), acc);
    acc = simd::fma(w2, V::load_unaligned(r[2] + i), acc);
    acc = simd::fma(w3, V::load_unaligned(r[3] + i), acc);
    acc.store_unaligned(s + i);
  }
  for (; i < n; ++i) s[i] += w[0] * r[0][i] + w[1] * r[1][i] + w[2] * r[2][i] + w[3] * r[3][i];
}

/// Pooling forward of image b into cache.pooled (and attn / selected).
template <real_scalar T>
void glm_pool_image(glm_cache<T>& cache, index_t b, const_matrix_ref<T> R, const_matrix_ref<T> C,
                    const glm_options& params) {
  const index_t P = cache.P, D = cache.D;
  T* s = cache.pooled.data() + b * D;
  std::fill_n(s, D, T(0));
  const T* c = C.row(b);
  switch (params.pool) {
    case glm_pool::attention: {
      const T isd = T(1) / std::sqrt(T(D));
      T* e = cache.attn.data() + b * P;
      T m = -std::numeric_limits<T>::infinity(), sum = 0;
      // Online softmax: one read of R_b (flash-attention style running max), four rows a step.
      index_t p = 0;
      for (; p + 4 <= P; p += 4) {
        const T* r[4] = {R.row(b * P + p), R.row(b * P + p + 1), R.row(b * P + p + 2),
                         R.row(b * P + p + 3)};
        T ev[4], w[4];
        dot4(c, r, D, ev);
        T mt = m;
        for (int j = 0; j < 4; ++j) {
          ev[j] *= isd;
          e[p + index_t(j)] = ev[j];
          mt = std::max(mt, ev[j]);
        }
        if (mt > m) {
          if (sum > T(0)) {
            const T f = std::exp(m - mt);
            simd::scale(f, s, D);
            sum *= f;
          }
          m = mt;
        }
        for (int j = 0; j < 4; ++j) sum += (w[j] = std::exp(ev[j] - m));
        axpy4(w, r, s, D);
      }
      for (; p < P; ++p) {
        const T* r = R.row(b * P + p);
        const T ep = simd::dot(c, r, D) * isd;
        e[p] = ep;
        if (ep > m) {
          if (sum > T(0)) {
            const T f = std::exp(m - ep);
            simd::scale(f, s, D);
            sum *= f;
          }
          m = ep;
        }
        const T w = std::exp(ep - m);
        sum += w;
        simd::axpy(w, r, s, D);
      }
      const T inv = T(1) / sum;
      simd::scale(inv, s, D);
      for (index_t p = 0; p < P; ++p) e[p] = std::exp(e[p] - m) * inv;
      break;
    }
    case glm_pool::mean: {
      for (index_t p = 0; p < P; ++p) simd::axpy(T(1), R.row(b * P + p), s, D);
      simd::scale(T(1) / T(P), s, D);
      break;
    }
    case glm_pool::selective: {
      const index_t k = cache.selected_per_image;
      std::vector<T> score(P);
      for (index_t p = 0; p < P; ++p) {
        const T* r = R.row(b * P + p);
        score[p] =
            simd::dot(r, c, D) / std::max(std::sqrt(simd::squared_norm(r, D)), T(params.eps));
      }
      std::vector<index_t> idx(P);
      std::iota(idx.begin(), idx.end(), index_t(0));
      std::partial_sort(idx.begin(), idx.begin() + std::ptrdiff_t(k), idx.end(),
                        [&](index_t x, index_t y) {
                          return score[x] > score[y] || (score[x] == score[y] && x < y);
                        });
      std::sort(idx.begin(), idx.begin() + std::ptrdiff_t(k));
      index_t* sel = cache.selected.data() + b * k;
      for (index_t j = 0; j < k; ++j) {
        sel[j] = idx[j];
        simd::axpy(T(1), R.row(b * P + idx[j]), s, D);
      }
      simd::scale(T(1) / T(k), s, D);
      break;
    }
    case glm_pool::dense:
      break;
  }
}

/// Pooling backward of image b: adds into (or with `accumulate` false, writes) image b's rows
/// of dR given dŝ_b.
template <real_scalar T>
void glm_unpool_image(matrix_ref<T> dR, const glm_cache<T>& cache, index_t b, const_matrix_ref<T> R,
                      const_matrix_ref<T> C, const glm_options& params) {
  const index_t P = cache.P, D = cache.D;
  const T* ds = cache.dpooled.data() + b * D;
  const bool add = params.accumulate;
  auto axpy2_into = [add](T a, const T* x, T b2, const T* y, T* out, index_t n) {
    if (add)
      axpy2(a, x, b2, y, out, n);
    else
      axpy2<false>(a, x, b2, y, out, n);
  };
  switch (params.pool) {
    case glm_pool::attention: {
      const T isd = T(1) / std::sqrt(T(D));
      const T* a = cache.attn.data() + b * P;
      const T* c = C.row(b);
      const T sb = simd::dot(ds, cache.pooled.data() + b * D, D);  // Σ_p a_p da_p = ⟨dŝ, ŝ⟩
      index_t p = 0;
      for (; p + 4 <= P; p += 4) {
        const T* r[4] = {R.row(b * P + p), R.row(b * P + p + 1), R.row(b * P + p + 2),
                         R.row(b * P + p + 3)};
        T da[4];
        dot4(ds, r, D, da);
        for (index_t j = 0; j < 4; ++j) {
          const T de = a[p + j] * (da[j] - sb);
          axpy2_into(a[p + j], ds, de * isd, c, dR.row(b * P + p + j), D);
        }
      }
      for (; p < P; ++p) {
        const T* r = R.row(b * P + p);
        T* dr = dR.row(b * P + p);
        const T de = a[p] * (simd::dot(ds, r, D) - sb);
        axpy2_into(a[p], ds, de * isd, c, dr, D);
      }
      break;
    }
    case glm_pool::mean: {
      const T w = T(1) / T(P);
      for (index_t p = 0; p < P; ++p) {
        T* dr = dR.row(b * P + p);
        if (add)
          simd::axpy(w, ds, dr, D);
        else
          for (index_t d = 0; d < D; ++d) dr[d] = T(0) + w * ds[d];  // as adding into 0
      }
      break;
    }
    case glm_pool::selective: {
      const index_t k = cache.selected_per_image;
      const T w = T(1) / T(k);
      if (!add)
        for (index_t p = 0; p < P; ++p) std::fill_n(dR.row(b * P + p), D, T(0));
      for (index_t j = 0; j < k; ++j)
        simd::axpy(w, ds, dR.row(b * P + cache.selected[b * k + j]), D);
      break;
    }
    case glm_pool::dense:
      break;
  }
}

template <real_scalar T>
void glm_prepare(std::string_view where, glm_cache<T>& cache, const_matrix_ref<T> R, index_t P,
                 const_matrix_ref<T> C, const cls_bank<T>& bank, const glm_options& params,
                 const glm_shard<T>& shard) {
  glm_check(where, R, P, C, params);
  if (shard.active()) {
    const auto& A = shard.batch_cls;
    check_extent(where, "width of the batch's CLS tokens", A.cols, "width of C", C.cols);
    require(shard.first + C.rows <= A.rows, std::string(where) + ": the shard's images " +
                                                std::to_string(shard.first) + " … " +
                                                std::to_string(shard.first + C.rows - 1) +
                                                " are not in a batch of " + std::to_string(A.rows));
    for (index_t b = 0; b < C.rows; ++b)
      require(std::equal(C.row(b), C.row(b) + C.cols, A.row(shard.first + b)),
              std::string(where) + ": CLS token " + std::to_string(b) +
                  " differs from the batch's CLS token " + std::to_string(shard.first + b));
  }
  // A default-constructed bank (capacity 0, width 0) means "no bank".
  if (!(bank.capacity() == 0 && bank.width() == 0) && bank.width() != R.cols)
    throw std::invalid_argument(std::string(where) + ": the CLS bank has width " +
                                std::to_string(bank.width()) + ", the features have width " +
                                std::to_string(R.cols));
  if (params.check_finite) {
    for (index_t i = 0; i < R.rows; ++i) check_finite(where, "R", R.row(i), R.cols);
    for (index_t i = 0; i < C.rows; ++i) check_finite(where, "C", C.row(i), C.cols);
  }
  const index_t B = C.rows, D = R.cols;
  const matrix_ref<const T> batch = shard.active() ? shard.batch_cls : C;
  cache.B = B, cache.P = P, cache.D = D, cache.pool = params.pool;
  cache.first = shard.active() ? shard.first : 0;
  cache.batch_images = batch.rows;
  cache.keys_count = batch.rows + bank.size();
  cache.keys.resize(cache.keys_count * D);
  normalize_cache<T> ck;
  normalize_rows_forward(matrix_ref<T>(cache.keys.data(), batch.rows, D), ck, batch, T(params.eps),
                         1);
  bank.copy_to(cache.keys.data() + batch.rows * D);
}

template <real_scalar T>
void glm_pooled_forward(glm_cache<T>& cache, const_matrix_ref<T> R, const_matrix_ref<T> C,
                        const glm_options& params) {
  const index_t B = cache.B, P = cache.P, D = cache.D;
  cache.pooled.resize(B * D);
  cache.g.resize(B * D);
  if (params.pool == glm_pool::attention) cache.attn.resize(B * P);
  if (params.pool == glm_pool::selective) {
    const double want = std::ceil(double(T(params.rho)) * double(P) - 1e-9);
    cache.selected_per_image = std::clamp<index_t>(static_cast<index_t>(std::max(want, 1.0)), 1, P);
    cache.selected.resize(B * cache.selected_per_image);
  }
  parallel_for(B, resolve_threads(params.threads),
               [&](index_t b, int) { glm_pool_image(cache, b, R, C, params); });
  normalize_rows_forward(matrix_ref<T>(cache.g.data(), B, D), cache.g_norm,
                         matrix_ref<const T>(cache.pooled.data(), B, D), T(params.eps), 1);
  cache.targets.resize(B);
  std::iota(cache.targets.begin(), cache.targets.end(), static_cast<int>(cache.first));
  T loss{};
  info_nce_forward(loss, cache.nce, matrix_ref<const T>(cache.g.data(), B, D),
                   matrix_ref<const T>(cache.keys.data(), cache.keys_count, D),
                   std::span<const int>(cache.targets), info_nce_options{params.tau},
                   cache.batch_images);
  cache.loss = double(loss);
}

template <real_scalar T>
void glm_pooled_backward(matrix_ref<T> dR, T dloss, glm_cache<T>& cache, const_matrix_ref<T> R,
                         const_matrix_ref<T> C, const glm_options& params) {
  const index_t B = cache.B, D = cache.D;
  cache.dg.assign(B * D, T(0));
  cache.dpooled.assign(B * D, T(0));
  info_nce_backward(matrix_ref<T>(cache.dg.data(), B, D), matrix_ref<T>{}, dloss, cache.nce,
                    matrix_ref<const T>(cache.g.data(), B, D),
                    matrix_ref<const T>(cache.keys.data(), cache.keys_count, D),
                    std::span<const int>(cache.targets), info_nce_options{params.tau});
  normalize_rows_backward(matrix_ref<T>(cache.dpooled.data(), B, D),
                          matrix_ref<const T>(cache.dg.data(), B, D), cache.g_norm,
                          matrix_ref<const T>(cache.g.data(), B, D), 1);
  parallel_for(B, resolve_threads(params.threads),
               [&](index_t b, int) { glm_unpool_image(dR, cache, b, R, C, params); });
}

}  // namespace detail

/**
 * Forward (DESIGN §2.2): the GLM loss for the chosen pool variant.
 * @param loss   out: L_glm.
 * @param cache  filled for the backward (keys, attention weights or selection, pooled vectors).
 * @param R      N × D student features, N = B·P, image b owns rows [bP, (b+1)P).
 * @param P      pixels per image.
 * @param C      B × D teacher CLS tokens (constants).
 * @param bank   the CLS bank read as extra keys (state before this step's push).
 * @param shard  this call's place in a larger batch (data parallelism; file comment), or {} (the
 *               call is the batch). Kept in the cache for the backward.
 * @throws std::invalid_argument on R not (B·P) × D, C of another width, a bank of another width,
 *         τ ≤ 0, ρ outside (0, 1], P = 0 or B = 0; a shard outside its batch or whose C differs
 *         from its rows of the batch's CLS tokens.
 */
template <real_scalar T>
void glm_forward(T& loss, glm_cache<T>& cache, const_matrix_ref<T> R, index_t P,
                 const_matrix_ref<T> C, const cls_bank<T>& bank, const glm_options& params,
                 const glm_shard<T>& shard = {}) {
  detail::glm_prepare("glm_forward", cache, R, P, C, bank, params, shard);
  if (params.pool == glm_pool::dense)
    cache.loss = detail::glm_dense_run(cache, matrix_ref<T>{}, T(0), false, R, params);
  else
    detail::glm_pooled_forward(cache, R, C, params);
  loss = T(cache.loss);
}

/**
 * Backward: **adds** `dloss·∂L/∂R` into `dR`, or writes it when `params.accumulate` is false
 * (DESIGN §2.2; the keys, C and the bank get no
 * gradient). Uses the keys (and the shard) cached by the forward. The cache's scratch is reused,
 * hence non-const.
 * @param dR N × D, adds into (or writes: `glm_options::accumulate`).
 */
template <real_scalar T>
void glm_backward(matrix_ref<T> dR, T dloss, glm_cache<T>& cache, const_matrix_ref<T> R, index_t P,
                  const_matrix_ref<T> C, const glm_options& params) {
  detail::glm_check("glm_backward", R, P, C, params);
  check_shape("glm_backward", "dR", dR, R.rows, R.cols);
  require(cache.B == C.rows && cache.P == P && cache.D == R.cols && cache.pool == params.pool,
          "glm_backward: the cache comes from a forward with other shapes or another pool variant");
  if (params.pool == glm_pool::dense)
    detail::glm_dense_run(cache, dR, dloss, true, R, params);
  else
    detail::glm_pooled_backward(dR, dloss, cache, R, C, params);
}

/**
 * Forward and backward in one call: writes the loss and **adds** `dloss·∂L/∂R` into `dR` (or
 * writes it: `accumulate`).
 * For `dense` this is one fused pass over R (the fast path); the pooled variants run the
 * forward then the backward (each already one pass over R per image).
 */
template <real_scalar T>
void glm_forward_backward(T& loss, matrix_ref<T> dR, glm_cache<T>& cache, const_matrix_ref<T> R,
                          index_t P, const_matrix_ref<T> C, const cls_bank<T>& bank,
                          const glm_options& params, T dloss = T(1),
                          const glm_shard<T>& shard = {}) {
  detail::glm_prepare("glm_forward_backward", cache, R, P, C, bank, params, shard);
  check_shape("glm_forward_backward", "dR", dR, R.rows, R.cols);
  if (params.pool == glm_pool::dense) {
    cache.loss = detail::glm_dense_run(cache, dR, dloss, true, R, params);
  } else {
    detail::glm_pooled_forward(cache, R, C, params);
    detail::glm_pooled_backward(dR, dloss, cache, R, C, params);
  }
  loss = T(cache.loss);
}

}  // namespace zss
