// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/nn/mlp.hpp
 * Two-layer perceptron `Y = act(X W₁ᵀ + b₁) W₂ᵀ + b₂`, forward and backward, and its
 * element-wise activations (DESIGN.md §2.1, the feed-forward half of the synthesizer, §2.4).
 *
 * Legend: N rows, D input width, H hidden width, E output width (E = D in the synthesizer).
 *
 * Activations (`mlp_activation`):
 *  - `gelu_erf` (default): `x Φ(x) = ½x(1 + erf(x/√2))`, the exact GELU (PyTorch's `nn.GELU()`
 *    default). Derivative `Φ(x) + x φ(x)`.
 *  - `gelu_tanh`: `½x(1 + tanh(√(2/π)(x + 0.044715x³)))` (GPT-2, llm.c; `approximate='tanh'`).
 *  - `relu`: `max(x, 0)`; derivative 1 for x > 0, else 0 (0 at the kink).
 * Vector lanes use xsimd's `erf`/`tanh`/`exp`, the tail `std::` functions: a few ulps apart from
 * the plain formulas, never dependent on threads.
 *
 * The cache keeps the pre-activation `A = X W₁ᵀ + b₁` and the hidden `Z = act(A)` (N × H each)
 * and a scratch buffer the backward writes into (so the backward takes the cache by reference).
 */
#include <cmath>
#include <numbers>

#include "zss/core/aligned.hpp"
#include "zss/core/check.hpp"
#include "zss/core/option_fields.hpp"
#include "zss/core/simd.hpp"
#include "zss/core/tensor.hpp"
#include "zss/nn/linear.hpp"

namespace zss {

/// The MLP's non-linearity.
enum class mlp_activation {
  gelu_erf,   ///< exact GELU, x Φ(x) (default)
  gelu_tanh,  ///< tanh approximation of GELU
  relu,       ///< max(x, 0)
};
/// Names of the activations (configuration text, command line).
inline const enum_names<mlp_activation, 3> mlp_activation_names{
    {{mlp_activation::gelu_erf, "gelu"},
     {mlp_activation::gelu_tanh, "gelu-tanh"},
     {mlp_activation::relu, "relu"}}};

namespace detail {
template <real_scalar T>
inline constexpr T gelu_tanh_c = T(0.044715);
template <real_scalar T>
inline constexpr T sqrt_2_over_pi = T(0.7978845608028654);  // √(2/π)

/// act(a) for one scalar (also the tail of the vector loop).
template <real_scalar T>
inline T activation_value(mlp_activation act, T a) noexcept {
  switch (act) {
    case mlp_activation::gelu_erf:
      return T(0.5) * a * (T(1) + std::erf(a * std::numbers::sqrt2_v<T> / T(2)));
    case mlp_activation::gelu_tanh:
      return T(0.5) * a * (T(1) + std::tanh(sqrt_2_over_pi<T> * (a + gelu_tanh_c<T> * a * a * a)));
    case mlp_activation::relu:
    default:
      return a > T(0) ? a : T(0);
  }
}

/// act'(a) for one scalar.
template <real_scalar T>
inline T activation_derivative(mlp_activation act, T a) noexcept {
  switch (act) {
    case mlp_activation::gelu_erf: {
      const T cdf = T(0.5) * (T(1) + std::erf(a * std::numbers::sqrt2_v<T> / T(2)));
      const T pdf =
          std::exp(T(-0.5) * a * a) * (std::numbers::inv_sqrtpi_v<T> / std::numbers::sqrt2_v<T>);
      return cdf + a * pdf;
    }
    case mlp_activation::gelu_tanh: {
      const T th = std::tanh(sqrt_2_over_pi<T> * (a + gelu_tanh_c<T> * a * a * a));
      return T(0.5) * (T(1) + th) + T(0.5) * a * (T(1) - th * th) * sqrt_2_over_pi<T> *
                                        (T(1) + T(3) * gelu_tanh_c<T> * a * a);
    }
    case mlp_activation::relu:
    default:
      return a > T(0) ? T(1) : T(0);
  }
}
}  // namespace detail

/// `z = act(a)` over `n` values (`z` may equal `a`).
template <real_scalar T>
void activation_forward(T* z, const T* a, index_t n, mlp_activation act) noexcept {
  using B = simd::batch<T>;
  constexpr index_t W = simd::width<T>;
  const index_t vec_end = n - n % W;  // explicit bounds: GCC 12 mis-bounds `i + W <= n` tails
  index_t i = 0;
  const B half(T(0.5)), one(T(1));
  switch (act) {
    case mlp_activation::gelu_erf: {
      const B s(std::numbers::sqrt2_v<T> / T(2));
      for (; i < vec_end; i += W) {
        const B x = B::load_unaligned(a + i);
        (half * x * (one + xsimd::erf(x * s))).store_unaligned(z + i);
      }
      break;
    }
    case mlp_activation::gelu_tanh: {
      const B k(detail::sqrt_2_over_pi<T>), c(detail::gelu_tanh_c<T>);
      for (; i < vec_end; i += W) {
        const B x = B::load_unaligned(a + i);
        (half * x * (one + xsimd::tanh(k * (x + c * x * x * x)))).store_unaligned(z + i);
      }
      break;
    }
    case mlp_activation::relu:
    default:
      for (; i < vec_end; i += W)
        xsimd::max(B::load_unaligned(a + i), B(T(0))).store_unaligned(z + i);
      break;
  }
  for (i = vec_end; i < n; ++i) z[i] = detail::activation_value(act, a[i]);
}

/// `da = dz ⊙ act'(a)` over `n` values (`da` may equal `dz`; overwrites `da`).
template <real_scalar T>
void activation_backward(T* da, const T* dz, const T* a, index_t n, mlp_activation act) noexcept {
  using B = simd::batch<T>;
  constexpr index_t W = simd::width<T>;
  const index_t vec_end = n - n % W;  // explicit bounds: GCC 12 mis-bounds `i + W <= n` tails
  index_t i = 0;
  const B half(T(0.5)), one(T(1));
  switch (act) {
    case mlp_activation::gelu_erf: {
      const B s(std::numbers::sqrt2_v<T> / T(2));
      const B p(std::numbers::inv_sqrtpi_v<T> / std::numbers::sqrt2_v<T>);
      for (; i < vec_end; i += W) {
        const B x = B::load_unaligned(a + i);
        const B d = half * (one + xsimd::erf(x * s)) + x * p * xsimd::exp(-half * x * x);
        (B::load_unaligned(dz + i) * d).store_unaligned(da + i);
      }
      break;
    }
    case mlp_activation::gelu_tanh: {
      const B k(detail::sqrt_2_over_pi<T>), c(detail::gelu_tanh_c<T>),
          c3(T(3) * detail::gelu_tanh_c<T>);
      for (; i < vec_end; i += W) {
        const B x = B::load_unaligned(a + i);
        const B th = xsimd::tanh(k * (x + c * x * x * x));
        const B d = half * (one + th) + half * x * (one - th * th) * k * (one + c3 * x * x);
        (B::load_unaligned(dz + i) * d).store_unaligned(da + i);
      }
      break;
    }
    case mlp_activation::relu:
    default:
      for (; i < vec_end; i += W) {
        const B x = B::load_unaligned(a + i);
        xsimd::select(x > B(T(0)), B::load_unaligned(dz + i), B(T(0))).store_unaligned(da + i);
      }
      break;
  }
  for (i = vec_end; i < n; ++i) da[i] = dz[i] * detail::activation_derivative(act, a[i]);
}

/// Views of the two layers' parameters: fc1 (W₁ H × D, b₁ H), fc2 (W₂ E × H, b₂ E).
template <real_scalar T>
struct mlp_params {
  linear_params<T> fc1, fc2;
};

/// Gradient accumulators of the two layers (adds into; null views skip).
template <real_scalar T>
struct mlp_grads {
  linear_grads<T> fc1, fc2;
};

/// What the backward needs: pre-activation and hidden (N × H each), plus backward scratch.
template <real_scalar T>
struct mlp_cache {
  aligned_vector<T> pre;      ///< N × H, A = X W₁ᵀ + b₁
  aligned_vector<T> hidden;   ///< N × H, Z = act(A)
  aligned_vector<T> scratch;  ///< N × H, backward's dZ / dA
  index_t rows = 0, width = 0;
  mlp_activation act = mlp_activation::gelu_erf;
};

/**
 * Forward: `Y = act(X W₁ᵀ + b₁) W₂ᵀ + b₂`.
 * @param Y      N × E output (must not alias X).
 * @param cache  filled with A and Z (resized; reuse to avoid allocation).
 * @param X      N × D input.
 * @param params fc1 (H × D, H), fc2 (E × H, E).
 * @param act    the activation (default exact GELU).
 * @throws std::invalid_argument when the shapes disagree.
 */
template <real_scalar T>
void mlp_forward(matrix_ref<T> Y, mlp_cache<T>& cache, const_matrix_ref<T> X,
                 const mlp_params<T>& params, mlp_activation act = mlp_activation::gelu_erf,
                 int threads = 0) {
  const index_t h = params.fc1.W.rows;
  check_extent("mlp_forward", "columns of W2 " + shape_string(params.fc2.W.shape()),
               params.fc2.W.cols, "rows of W1 " + shape_string(params.fc1.W.shape()), h);
  cache.pre.resize(X.rows * h);
  cache.hidden.resize(X.rows * h);
  cache.rows = X.rows;
  cache.width = h;
  cache.act = act;
  matrix_ref<T> A(cache.pre.data(), X.rows, h), Z(cache.hidden.data(), X.rows, h);
  linear_forward(A, X, params.fc1, threads);
  activation_forward(Z.data, A.data, X.rows * h, act);
  linear_forward(Y, matrix_ref<const T>(Z), params.fc2, threads);
}

/**
 * Backward (DESIGN §2.1): **adds** `∂L/∂X` into `dX` and the parameter gradients into `grads`.
 * @param dX     N × D (adds into), or null data to skip.
 * @param grads  gradient accumulators of fc1 and fc2.
 * @param dY     N × E upstream gradient.
 * @param cache  from the forward (its scratch is overwritten).
 * @param X      N × D forward input.
 * @param params the forward's parameters.
 */
template <real_scalar T>
void mlp_backward(matrix_ref<T> dX, const mlp_grads<T>& grads, const_matrix_ref<T> dY,
                  mlp_cache<T>& cache, const_matrix_ref<T> X, const mlp_params<T>& params,
                  int threads = 0) {
  const index_t h = params.fc1.W.rows;
  check_extent("mlp_backward", "cache rows", cache.rows, "rows of X", X.rows);
  check_extent("mlp_backward", "cache hidden width", cache.width, "rows of W1", h);
  cache.scratch.assign(X.rows * h, T(0));
  matrix_ref<T> dZ(cache.scratch.data(), X.rows, h);
  linear_backward(dZ, grads.fc2, dY, matrix_ref<const T>(cache.hidden.data(), X.rows, h),
                  params.fc2, threads);
  activation_backward(dZ.data, dZ.data, cache.pre.data(), X.rows * h, cache.act);  // dZ → dA
  linear_backward(dX, grads.fc1, matrix_ref<const T>(dZ), X, params.fc1, threads);
}

}  // namespace zss
