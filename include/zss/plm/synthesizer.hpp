// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/plm/synthesizer.hpp
 * The PLM synthesizer (DESIGN.md §2.4): one pre-norm transformer-decoder block that turns each
 * region's pooled student feature into a prototype, forward and backward, with its parameters
 * declared in a caller's `param_buffer`.
 *
 * Legend: B images, N regions (all images; image b owns rows `[ro[b], ro[b+1])`), D width
 * (the CLIP embedding width), H hidden width of the MLP (default 4·D).
 *
 *     a = LN₁(p)                          (N × D)
 *     h = r + CrossAttn(a, memory_b)      memory_b = [c_b ; u_l for l in image b]  (1 + n_b rows)
 *     g = LN₂(h)
 *     o = h + MLP(g)                      MLP = fc2(act(fc1(g))), act = exact GELU by default
 *     π = n(o)                            (row L2 normalisation, nn/normalize.hpp)
 *
 * The residual stream `r` (option `residual`) is
 *  - `query`: r = p, the query's own feature (DESIGN §2.4's block, the transformer default);
 *  - `none`: r = 0, so h = CrossAttn(a, memory_b): the prototype is a function of the teacher
 *    memory, the student feature only choosing (through the attention weights) what to read;
 *  - `teacher`: r = u_l, the region's own teacher token: the block learns a *correction* of what
 *    the teacher says about the region (queries stay the student's features, keys and values the
 *    teacher's CLS and region tokens). With `synthesizer_init::zero_update` the untrained block
 *    returns exactly n(u_l). U is needed even when `region_tokens` is off (then the memory is
 *    the CLS alone, the attention reads c_b whatever the query, and the block is a learned
 *    function of the teacher's u_l and c_b).
 * With the `query` shortcut L_syn can be met by the student's own pooled feature (which L_ce
 * already pulls to the text embeddings of seen classes) and the block may learn to ignore the
 * memory, so pseudo prototypes carry little of the teacher's knowledge about unseen classes;
 * docs/EXPERIMENTS.md measures the three.
 *
 * The memory is the teacher's CLS `c_b` plus, when `region_tokens` is on (default), the
 * teacher's region-pooled tokens `u_l` of the same image; with `c_b` alone the attention is
 * constant (one memory row), which is why the option exists. Teacher outputs are constants:
 * no gradient reaches C or U. All regions of all images go through the projections and the MLP
 * as one batch (Eigen GEMMs over N rows); only the score/softmax/value products are per image.
 *
 * Parameters (declared by `declare_synthesizer_params`, names relative to a prefix):
 *
 * | name | shape | init (`init_synthesizer_params`) |
 * |---|---|---|
 * | ln1.gamma, ln2.gamma | D | 1 |
 * | ln1.beta, ln2.beta | D | 0 |
 * | attn.{q,k,v,o}.weight | D × D | Xavier normal, std √(2/(fan_in + fan_out)) |
 * | attn.{q,k,v,o}.bias, mlp.fc{1,2}.bias | D / H | 0 |
 * | mlp.fc1.weight | H × D | He normal, std √(2/fan_in) (before the GELU/ReLU) |
 * | mlp.fc2.weight | D × H | Xavier normal |
 *
 * Weights are PyTorch-layout (out × in, `y = x Wᵀ + b`). Initial values come from
 * `rng(seed, stream)` with one fixed stream per tensor, so they do not depend on the other
 * contents of the buffer.
 *
 * Threads: the projections and the MLP are split in fixed column panels, the per-image attention
 * over images, LN/normalisation over rows; γ/β gradients are summed in row order. Results are
 * bitwise identical for every `threads` when Eigen is single-threaded
 * (`zss::eigen_single_thread_guard`; see zss/nn/detail/panel_gemm.hpp).
 */
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "zss/core/aligned.hpp"
#include "zss/core/check.hpp"
#include "zss/core/param_buffer.hpp"
#include "zss/core/random.hpp"
#include "zss/core/tensor.hpp"
#include "zss/nn/attention.hpp"
#include "zss/nn/layer_norm.hpp"
#include "zss/nn/linear.hpp"
#include "zss/nn/mlp.hpp"
#include "zss/nn/normalize.hpp"

namespace zss {

/// The residual stream of the block's first sub-layer (see the file comment).
enum class synthesizer_residual {
  query,    ///< h = p + CrossAttn(LN₁(p), memory) (DESIGN §2.4)
  none,     ///< h = CrossAttn(LN₁(p), memory)
  teacher,  ///< h = u_l + CrossAttn(LN₁(p), memory): a correction of the teacher's region token
};
/// Names of the residual streams (configuration text, command line).
inline const enum_names<synthesizer_residual, 3> synthesizer_residual_names{
    {{synthesizer_residual::query, "query"},
     {synthesizer_residual::none, "none"},
     {synthesizer_residual::teacher, "teacher"}}};

/// Options of the synthesizer block (DESIGN §2.4); defaults as documented.
struct synthesizer_options {
  bool region_tokens = true;  ///< memory = [c_b ; u_l of image b] (true) or [c_b] alone (false)
  /// The first sub-layer's residual stream: `query` (DESIGN), `none` or `teacher` (file comment).
  synthesizer_residual residual = synthesizer_residual::query;
  mlp_activation activation = mlp_activation::gelu_erf;  ///< MLP non-linearity
  double layer_norm_eps = 1e-5;                          ///< ε of both layer norms
  double normalize_eps = 1e-12;                          ///< ε of the prototype normalisation
};

/// Views of all synthesizer parameters (read-only).
template <real_scalar T>
struct synthesizer_params {
  layer_norm_params<T> ln1;
  attention_params<T> attn;
  layer_norm_params<T> ln2;
  mlp_params<T> mlp;
};

/// Views of all synthesizer gradient accumulators (adds into).
template <real_scalar T>
struct synthesizer_grads {
  layer_norm_grads<T> ln1;
  attention_grads<T> attn;
  layer_norm_grads<T> ln2;
  mlp_grads<T> mlp;
};

/**
 * Ids of the synthesizer's tensors in a `param_buffer` (from `declare_synthesizer_params`), and
 * the views over them. The views stay valid while the buffer is alive and not re-allocated.
 */
struct synthesizer_param_ids {
  index_t width = 0;   ///< D
  index_t hidden = 0;  ///< H
  index_t ln1_gamma = 0, ln1_beta = 0, q_w = 0, q_b = 0, k_w = 0, k_b = 0, v_w = 0, v_b = 0,
          o_w = 0, o_b = 0, ln2_gamma = 0, ln2_beta = 0, fc1_w = 0, fc1_b = 0, fc2_w = 0, fc2_b = 0;

  /// All tensor ids in declaration order (the order of the init streams).
  std::vector<index_t> all() const {
    return {ln1_gamma, ln1_beta, q_w,       q_b,      k_w,   k_b,   v_w,   v_b,
            o_w,       o_b,      ln2_gamma, ln2_beta, fc1_w, fc1_b, fc2_w, fc2_b};
  }

  template <real_scalar T>
  synthesizer_params<T> params(const param_buffer<T>& buf) const {
    check(buf);
    const index_t d = width, h = hidden;
    auto lin = [&](index_t w, index_t b, index_t rows, index_t cols) {
      return linear_params<T>{matrix_ref<const T>(buf.value(w), rows, cols), buf.value(b)};
    };
    return {{buf.value(ln1_gamma), buf.value(ln1_beta)},
            {lin(q_w, q_b, d, d), lin(k_w, k_b, d, d), lin(v_w, v_b, d, d), lin(o_w, o_b, d, d)},
            {buf.value(ln2_gamma), buf.value(ln2_beta)},
            {lin(fc1_w, fc1_b, h, d), lin(fc2_w, fc2_b, d, h)}};
  }

  template <real_scalar T>
  synthesizer_grads<T> grads(param_buffer<T>& buf) const {
    check(buf);
    const index_t d = width, h = hidden;
    auto lin = [&](index_t w, index_t b, index_t rows, index_t cols) {
      return linear_grads<T>{matrix_ref<T>(buf.grad(w), rows, cols), buf.grad(b)};
    };
    return {{buf.grad(ln1_gamma), buf.grad(ln1_beta)},
            {lin(q_w, q_b, d, d), lin(k_w, k_b, d, d), lin(v_w, v_b, d, d), lin(o_w, o_b, d, d)},
            {buf.grad(ln2_gamma), buf.grad(ln2_beta)},
            {lin(fc1_w, fc1_b, h, d), lin(fc2_w, fc2_b, d, h)}};
  }

 private:
  template <real_scalar T>
  void check(const param_buffer<T>& buf) const {
    require(buf.allocated(), "synthesizer_param_ids: the param_buffer is not allocated yet");
    require(fc2_b < buf.entries().size() && buf.entries()[fc1_w].size == hidden * width,
            "synthesizer_param_ids: ids do not belong to this param_buffer");
  }
};

/**
 * Declares the synthesizer's 16 tensors in `buf` (before `buf.allocate()`), named
 * `prefix + "ln1.gamma"`, `prefix + "attn.q.weight"`, … (see the file comment).
 * @param width  D ≥ 1.
 * @param hidden H ≥ 1, or 0 for the default 4·D.
 * @throws std::invalid_argument on D = 0, an allocated buffer or a name clash.
 */
template <real_scalar T>
synthesizer_param_ids declare_synthesizer_params(param_buffer<T>& buf, index_t width,
                                                 index_t hidden = 0,
                                                 const std::string& prefix = "synthesizer.") {
  require(width > 0, "declare_synthesizer_params: width D must be >= 1");
  if (hidden == 0) hidden = 4 * width;
  synthesizer_param_ids ids;
  ids.width = width;
  ids.hidden = hidden;
  const index_t d = width, h = hidden;
  ids.ln1_gamma = buf.add(prefix + "ln1.gamma", {d});
  ids.ln1_beta = buf.add(prefix + "ln1.beta", {d});
  ids.q_w = buf.add(prefix + "attn.q.weight", {d, d});
  ids.q_b = buf.add(prefix + "attn.q.bias", {d});
  ids.k_w = buf.add(prefix + "attn.k.weight", {d, d});
  ids.k_b = buf.add(prefix + "attn.k.bias", {d});
  ids.v_w = buf.add(prefix + "attn.v.weight", {d, d});
  ids.v_b = buf.add(prefix + "attn.v.bias", {d});
  ids.o_w = buf.add(prefix + "attn.o.weight", {d, d});
  ids.o_b = buf.add(prefix + "attn.o.bias", {d});
  ids.ln2_gamma = buf.add(prefix + "ln2.gamma", {d});
  ids.ln2_beta = buf.add(prefix + "ln2.beta", {d});
  ids.fc1_w = buf.add(prefix + "mlp.fc1.weight", {h, d});
  ids.fc1_b = buf.add(prefix + "mlp.fc1.bias", {h});
  ids.fc2_w = buf.add(prefix + "mlp.fc2.weight", {d, h});
  ids.fc2_b = buf.add(prefix + "mlp.fc2.bias", {d});
  return ids;
}

/// How `init_synthesizer_params` starts the block.
enum class synthesizer_init {
  /// The table in the file comment (Xavier / He normal, the usual transformer init).
  xavier,
  /// As `xavier`, but W_q = W_k = W_v = W_o = I and fc2 = 0: the untrained block returns
  /// `n(Σ_m a_lm · memory_m)` (plus its residual stream), so it starts by reading the teacher,
  /// and directions that L_syn never constrains (the class-own parts of unseen classes'
  /// embeddings, outside the span of the seen text) pass through unchanged instead of through a
  /// random map.
  identity,
  /// As `xavier`, but W_o = 0 and fc2 = 0: both branches start at zero, so the untrained block
  /// passes its residual stream through (π = n(r); with the `teacher` residual, n(u_l)) and
  /// learns a correction of it (the zero-initialised residual branches of ReZero / Fixup).
  zero_update,
};
/// Names of the initialisations (configuration text, command line).
inline const enum_names<synthesizer_init, 3> synthesizer_init_names{
    {{synthesizer_init::xavier, "xavier"},
     {synthesizer_init::identity, "identity"},
     {synthesizer_init::zero_update, "zero-update"}}};

/**
 * Initialises the synthesizer's values in `buf` (see the table in the file comment): γ = 1,
 * β = 0, biases 0, attention and fc2 weights Xavier normal, fc1 weights He normal; tensor `i`
 * (declaration order) draws from `rng(seed, i)`. With `synthesizer_init::identity` the four
 * attention projections are the identity and fc2 is zero instead; with `zero_update` W_o and fc2
 * are zero. Gradients are untouched.
 */
template <real_scalar T>
void init_synthesizer_params(param_buffer<T>& buf, const synthesizer_param_ids& ids,
                             std::uint64_t seed, synthesizer_init mode = synthesizer_init::xavier) {
  require(buf.allocated(), "init_synthesizer_params: allocate the param_buffer first");
  const auto all = ids.all();
  for (index_t s = 0; s < all.size(); ++s) {
    const index_t id = all[s];
    const auto& e = buf.entries()[id];
    T* v = buf.value(id);
    if (id == ids.ln1_gamma || id == ids.ln2_gamma) {
      std::fill_n(v, e.size, T(1));
    } else if (e.shape.size() == 1) {
      std::fill_n(v, e.size, T(0));
    } else {
      const double fan_out = double(e.shape[0]), fan_in = double(e.shape[1]);
      const double sd =
          id == ids.fc1_w ? std::sqrt(2.0 / fan_in) : std::sqrt(2.0 / (fan_in + fan_out));
      rng g(seed, s);
      for (index_t i = 0; i < e.size; ++i) v[i] = static_cast<T>(sd * g.normal<double>());
    }
  }
  if (mode == synthesizer_init::identity) {
    const index_t d = ids.width;
    for (const index_t id : {ids.q_w, ids.k_w, ids.v_w, ids.o_w}) {
      T* v = buf.value(id);
      std::fill_n(v, d * d, T(0));
      for (index_t i = 0; i < d; ++i) v[i * d + i] = T(1);
    }
    std::fill_n(buf.value(ids.fc2_w), ids.width * ids.hidden, T(0));
  }
  if (mode == synthesizer_init::zero_update) {
    std::fill_n(buf.value(ids.o_w), ids.width * ids.width, T(0));
    std::fill_n(buf.value(ids.fc2_w), ids.width * ids.hidden, T(0));
  }
}

/// Forward intermediates (a, h, g, o, memory) and backward scratch; reuse it across steps.
template <real_scalar T>
struct synthesizer_cache {
  layer_norm_cache<T> ln1, ln2;
  attention_cache<T> attn;
  mlp_cache<T> mlp;
  normalize_cache<T> norm;
  aligned_vector<T> memory;             ///< (B + N) × D assembled memory (region tokens on)
  std::vector<index_t> memory_offsets;  ///< B + 1
  aligned_vector<T> a, h, g, o;         ///< N × D each: LN₁(p), residual 1, LN₂(h), output
  aligned_vector<T> attn_out, mlp_out;  ///< N × D forward scratch
  aligned_vector<T> d_o, d_g, d_a;      ///< N × D backward scratch
  index_t rows = 0, width = 0;
};

namespace detail {
template <real_scalar T>
void check_synthesizer_inputs(std::string_view where, const_matrix_ref<T> P, const_matrix_ref<T> C,
                              const_matrix_ref<T> U, std::span<const index_t> region_offsets,
                              const synthesizer_params<T>& params, const synthesizer_options& opt) {
  const index_t d = params.attn.q.W.cols;
  check_extent(where, "columns of P " + shape_string(P.shape()), P.cols, "the synthesizer width D",
               d);
  require(!region_offsets.empty(),
          std::string(where) + ": region_offsets needs B + 1 >= 1 entries");
  const index_t b = region_offsets.size() - 1;
  check_shape(where, "C (teacher CLS)", C, b, d);
  if (opt.region_tokens || opt.residual == synthesizer_residual::teacher)
    check_shape(where, "U (teacher region tokens)", U, P.rows, d);
  detail::check_offsets(where, "region_offsets", region_offsets, P.rows);
}

/// Memory rows per image: [c_b ; u_l…] (region tokens) or [c_b]; returns a view of the memory.
template <real_scalar T>
matrix_ref<const T> assemble_memory(synthesizer_cache<T>& cache, const_matrix_ref<T> C,
                                    const_matrix_ref<T> U, std::span<const index_t> region_offsets,
                                    const synthesizer_options& opt) {
  const index_t images = region_offsets.size() - 1, d = C.cols;
  cache.memory_offsets.resize(images + 1);
  if (!opt.region_tokens) {
    for (index_t b = 0; b <= images; ++b) cache.memory_offsets[b] = b;
    return C;
  }
  const index_t m = images + U.rows;
  cache.memory.resize(m * d);
  index_t r = 0;
  for (index_t b = 0; b < images; ++b) {
    cache.memory_offsets[b] = r;
    std::copy_n(C.row(b), d, cache.memory.data() + (r++) * d);
    for (index_t l = region_offsets[b]; l < region_offsets[b + 1]; ++l)
      std::copy_n(U.row(l), d, cache.memory.data() + (r++) * d);
  }
  cache.memory_offsets[images] = r;
  return {cache.memory.data(), m, d};
}
}  // namespace detail

/**
 * Forward (DESIGN §2.4): prototypes `Π = n(o)` of the regions.
 * @param Pi      N × D prototypes (unit rows; zero rows stay zero).
 * @param cache   filled with everything the backward needs (resized; reuse it).
 * @param P       N × D region features `p_l` (pooled student features), grouped per image.
 * @param C       B × D teacher CLS embeddings `c_b`.
 * @param U       N × D teacher region-pooled tokens `u_l` (same rows as P); ignored (may be
 *                empty) when `opt.region_tokens` is false and the residual is not `teacher`.
 * @param region_offsets B + 1 offsets: image b owns rows `[ro[b], ro[b+1])` of P and U.
 * @param params  views from `synthesizer_param_ids::params`.
 * @throws std::invalid_argument on mismatched shapes or offsets.
 */
template <real_scalar T>
void synthesizer_forward(matrix_ref<T> Pi, synthesizer_cache<T>& cache, const_matrix_ref<T> P,
                         const_matrix_ref<T> C, const_matrix_ref<T> U,
                         std::span<const index_t> region_offsets,
                         const synthesizer_params<T>& params, const synthesizer_options& opt = {},
                         int threads = 0) {
  constexpr const char* where = "synthesizer_forward";
  detail::check_synthesizer_inputs(where, P, C, U, region_offsets, params, opt);
  const index_t n = P.rows, d = P.cols;
  check_shape(where, "Pi", Pi, n, d);
  cache.rows = n;
  cache.width = d;
  for (auto* v : {&cache.a, &cache.h, &cache.g, &cache.o, &cache.attn_out, &cache.mlp_out})
    v->resize(n * d);
  matrix_ref<T> a(cache.a.data(), n, d), h(cache.h.data(), n, d), g(cache.g.data(), n, d),
      o(cache.o.data(), n, d), attn_out(cache.attn_out.data(), n, d),
      mlp_out(cache.mlp_out.data(), n, d);
  const auto memory = detail::assemble_memory(cache, C, U, region_offsets, opt);

  layer_norm_forward(a, cache.ln1, P, params.ln1, T(opt.layer_norm_eps), threads);
  attention_forward(attn_out, cache.attn, matrix_ref<const T>(a), memory, region_offsets,
                    std::span<const index_t>(cache.memory_offsets), params.attn, threads);
  const bool from_p = opt.residual == synthesizer_residual::query;
  const bool from_u = opt.residual == synthesizer_residual::teacher;
  for (index_t i = 0; i < n; ++i)
    for (index_t j = 0; j < d; ++j)
      h(i, j) = (from_p ? P(i, j) : from_u ? U(i, j) : T(0)) + attn_out(i, j);
  layer_norm_forward(g, cache.ln2, matrix_ref<const T>(h), params.ln2, T(opt.layer_norm_eps),
                     threads);
  mlp_forward(mlp_out, cache.mlp, matrix_ref<const T>(g), params.mlp, opt.activation, threads);
  for (index_t i = 0; i < n * d; ++i) cache.o[i] = cache.h[i] + cache.mlp_out[i];
  normalize_rows_forward(Pi, cache.norm, matrix_ref<const T>(o), T(opt.normalize_eps), threads);
}

/**
 * Backward (DESIGN §2.4, §2.1): **adds** `∂L/∂P` into `dP` and every parameter gradient into
 * `grads`, given `dPi = ∂L/∂Π` (from L_syn for seen regions and, for pseudo regions, from the
 * losses that use the prototypes as classifier weights). No gradient reaches C or U.
 * @param dP      N × D (adds into), or null data to skip.
 * @param grads   views from `synthesizer_param_ids::grads`.
 * @param dPi     N × D upstream gradient.
 * @param cache   from the forward (its scratch is overwritten).
 * @param Pi      N × D the forward's output.
 * @param P, C, U, region_offsets, params, opt  as in the forward.
 */
template <real_scalar T>
void synthesizer_backward(matrix_ref<T> dP, const synthesizer_grads<T>& grads,
                          const_matrix_ref<T> dPi, synthesizer_cache<T>& cache,
                          const_matrix_ref<T> Pi, const_matrix_ref<T> P, const_matrix_ref<T> C,
                          const_matrix_ref<T> U, std::span<const index_t> region_offsets,
                          const synthesizer_params<T>& params, const synthesizer_options& opt = {},
                          int threads = 0) {
  constexpr const char* where = "synthesizer_backward";
  detail::check_synthesizer_inputs(where, P, C, U, region_offsets, params, opt);
  const index_t n = P.rows, d = P.cols;
  check_extent(where, "cache rows", cache.rows, "rows of P", n);
  check_shape(where, "dPi", dPi, n, d);
  check_shape(where, "Pi", Pi, n, d);
  cache.d_o.assign(n * d, T(0));
  cache.d_g.assign(n * d, T(0));
  cache.d_a.assign(n * d, T(0));
  matrix_ref<T> d_o(cache.d_o.data(), n, d), d_g(cache.d_g.data(), n, d),
      d_a(cache.d_a.data(), n, d);
  const matrix_ref<const T> a(cache.a.data(), n, d), h(cache.h.data(), n, d),
      g(cache.g.data(), n, d);
  const matrix_ref<const T> memory =
      opt.region_tokens
          ? matrix_ref<const T>(cache.memory.data(), cache.memory.size() / (d ? d : 1), d)
          : C;

  // π = n(o) → do; o = h + MLP(g): dh = do + LN₂ᵀ(MLPᵀ(do)).
  normalize_rows_backward(d_o, dPi, cache.norm, Pi, threads);
  mlp_backward(d_g, grads.mlp, matrix_ref<const T>(d_o), cache.mlp, g, params.mlp, threads);
  layer_norm_backward(d_o, grads.ln2, matrix_ref<const T>(d_g), cache.ln2, h, params.ln2, threads);
  // d_o now holds dh. h = r + Attn(LN₁(p)): dp = LN₁ᵀ(Attnᵀ(dh)) (+ dh when r = p; u_l is a
  // constant).
  attention_backward(d_a, matrix_ref<T>(), grads.attn, matrix_ref<const T>(d_o), cache.attn, a,
                     memory, region_offsets, std::span<const index_t>(cache.memory_offsets),
                     params.attn, threads);
  if (dP.data) check_shape(where, "dP", dP, n, d);
  layer_norm_backward(dP, grads.ln1, matrix_ref<const T>(d_a), cache.ln1, P, params.ln1, threads);
  if (dP.data && opt.residual == synthesizer_residual::query)
    for (index_t i = 0; i < n; ++i) simd::axpy(T(1), d_o.row(i), dP.row(i), d);
}

}  // namespace zss
