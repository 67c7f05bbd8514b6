// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file tests/support/clip_reference.hpp
 * Plain-loop references (double) for mini-CLIP's layers, written from the formulas as CLIP's
 * code reads them and sharing nothing with the library: the mean-pooled text encoder, CLIP's
 * attention pooling with a key and a value per memory row, MaskCLIP's dense tokens and the
 * symmetric InfoNCE with queues.
 */
#include <cmath>
#include <cstdint>
#include <vector>

#include "support/nn_reference.hpp"

namespace zss::test::ref {

/// Text encoder: mean of embeddings E (V × e) over each caption, Y = n(x Wᵀ + c).
inline vec text_encoder(const std::vector<std::int32_t>& tokens,
                        const std::vector<std::size_t>& off, const vec& E, size_t e, const vec& W,
                        size_t d, const vec& c) {
  const size_t B = off.size() - 1;
  vec x(B * e, 0.0);
  for (size_t b = 0; b < B; ++b) {
    for (size_t i = off[b]; i < off[b + 1]; ++i)
      for (size_t j = 0; j < e; ++j) x[b * e + j] += E[size_t(tokens[i]) * e + j];
    for (size_t j = 0; j < e; ++j) x[b * e + j] /= double(off[b + 1] - off[b]);
  }
  return normalize_rows(linear(x, B, e, W, d, c), B, d);
}

/// CLIP's attention pooling, one head, keys without bias: per image, memory = [mean; tokens],
/// q = Wq m + bq, k_j = Wk mem_j, v_j = Wv mem_j + bv, y = Wo Σ softmax(⟨q, k_j⟩/√a) v_j + bo.
inline vec attention_pool(const vec& X, size_t B, size_t Q, size_t C, const vec& Wq, const vec& bq,
                          const vec& Wk, const vec& Wv, const vec& bv, size_t a, const vec& Wo,
                          const vec& bo, size_t d) {
  vec Y(B * d);
  for (size_t b = 0; b < B; ++b) {
    vec mem((Q + 1) * C, 0.0);
    for (size_t q = 0; q < Q; ++q)
      for (size_t c = 0; c < C; ++c) {
        mem[(1 + q) * C + c] = X[(b * Q + q) * C + c];
        mem[c] += X[(b * Q + q) * C + c] / double(Q);
      }
    const vec m(mem.begin(), mem.begin() + long(C));
    const vec qv = linear(m, 1, C, Wq, a, bq);
    const vec K = linear(mem, Q + 1, C, Wk, a, {});
    const vec V = linear(mem, Q + 1, C, Wv, a, bv);
    vec s(Q + 1);
    double mx = -1e300;
    for (size_t j = 0; j <= Q; ++j) {
      double t = 0;
      for (size_t i = 0; i < a; ++i) t += qv[i] * K[j * a + i];
      s[j] = t / std::sqrt(double(a));
      mx = std::max(mx, s[j]);
    }
    double z = 0;
    for (auto& v : s) z += (v = std::exp(v - mx));
    vec o(a, 0.0);
    for (size_t j = 0; j <= Q; ++j)
      for (size_t i = 0; i < a; ++i) o[i] += s[j] / z * V[j * a + i];
    const vec y = linear(o, 1, a, Wo, d, bo);
    for (size_t i = 0; i < d; ++i) Y[b * d + i] = y[i];
  }
  return Y;
}

/// MaskCLIP dense tokens: Z = (X Wvᵀ + bv) Woᵀ + bo.
inline vec dense_tokens(const vec& X, size_t n, size_t C, const vec& Wv, const vec& bv, size_t a,
                        const vec& Wo, const vec& bo, size_t d) {
  return linear(linear(X, n, C, Wv, a, bv), n, a, Wo, d, bo);
}

/// Symmetric InfoNCE with logit scale e^theta and queues of extra negatives.
inline double clip_loss(const vec& I, const vec& T, size_t B, size_t d, double theta, const vec& Qt,
                        size_t mt, const vec& Qi, size_t mi) {
  const double s = std::exp(theta);
  auto dir = [&](const vec& A, const vec& Bm, const vec& Qm, size_t m) {
    double sum = 0;
    for (size_t i = 0; i < B; ++i) {
      vec z;
      for (size_t j = 0; j < B + m; ++j) {
        double t = 0;
        for (size_t k = 0; k < d; ++k)
          t += A[i * d + k] * (j < B ? Bm[j * d + k] : Qm[(j - B) * d + k]);
        z.push_back(s * t);
      }
      double mx = -1e300;
      for (double v : z) mx = std::max(mx, v);
      double e = 0;
      for (double v : z) e += std::exp(v - mx);
      sum += mx + std::log(e) - z[i];
    }
    return sum;
  };
  return (dir(I, T, Qt, mt) + dir(T, I, Qi, mi)) / (2.0 * double(B));
}

}  // namespace zss::test::ref
