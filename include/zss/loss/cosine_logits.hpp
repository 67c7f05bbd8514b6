// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/loss/cosine_logits.hpp
 * Cosine logits with per-image class sets, forward and backward (DESIGN.md §2.1), unfused.
 *
 * Legend: B images, N rows (pixels of all images, image b owns rows
 * `[row_offsets[b], row_offsets[b+1])`), D width, Ks seen classes (text embeddings `T`, shared by
 * every image), M_b pseudo classes of image b (prototypes `P_b`, stacked into one
 * `(Σ_b M_b) × D` matrix `P`, image b owns rows `[pseudo_offsets[b], pseudo_offsets[b+1])`),
 * K_b = Ks + M_b classes of image b, Kmax = max_b K_b.
 *
 *     W_b = [T ; P_b]                        (K_b × D)
 *     S_i = [α·⟨n(x_i), n(t_k)⟩]_k ++ [β·⟨n(x_i), n(p_m)⟩]_m     for row i of image b
 *
 * with `n(x) = x / max(‖x‖, ε)` (nn/normalize.hpp). α scales the seen block, β the pseudo block
 * (both 1/τ; defaults 1/0.07). Column k of the logits is class k of the image's own class set:
 * seen classes first (`0..Ks−1`), then the image's pseudo classes (`Ks..K_b−1`), which is also
 * how labels are numbered (DESIGN §2.3 step 4).
 *
 * This header holds the layout type shared by the class-set losses (`class_sets`, with its
 * validation) and the plain logits pair that `focal_dice.hpp` (NEL) consumes. Cross-entropy over
 * these logits should use the fused `cosine_ce.hpp` instead, which never stores the N × K
 * logits. The logits here are stored as an `N × Kmax` matrix; entries `k ≥ K_b` of image b's
 * rows are written as 0 and ignored by every consumer (their gradient is never read).
 *
 * Gradients: backward adds into `dX` and, optionally, into the class weights (`dT`, `dP`)
 * through their normalisation. Text embeddings are teacher constants in the method (DESIGN §2),
 * so a trainer passes no `dT`; it exists for tests and other uses.
 *
 * Threads: rows are independent for the logits and `dX`; the weight gradients are one GEMM per
 * image run single-threaded, reduced in image order, so every result is bitwise identical
 * for every thread count.
 */
#include <algorithm>
#include <cmath>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "zss/core/aligned.hpp"
#include "zss/core/check.hpp"
#include "zss/core/eigen_map.hpp"
#include "zss/core/parallel.hpp"
#include "zss/core/simd.hpp"
#include "zss/core/tensor.hpp"
#include "zss/nn/normalize.hpp"

namespace zss {

/**
 * The layout of a batch for the class-set losses: which rows belong to which image and which
 * classes each image is scored against. A non-owning view; the caller keeps the memory alive.
 */
template <real_scalar T>
struct class_sets {
  std::span<const index_t>
      row_offsets;             ///< B + 1: image b owns rows [row_offsets[b], row_offsets[b+1])
  matrix_ref<const T> seen;    ///< Ks × D: seen text embeddings T (unnormalised is fine)
  matrix_ref<const T> pseudo;  ///< (Σ M_b) × D: stacked pseudo prototypes P_b (may be 0 rows)
  std::span<const index_t>
      pseudo_offsets;  ///< B + 1 offsets into `pseudo`; empty = no pseudo classes

  index_t images() const noexcept { return row_offsets.empty() ? 0 : row_offsets.size() - 1; }
  index_t seen_count() const noexcept { return seen.rows; }
  /// M_b (0 when `pseudo_offsets` is empty).
  index_t pseudo_count(index_t b) const noexcept {
    return pseudo_offsets.empty() ? 0 : pseudo_offsets[b + 1] - pseudo_offsets[b];
  }
  /// First row of P_b in `pseudo`.
  index_t pseudo_begin(index_t b) const noexcept {
    return pseudo_offsets.empty() ? 0 : pseudo_offsets[b];
  }
  /// K_b = Ks + M_b.
  index_t classes(index_t b) const noexcept { return seen.rows + pseudo_count(b); }
  /// Kmax = max_b K_b (Ks when there are no images).
  index_t max_classes() const noexcept {
    index_t k = seen.rows;
    for (index_t b = 0; b < images(); ++b) k = std::max(k, classes(b));
    return k;
  }
};

/// Gradients of the class weights: either view may be empty (`data == nullptr`) = not wanted.
template <real_scalar T>
struct class_set_grads {
  matrix_ref<T> seen;    ///< Ks × D, adds into (or empty)
  matrix_ref<T> pseudo;  ///< (Σ M_b) × D, adds into (or empty)
};

/// Scales and ε of the cosine logits.
struct cosine_logits_options {
  double alpha = 1 / 0.07;  ///< scale of the seen block (1/τ); used as T(alpha), like every field
  double beta = 1 / 0.07;   ///< scale of the pseudo block (1/τ)
  double eps = 1e-12;       ///< ε of the normalisations (rows and class weights; normalize_eps)
  int threads = 0;          ///< 0 = OpenMP default
};

namespace detail {

inline void check_offsets(std::string_view where, std::string_view name,
                          std::span<const index_t> off, index_t expected_size, index_t total) {
  std::ostringstream os;
  if (off.size() != expected_size) {
    os << where << ": " << name << " has " << off.size() << " entries, expected " << expected_size
       << " (B + 1)";
    throw std::invalid_argument(os.str());
  }
  if (off.empty()) return;
  if (off.front() != 0 || off.back() != total) {
    os << where << ": " << name << " must start at 0 and end at " << total << ", got "
       << off.front() << " .. " << off.back();
    throw std::invalid_argument(os.str());
  }
  for (index_t b = 0; b + 1 < off.size(); ++b)
    if (off[b + 1] < off[b]) {
      os << where << ": " << name << " decreases at image " << b << " (" << off[b] << " > "
         << off[b + 1] << ")";
      throw std::invalid_argument(os.str());
    }
}

/// Validates a class-set layout against rows X (N × D).
template <real_scalar T>
void check_class_sets(std::string_view where, const_matrix_ref<T> X, const class_sets<T>& s) {
  require(!s.row_offsets.empty(),
          std::string(where) + ": row_offsets is empty (needs B + 1 entries)");
  const index_t B = s.images();
  check_offsets(where, "row_offsets", s.row_offsets, B + 1, X.rows);
  check_extent(where, "width of the seen classes", s.seen.cols, "width of X", X.cols);
  if (!s.pseudo_offsets.empty()) {
    check_offsets(where, "pseudo_offsets", s.pseudo_offsets, B + 1, s.pseudo.rows);
    if (s.pseudo.rows > 0)
      check_extent(where, "width of the pseudo classes", s.pseudo.cols, "width of X", X.cols);
  } else {
    require(s.pseudo.rows == 0, std::string(where) + ": pseudo has " +
                                    std::to_string(s.pseudo.rows) +
                                    " rows but pseudo_offsets is empty");
  }
  for (index_t b = 0; b < B; ++b)
    if (s.classes(b) == 0 && s.row_offsets[b + 1] > s.row_offsets[b])
      throw std::invalid_argument(std::string(where) + ": image " + std::to_string(b) +
                                  " has rows but an empty class set (Ks = 0, M_b = 0)");
}

/// Validates labels (N entries in [−1, K_b)) for the layout.
template <real_scalar T>
void check_labels(std::string_view where, std::span<const int> labels, const class_sets<T>& s,
                  index_t n) {
  check_extent(where, "number of labels", labels.size(), "rows of X", n);
  for (index_t b = 0; b < s.images(); ++b) {
    const int K = static_cast<int>(s.classes(b));
    for (index_t i = s.row_offsets[b]; i < s.row_offsets[b + 1]; ++i)
      if (labels[i] < -1 || labels[i] >= K) {
        std::ostringstream os;
        os << where << ": label " << labels[i] << " of row " << i << " (image " << b
           << ") is out of range [-1, " << K << ")";
        throw std::invalid_argument(os.str());
      }
  }
}

/// Normalised copy of a weight matrix (dense, stride D) with its normalize cache.
template <real_scalar T>
void normalize_weights(aligned_vector<T>& out, normalize_cache<T>& cache, const_matrix_ref<T> W,
                       T eps) {
  out.resize(W.rows * W.cols);
  normalize_rows_forward(matrix_ref<T>(out.data(), W.rows, W.cols), cache, W, eps, 1);
}

/// dW += normalize-backward of dŴ (dense, stride D).
template <real_scalar T>
void weights_backward(matrix_ref<T> dW, const aligned_vector<T>& dWhat,
                      const normalize_cache<T>& cache, const aligned_vector<T>& What, index_t rows,
                      index_t cols) {
  if (rows == 0) return;
  normalize_rows_backward(dW, matrix_ref<const T>(dWhat.data(), rows, cols), cache,
                          matrix_ref<const T>(What.data(), rows, cols), 1);
}

}  // namespace detail

/// What `cosine_logits_backward` needs: normalised rows and class weights with their norms.
template <real_scalar T>
struct cosine_logits_cache {
  aligned_vector<T> x_hat;         ///< N × D: n(X)
  normalize_cache<T> x_norm;       ///< N norms of X
  aligned_vector<T> seen_hat;      ///< Ks × D: n(T)
  normalize_cache<T> seen_norm;    ///< Ks norms
  aligned_vector<T> pseudo_hat;    ///< (Σ M_b) × D: n(P)
  normalize_cache<T> pseudo_norm;  ///< Σ M_b norms
};

/**
 * Forward: `S = [α n(X_b) n(T)ᵀ , β n(X_b) n(P_b)ᵀ]` per image (DESIGN §2.1).
 * @param S      N × Kmax output; row i of image b gets K_b logits, entries ≥ K_b are set to 0.
 * @param cache  filled for the backward (resized; reuse it across steps to avoid allocation).
 * @param X      N × D rows (features).
 * @param sets   the batch layout (row offsets, seen classes, pseudo classes).
 * @param params scales, ε, threads.
 * @throws std::invalid_argument on mismatched widths/offsets, an image with rows and no class,
 *         or S not N × Kmax.
 */
template <real_scalar T>
void cosine_logits_forward(matrix_ref<T> S, cosine_logits_cache<T>& cache, const_matrix_ref<T> X,
                           const class_sets<T>& sets, const cosine_logits_options& params) {
  constexpr std::string_view where = "cosine_logits_forward";
  detail::check_class_sets(where, X, sets);
  const index_t N = X.rows, D = X.cols, Ks = sets.seen.rows, Kmax = sets.max_classes();
  check_shape(where, "S", S, N, Kmax);
  require(T(params.eps) > T(0), "cosine_logits_forward: eps must be > 0");
  const int threads = resolve_threads(params.threads);
  eigen_single_thread_guard guard;
  cache.x_hat.resize(N * D);
  normalize_rows_forward(matrix_ref<T>(cache.x_hat.data(), N, D), cache.x_norm, X, T(params.eps),
                         threads);
  detail::normalize_weights(cache.seen_hat, cache.seen_norm, sets.seen, T(params.eps));
  detail::normalize_weights(cache.pseudo_hat, cache.pseudo_norm, sets.pseudo, T(params.eps));
  const const_matrix_map<T> Th(cache.seen_hat.data(), Eigen::Index(Ks), Eigen::Index(D),
                               Eigen::OuterStride<>(D));
  parallel_for(sets.images(), threads, [&](index_t b, int) {
    const index_t r0 = sets.row_offsets[b], nb = sets.row_offsets[b + 1] - r0,
                  Mb = sets.pseudo_count(b);
    if (nb == 0) return;
    const const_matrix_map<T> Xh(cache.x_hat.data() + r0 * D, Eigen::Index(nb), Eigen::Index(D),
                                 Eigen::OuterStride<>(D));
    matrix_map<T> Sb(S.row(r0), Eigen::Index(nb), Eigen::Index(Kmax),
                     Eigen::OuterStride<>(Eigen::Index(S.stride)));
    Sb.setZero();
    if (Ks > 0) Sb.leftCols(Eigen::Index(Ks)).noalias() = T(params.alpha) * (Xh * Th.transpose());
    if (Mb > 0) {
      const const_matrix_map<T> Ph(cache.pseudo_hat.data() + sets.pseudo_begin(b) * D,
                                   Eigen::Index(Mb), Eigen::Index(D), Eigen::OuterStride<>(D));
      Sb.middleCols(Eigen::Index(Ks), Eigen::Index(Mb)).noalias() =
          T(params.beta) * (Xh * Ph.transpose());
    }
  });
}

/**
 * Backward: **adds** `∂L/∂X` into `dX` and, when wanted, `∂L/∂T`, `∂L/∂P` into `dW`, given
 * `dS = ∂L/∂S` (DESIGN §2.1: the logits' product rule, then the row-normalisation backward
 * `dx = (dx̂ − x̂⟨x̂, dx̂⟩)/max(‖x‖, ε)` on both sides).
 * @param dX    N × D, adds into (or empty: not wanted).
 * @param dW    class-weight gradients, each view optional.
 * @param dS    N × Kmax upstream gradient; entries ≥ K_b are not read.
 * @param cache from `cosine_logits_forward` on the same inputs.
 */
template <real_scalar T>
void cosine_logits_backward(matrix_ref<T> dX, class_set_grads<T> dW, const_matrix_ref<T> dS,
                            const cosine_logits_cache<T>& cache, const_matrix_ref<T> X,
                            const class_sets<T>& sets, const cosine_logits_options& params) {
  constexpr std::string_view where = "cosine_logits_backward";
  detail::check_class_sets(where, X, sets);
  const index_t N = X.rows, D = X.cols, Ks = sets.seen.rows, Kmax = sets.max_classes(),
                B = sets.images();
  check_shape(where, "dS", dS, N, Kmax);
  check_extent(where, "cache rows", cache.x_norm.norm.size(), "rows of X", N);
  if (dX.data) check_shape(where, "dX", dX, N, D);
  if (dW.seen.data) check_shape(where, "dT", dW.seen, Ks, D);
  if (dW.pseudo.data) check_shape(where, "dP", dW.pseudo, sets.pseudo.rows, D);
  const int threads = resolve_threads(params.threads);
  eigen_single_thread_guard guard;
  const const_matrix_map<T> Th(cache.seen_hat.data(), Eigen::Index(Ks), Eigen::Index(D),
                               Eigen::OuterStride<>(D));
  auto Sb_of = [&](index_t r0, index_t nb) {
    return const_matrix_map<T>(dS.row(r0), Eigen::Index(nb), Eigen::Index(Kmax),
                               Eigen::OuterStride<>(Eigen::Index(dS.stride)));
  };
  auto Xh_of = [&](index_t r0, index_t nb) {
    return const_matrix_map<T>(cache.x_hat.data() + r0 * D, Eigen::Index(nb), Eigen::Index(D),
                               Eigen::OuterStride<>(D));
  };
  auto Ph_of = [&](index_t b) {
    return const_matrix_map<T>(cache.pseudo_hat.data() + sets.pseudo_begin(b) * D,
                               Eigen::Index(sets.pseudo_count(b)), Eigen::Index(D),
                               Eigen::OuterStride<>(D));
  };
  if (dX.data) {
    aligned_vector<T> dXh(N * D, T(0));
    parallel_for(B, threads, [&](index_t b, int) {
      const index_t r0 = sets.row_offsets[b], nb = sets.row_offsets[b + 1] - r0,
                    Mb = sets.pseudo_count(b);
      if (nb == 0) return;
      matrix_map<T> G(dXh.data() + r0 * D, Eigen::Index(nb), Eigen::Index(D),
                      Eigen::OuterStride<>(D));
      const auto dSb = Sb_of(r0, nb);
      if (Ks > 0) G.noalias() = T(params.alpha) * (dSb.leftCols(Eigen::Index(Ks)) * Th);
      if (Mb > 0)
        G.noalias() +=
            T(params.beta) * (dSb.middleCols(Eigen::Index(Ks), Eigen::Index(Mb)) * Ph_of(b));
    });
    normalize_rows_backward(dX, matrix_ref<const T>(dXh.data(), N, D), cache.x_norm,
                            matrix_ref<const T>(cache.x_hat.data(), N, D), threads);
  }
  if (dW.seen.data && Ks > 0) {
    // One image after the other: a fixed summation order for every thread count.
    aligned_vector<T> dTh(Ks * D, T(0));
    matrix_map<T> G(dTh.data(), Eigen::Index(Ks), Eigen::Index(D), Eigen::OuterStride<>(D));
    for (index_t b = 0; b < B; ++b) {
      const index_t r0 = sets.row_offsets[b], nb = sets.row_offsets[b + 1] - r0;
      if (nb == 0) continue;
      G.noalias() +=
          T(params.alpha) * (Sb_of(r0, nb).leftCols(Eigen::Index(Ks)).transpose() * Xh_of(r0, nb));
    }
    detail::weights_backward(dW.seen, dTh, cache.seen_norm, cache.seen_hat, Ks, D);
  }
  if (dW.pseudo.data && sets.pseudo.rows > 0) {
    const index_t Mt = sets.pseudo.rows;
    aligned_vector<T> dPh(Mt * D, T(0));
    parallel_for(B, threads, [&](index_t b, int) {
      const index_t r0 = sets.row_offsets[b], nb = sets.row_offsets[b + 1] - r0,
                    Mb = sets.pseudo_count(b);
      if (nb == 0 || Mb == 0) return;
      matrix_map<T> G(dPh.data() + sets.pseudo_begin(b) * D, Eigen::Index(Mb), Eigen::Index(D),
                      Eigen::OuterStride<>(D));
      G.noalias() = T(params.beta) *
                    (Sb_of(r0, nb).middleCols(Eigen::Index(Ks), Eigen::Index(Mb)).transpose() *
                     Xh_of(r0, nb));
    });
    detail::weights_backward(dW.pseudo, dPh, cache.pseudo_norm, cache.pseudo_hat, Mt, D);
  }
}

}  // namespace zss
