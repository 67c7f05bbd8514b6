// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/plm/synthesizer_loss.hpp
 * `L_syn`: the seen regions' prototypes against the seen classes' text embeddings, forward and
 * backward (DESIGN.md §2.4).
 *
 * Legend: N regions, D width, K seen classes, S seen regions (label ≥ 0; pseudo regions carry
 * label −1 and take no part).
 *
 *     z_lk = ⟨π_l, n(t_k)⟩ / τ_s − δ                               (N × K logits)
 *     bce (default): L = 1/(S·K) Σ_{l seen} Σ_k ℓ(z_lk, [k = y_l])   ℓ = BCE on logits
 * (loss/bce.hpp) ce:            L = 1/S Σ_{l seen} (lse(z_l) − z_l,y_l)
 *
 * Defaults τ_s = 0.07, δ = 0 (the paper publishes none; tunable). With no seen region the loss
 * is 0 and the gradient is zero. The text embeddings are constants (no gradient); their
 * normalisation is done in the forward and kept in the cache. The prototypes are taken as given
 * (the synthesizer's output is already unit-norm).
 *
 * Backward: `dz_lk = dloss · (σ(z_lk) − [k = y_l]) / (S·K)` (bce) or
 * `dloss · (softmax(z_l)_k − [k = y_l]) / S` (ce), then `dπ_l += dz_l n(T) / τ_s`.
 *
 * A shard of a batch (data parallelism, zss/dist): `batch_seen` = the batch's S makes the loss and
 * gradient this shard's part of the batch's mean (the shards' results add up to the batch's).
 */
#include <cmath>
#include <span>
#include <string>

#include "zss/core/aligned.hpp"
#include "zss/core/check.hpp"
#include "zss/core/eigen_map.hpp"
#include "zss/core/option_fields.hpp"
#include "zss/core/tensor.hpp"
#include "zss/loss/bce.hpp"
#include "zss/nn/normalize.hpp"
#include "zss/nn/softmax.hpp"

namespace zss {

/// Which loss pulls the seen prototypes to their text embeddings.
enum class syn_loss_kind {
  bce,  ///< binary cross-entropy over all seen classes (default, DESIGN §2.4)
  ce,   ///< softmax cross-entropy over the seen classes
};
/// Names of the L_syn kinds (configuration text, command line).
inline const enum_names<syn_loss_kind, 2> syn_loss_kind_names{
    {{syn_loss_kind::bce, "bce"}, {syn_loss_kind::ce, "ce"}}};

/// Options of L_syn; defaults as in DESIGN §2.4.
struct syn_loss_options {
  syn_loss_kind kind = syn_loss_kind::bce;
  double tau = 0.07;   ///< τ_s > 0: logits are cosines / τ_s
  double delta = 0.0;  ///< δ: subtracted from every logit
};

/// Forward results the backward reuses: n(T) and the logits.
template <real_scalar T>
struct syn_loss_cache {
  aligned_vector<T> text;  ///< K × D, n(t_k)
  aligned_vector<T> Z;     ///< N × K logits (all rows; only seen rows are used)
  normalize_cache<T> text_norm;
  index_t seen = 0;        ///< S
  index_t classes = 0;     ///< K
  index_t normalizer = 0;  ///< the seen regions the mean is over: S, or the batch's for a shard
};

namespace detail {
template <real_scalar T>
void check_syn_loss(std::string_view where, matrix_ref<const T> Pi, std::span<const int> labels,
                    matrix_ref<const T> Text, const syn_loss_options& opt) {
  check_extent(where, "labels.size()", labels.size(), "rows of Pi " + shape_string(Pi.shape()),
               Pi.rows);
  require(Text.rows > 0, std::string(where) + ": no seen classes (text has shape " +
                             shape_string(Text.shape()) + ")");
  check_extent(where, "columns of the text embeddings " + shape_string(Text.shape()), Text.cols,
               "columns of Pi " + shape_string(Pi.shape()), Pi.cols);
  require(opt.tau > 0 && std::isfinite(opt.tau),
          std::string(where) + ": tau must be finite and > 0, got " + std::to_string(opt.tau));
  require(std::isfinite(opt.delta), std::string(where) + ": delta must be finite");
  for (index_t l = 0; l < labels.size(); ++l)
    require(labels[l] >= -1 && labels[l] < static_cast<int>(Text.rows),
            std::string(where) + ": label " + std::to_string(labels[l]) + " of region " +
                std::to_string(l) + " is outside [-1, " + std::to_string(Text.rows) + ")");
}
}  // namespace detail

/**
 * Forward (DESIGN §2.4).
 * @param loss    output scalar L_syn.
 * @param cache   filled with n(T) and the logits (resized; reuse it).
 * @param Pi      N × D prototypes.
 * @param labels  N class indices in [0, K) for seen regions, −1 for pseudo regions.
 * @param Text    K × D seen classes' text embeddings (normalised here).
 * @param batch_seen the batch's number of seen regions when this call is one shard of it (0 =
 *                this call is the batch); kept in the cache for the backward.
 * @throws std::invalid_argument on mismatched shapes, K = 0, labels out of range, τ ≤ 0, a
 *         `batch_seen` in (0, S).
 */
template <real_scalar T>
void syn_loss_forward(T& loss, syn_loss_cache<T>& cache, const_matrix_ref<T> Pi,
                      std::span<const int> labels, const_matrix_ref<T> Text,
                      const syn_loss_options& opt = {}, index_t batch_seen = 0) {
  detail::check_syn_loss("syn_loss_forward", Pi, labels, Text, opt);
  const index_t n = Pi.rows, k = Text.rows, d = Text.cols;
  cache.classes = k;
  cache.text.resize(k * d);
  cache.Z.resize(n * k);
  matrix_ref<T> Tn(cache.text.data(), k, d), Z(cache.Z.data(), n, k);
  normalize_rows_forward(Tn, cache.text_norm, Text);
  const T inv_tau = T(1 / opt.tau), delta = T(opt.delta);
  if (n > 0) {
    eigen_map(Z).noalias() =
        inv_tau * (eigen_map(Pi) * eigen_map(matrix_ref<const T>(Tn)).transpose());
    eigen_map(Z).array() -= delta;
  }
  double s = 0;
  index_t seen = 0;
  for (index_t l = 0; l < n; ++l) {
    if (labels[l] < 0) continue;
    ++seen;
    const T* z = Z.row(l);
    const auto y = static_cast<index_t>(labels[l]);
    if (opt.kind == syn_loss_kind::bce) {
      for (index_t c = 0; c < k; ++c) s += double(bce_with_logits(z[c], c == y ? T(1) : T(0)));
    } else {
      s += double(logsumexp_row(z, k)) - double(z[y]);
    }
  }
  cache.seen = seen;
  require(batch_seen == 0 || batch_seen >= seen,
          "syn_loss_forward: the batch's " + std::to_string(batch_seen) +
              " seen regions are fewer than this shard's " + std::to_string(seen));
  cache.normalizer = batch_seen ? batch_seen : seen;
  const index_t norm = cache.normalizer;
  const double count = opt.kind == syn_loss_kind::bce ? double(norm * k) : double(norm);
  loss = seen == 0 ? T(0) : T(s / count);
}

/**
 * Backward (DESIGN §2.4): **adds** `dloss · ∂L_syn/∂Π` into `dPi` (pseudo rows get nothing).
 * @param dPi    N × D (adds into).
 * @param dloss  upstream gradient of the scalar (λ_syn in the trainer).
 * @param cache  from the forward.
 * @param Pi, labels, Text, opt  as in the forward.
 */
template <real_scalar T>
void syn_loss_backward(matrix_ref<T> dPi, T dloss, const syn_loss_cache<T>& cache,
                       const_matrix_ref<T> Pi, std::span<const int> labels,
                       const_matrix_ref<T> Text, const syn_loss_options& opt = {}) {
  detail::check_syn_loss("syn_loss_backward", Pi, labels, Text, opt);
  check_shape("syn_loss_backward", "dPi", dPi, Pi.rows, Pi.cols);
  const index_t n = Pi.rows, k = Text.rows, d = Text.cols;
  check_extent("syn_loss_backward", "cache classes", cache.classes, "rows of Text", k);
  check_extent("syn_loss_backward", "cache logits", cache.Z.size(), "N·K", n * k);
  if (cache.seen == 0) return;
  const T inv_tau = T(1 / opt.tau);
  const index_t norm = cache.normalizer;
  const T g = opt.kind == syn_loss_kind::bce ? dloss / T(norm * k) : dloss / T(norm);
  const matrix_ref<const T> Tn(cache.text.data(), k, d);
  alignas(simd_alignment) T dz_stack[64];
  aligned_vector<T> dz_heap(k > 64 ? k : 0);
  T* dz = k > 64 ? dz_heap.data() : dz_stack;
  for (index_t l = 0; l < n; ++l) {
    if (labels[l] < 0) continue;
    const T* z = cache.Z.data() + l * k;
    const auto y = static_cast<index_t>(labels[l]);
    if (opt.kind == syn_loss_kind::bce) {
      for (index_t c = 0; c < k; ++c) dz[c] = g * (sigmoid(z[c]) - (c == y ? T(1) : T(0)));
    } else {
      softmax_row(dz, z, k);
      for (index_t c = 0; c < k; ++c) dz[c] *= g;
      dz[y] -= g;
    }
    // dπ_l += (dz / τ) n(T): K axpys of width D.
    for (index_t c = 0; c < k; ++c) simd::axpy(dz[c] * inv_tau, Tn.row(c), dPi.row(l), d);
  }
}

}  // namespace zss
