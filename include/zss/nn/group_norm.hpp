// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/nn/group_norm.hpp
 * Group normalisation (Wu & He 2018) of NHWC feature maps, forward and backward: the optional
 * normalisation layer of the encoder (DESIGN.md §3, `encoder_options::norm_groups`).
 *
 * Legend: B images, P = H·W pixels, C channels in G groups of C/G consecutive channels,
 * N_g = P·C/G values per (image, group).
 *
 *   μ, σ² = mean and biased variance over the N_g values of one (image, group)
 *   r = 1/√(σ² + ε),  x̂ = (x − μ)·r,  y = γ_c x̂ + β_c
 * Backward (adds into dx, dγ, dβ):
 *   dβ_c += Σ_p dy,  dγ_c += Σ_p dy·x̂,  g = dy·γ_c,
 *   dx = r·(g − mean(g) − x̂·mean(g·x̂))            (means over the group's N_g values)
 * Chosen over BatchNorm because it is independent of the batch (per image, so images can run
 * in parallel and training and inference agree); G = 1 is LayerNorm over (P, C), G = C is
 * InstanceNorm. Statistics are accumulated in double (one pass for the sums, exact enough for
 * float activations); ε default 1e-5 as PyTorch.
 */
#include <cmath>
#include <string>
#include <vector>

#include "zss/core/aligned.hpp"
#include "zss/core/check.hpp"
#include "zss/core/parallel.hpp"
#include "zss/core/tensor.hpp"

namespace zss {

/// Per (image, group) statistics saved by the forward: B × G means and reciprocal std devs.
template <real_scalar T>
struct group_norm_cache {
  aligned_vector<T> mean, rstd;  ///< B·G each
  per_thread<T> dparams;         ///< per thread: C dγ then C dβ (workspace of the batch backward)
};

namespace detail {

/// One image: `y` (P × C) from `x` (P × C); writes G means and rstds. `y` may equal `x`.
template <real_scalar T>
void group_norm_forward_image(T* y, T* mean, T* rstd, const T* x, index_t P, index_t C, index_t G,
                              const T* gamma, const T* beta, T eps) noexcept {
  const index_t cg = C / G;
  for (index_t g = 0; g < G; ++g) {
    double s = 0, s2 = 0;
    for (index_t p = 0; p < P; ++p) {
      const T* r = x + p * C + g * cg;
      for (index_t c = 0; c < cg; ++c) {
        s += double(r[c]);
        s2 += double(r[c]) * double(r[c]);
      }
    }
    const double n = double(P * cg), mu = s / n, var = std::max(s2 / n - mu * mu, 0.0);
    mean[g] = T(mu);
    rstd[g] = T(1.0 / std::sqrt(var + double(eps)));
  }
  for (index_t p = 0; p < P; ++p) {
    const T* xr = x + p * C;
    T* yr = y + p * C;
    for (index_t c = 0; c < C; ++c) {
      const index_t g = c / cg;
      yr[c] = (xr[c] - mean[g]) * rstd[g] * gamma[c] + beta[c];
    }
  }
}

/// One image backward; **adds into** `dx` (may be null), `dgamma`, `dbeta` (C each).
template <real_scalar T>
void group_norm_backward_image(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* mean,
                               const T* rstd, index_t P, index_t C, index_t G,
                               const T* gamma) noexcept {
  const index_t cg = C / G;
  for (index_t g = 0; g < G; ++g) {
    double sg = 0, sgx = 0;
    const T mu = mean[g], r = rstd[g];
    for (index_t p = 0; p < P; ++p) {
      const index_t o = p * C + g * cg;
      for (index_t c = 0; c < cg; ++c) {
        const T xh = (x[o + c] - mu) * r;
        const T d = dy[o + c];
        dbeta[g * cg + c] += d;
        dgamma[g * cg + c] += d * xh;
        const double gg = double(d) * double(gamma[g * cg + c]);
        sg += gg;
        sgx += gg * double(xh);
      }
    }
    if (!dx) continue;
    const double n = double(P * cg);
    const T mg = T(sg / n), mgx = T(sgx / n);
    for (index_t p = 0; p < P; ++p) {
      const index_t o = p * C + g * cg;
      for (index_t c = 0; c < cg; ++c) {
        const T xh = (x[o + c] - mu) * r;
        dx[o + c] += r * (dy[o + c] * gamma[g * cg + c] - mg - xh * mgx);
      }
    }
  }
}

inline void group_norm_check_groups(std::string_view where, index_t C, index_t G) {
  require(G > 0 && C % G == 0, std::string(where) + ": channels (" + std::to_string(C) +
                                   ") must be a positive multiple of groups (" + std::to_string(G) +
                                   ")");
}

}  // namespace detail

/**
 * Forward over a batch.
 * @param out    B × H × W × C (may be the same tensor as `in`).
 * @param cache  receives B·G means and rstds.
 * @param in     B × H × W × C.
 * @param gamma, beta  C scales and shifts.
 * @param groups G (divides C).
 * @throws std::invalid_argument on mismatched shapes or groups.
 */
template <real_scalar T>
void group_norm_forward(tensor<T, 4>& out, group_norm_cache<T>& cache, const tensor<T, 4>& in,
                        const T* gamma, const T* beta, index_t groups, T eps = T(1e-5),
                        int threads = 0) {
  const index_t B = in.shape()[0], P = in.shape()[1] * in.shape()[2], C = in.shape()[3];
  detail::group_norm_check_groups("group_norm_forward", C, groups);
  check_shape("group_norm_forward", "out", out, {B, in.shape()[1], in.shape()[2], C});
  require(eps > T(0), "group_norm_forward: eps must be > 0");
  cache.mean.resize(B * groups);
  cache.rstd.resize(B * groups);
  parallel_for(B, threads, [&](index_t b, int) {
    detail::group_norm_forward_image(out.data() + b * P * C, cache.mean.data() + b * groups,
                                     cache.rstd.data() + b * groups, in.data() + b * P * C, P, C,
                                     groups, gamma, beta, eps);
  });
}

/**
 * Backward: **adds into** `din` (or null), `dgamma`, `dbeta` (C each) given `dout`.
 * dγ, dβ are accumulated per thread and added in thread order (deterministic for a fixed count).
 */
template <real_scalar T>
void group_norm_backward(tensor<T, 4>* din, T* dgamma, T* dbeta, const tensor<T, 4>& dout,
                         group_norm_cache<T>& cache, const tensor<T, 4>& in, const T* gamma,
                         index_t groups, int threads = 0) {
  const index_t B = in.shape()[0], P = in.shape()[1] * in.shape()[2], C = in.shape()[3];
  detail::group_norm_check_groups("group_norm_backward", C, groups);
  check_shape("group_norm_backward", "dout", dout, {B, in.shape()[1], in.shape()[2], C});
  if (din) check_shape("group_norm_backward", "din", *din, {B, in.shape()[1], in.shape()[2], C});
  check_extent("group_norm_backward", "cached statistics", cache.mean.size(), "B*groups",
               B * groups);
  threads = resolve_threads(threads);
  if (cache.dparams.threads() != threads || cache.dparams.size() != 2 * C)
    cache.dparams.reset(threads, 2 * C);
  else
    cache.dparams.zero();
  parallel_for(B, threads, [&](index_t b, int t) {
    T* acc = cache.dparams[t];
    detail::group_norm_backward_image(din ? din->data() + b * P * C : nullptr, acc, acc + C,
                                      dout.data() + b * P * C, in.data() + b * P * C,
                                      cache.mean.data() + b * groups,
                                      cache.rstd.data() + b * groups, P, C, groups, gamma);
  });
  for (int t = 0; t < cache.dparams.threads(); ++t) {
    const T* acc = cache.dparams[t];
    for (index_t c = 0; c < C; ++c) {
      dgamma[c] += acc[c];
      dbeta[c] += acc[C + c];
    }
  }
}

}  // namespace zss
