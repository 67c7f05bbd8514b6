// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file tests/support/cosine_ce.hpp
 * A small per-pixel softmax cross-entropy over cosine logits with its hand-written gradient,
 * for the encoder's training tests (stands in until zss/loss provides the fused one):
 *   z_ik = s ⟨n(x_i), n(w_k)⟩,  L = mean over rows with y_i ≥ 0 of (lse(z_i) − z_{i,y_i}).
 * Gradient to X only (class embeddings are constants):
 *   dz = (softmax(z) − onehot(y)) / N_valid,  dx̂ = s Σ_k dz_k n(w_k),  dx = (dx̂ − x̂⟨x̂, dx̂⟩)/‖x‖.
 * Computed in double whatever T is.
 */
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace zss::test {

/// Returns the loss; writes ∂L/∂X into dX (overwrites) when dX is not null. X, dX: N × D; Wc: K ×
/// D.
template <class T>
double cosine_ce(const T* X, std::size_t N, std::size_t D, const std::vector<double>& Wc,
                 std::size_t K, const std::vector<std::int32_t>& y, double s, T* dX) {
  std::vector<double> wn(Wc.size());
  for (std::size_t k = 0; k < K; ++k) {
    double n2 = 0;
    for (std::size_t d = 0; d < D; ++d) n2 += Wc[k * D + d] * Wc[k * D + d];
    for (std::size_t d = 0; d < D; ++d) wn[k * D + d] = Wc[k * D + d] / std::sqrt(n2);
  }
  std::size_t valid = 0;
  for (auto l : y) valid += l >= 0;
  double loss = 0;
  std::vector<double> xh(D), z(K), dxh(D);
  for (std::size_t i = 0; i < N; ++i) {
    const T* x = X + i * D;
    if (y[i] < 0) {
      if (dX) std::fill_n(dX + i * D, D, T(0));
      continue;
    }
    double n2 = 0;
    for (std::size_t d = 0; d < D; ++d) n2 += double(x[d]) * double(x[d]);
    const double norm = std::max(std::sqrt(n2), 1e-12);
    for (std::size_t d = 0; d < D; ++d) xh[d] = double(x[d]) / norm;
    double m = -1e300;
    for (std::size_t k = 0; k < K; ++k) {
      double a = 0;
      for (std::size_t d = 0; d < D; ++d) a += xh[d] * wn[k * D + d];
      z[k] = s * a;
      m = std::max(m, z[k]);
    }
    double se = 0;
    for (std::size_t k = 0; k < K; ++k) se += std::exp(z[k] - m);
    const double lse = m + std::log(se);
    loss += lse - z[std::size_t(y[i])];
    if (!dX) continue;
    std::fill(dxh.begin(), dxh.end(), 0.0);
    for (std::size_t k = 0; k < K; ++k) {
      const double dz =
          (std::exp(z[k] - lse) - (k == std::size_t(y[i]) ? 1.0 : 0.0)) / double(valid);
      for (std::size_t d = 0; d < D; ++d) dxh[d] += s * dz * wn[k * D + d];
    }
    double proj = 0;
    for (std::size_t d = 0; d < D; ++d) proj += xh[d] * dxh[d];
    for (std::size_t d = 0; d < D; ++d) dX[i * D + d] = T((dxh[d] - xh[d] * proj) / norm);
  }
  return valid ? loss / double(valid) : 0.0;
}

}  // namespace zss::test
