// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file tests/support/nn_reference.hpp
 * Plain-loop references (double, unfused, one output element at a time) for the synthesizer's
 * layers: linear, layer norm, activations, MLP, grouped cross-attention, BCE, the synthesizer
 * block and L_syn. Written from the formulas in DESIGN.md §2.1/§2.4, independent of the library
 * code; matrices are row-major `std::vector<double>`.
 */
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <iterator>
#include <numbers>
#include <vector>

namespace zss::test::ref {

using vec = std::vector<double>;
using std::size_t;

/// Y (n × out) = X (n × in) Wᵀ (W: out × in) + b (b may be empty).
inline vec linear(const vec& X, size_t n, size_t in, const vec& W, size_t out, const vec& b) {
  vec Y(n * out);
  for (size_t i = 0; i < n; ++i)
    for (size_t o = 0; o < out; ++o) {
      double s = b.empty() ? 0.0 : b[o];
      for (size_t j = 0; j < in; ++j) s += X[i * in + j] * W[o * in + j];
      Y[i * out + o] = s;
    }
  return Y;
}

inline vec layer_norm(const vec& X, size_t n, size_t d, const vec& gamma, const vec& beta,
                      double eps) {
  vec Y(n * d);
  for (size_t i = 0; i < n; ++i) {
    double mu = 0, var = 0;
    for (size_t j = 0; j < d; ++j) mu += X[i * d + j];
    mu /= double(d);
    for (size_t j = 0; j < d; ++j) var += (X[i * d + j] - mu) * (X[i * d + j] - mu);
    var /= double(d);
    for (size_t j = 0; j < d; ++j)
      Y[i * d + j] = gamma[j] * (X[i * d + j] - mu) / std::sqrt(var + eps) + beta[j];
  }
  return Y;
}

enum class act { gelu_erf, gelu_tanh, relu };

inline double activation(act a, double x) {
  switch (a) {
    case act::gelu_erf: {  // x Φ(x), Φ the standard normal CDF
      const double cdf = 0.5 * std::erfc(-x / std::sqrt(2.0));
      return x * cdf;
    }
    case act::gelu_tanh:
      return 0.5 * x *
             (1 + std::tanh(std::sqrt(2 / std::numbers::pi) * (x + 0.044715 * x * x * x)));
    case act::relu:
    default:
      return x > 0 ? x : 0;
  }
}

/// fc2(act(fc1(X))).
inline vec mlp(const vec& X, size_t n, size_t d, const vec& W1, const vec& b1, size_t h,
               const vec& W2, const vec& b2, size_t e, act a) {
  vec H = linear(X, n, d, W1, h, b1);
  for (auto& x : H) x = activation(a, x);
  return linear(H, n, h, W2, e, b2);
}

/// Grouped single-head attention, one query row and one output at a time.
inline vec attention(const vec& X, size_t n, size_t d, const vec& Mem, size_t m, size_t f,
                     const std::vector<size_t>& qoff, const std::vector<size_t>& moff,
                     const vec& Wq, const vec& bq, const vec& Wk, const vec& bk, const vec& Wv,
                     const vec& bv, const vec& Wo, const vec& bo, size_t a, size_t e) {
  const vec Q = linear(X, n, d, Wq, a, bq), K = linear(Mem, m, f, Wk, a, bk),
            V = linear(Mem, m, f, Wv, a, bv);
  vec O(n * a, 0.0);
  for (size_t b = 0; b + 1 < qoff.size(); ++b)
    for (size_t i = qoff[b]; i < qoff[b + 1]; ++i) {
      std::vector<double> s;
      for (size_t j = moff[b]; j < moff[b + 1]; ++j) {
        double dot = 0;
        for (size_t c = 0; c < a; ++c) dot += Q[i * a + c] * K[j * a + c];
        s.push_back(dot / std::sqrt(double(a)));
      }
      const double mx = *std::max_element(s.begin(), s.end());
      double z = 0;
      for (auto& x : s) z += (x = std::exp(x - mx));
      for (size_t j = moff[b]; j < moff[b + 1]; ++j)
        for (size_t c = 0; c < a; ++c) O[i * a + c] += s[j - moff[b]] / z * V[j * a + c];
    }
  return linear(O, n, a, Wo, e, bo);
}

/// Mean BCE on logits, written as −y log σ(z) − (1−y) log(1 − σ(z)) (moderate z only).
inline double bce_mean(const vec& Z, const vec& Y) {
  double s = 0;
  for (size_t i = 0; i < Z.size(); ++i) {
    const double p = 1 / (1 + std::exp(-Z[i]));
    s += -Y[i] * std::log(p) - (1 - Y[i]) * std::log(1 - p);
  }
  return Z.empty() ? 0.0 : s / double(Z.size());
}

inline vec normalize_rows(const vec& X, size_t n, size_t d, double eps = 1e-12) {
  vec Y(X);
  for (size_t i = 0; i < n; ++i) {
    double s = 0;
    for (size_t j = 0; j < d; ++j) s += X[i * d + j] * X[i * d + j];
    const double norm = std::max(std::sqrt(s), eps);
    for (size_t j = 0; j < d; ++j) Y[i * d + j] /= norm;
  }
  return Y;
}

/// All synthesizer parameters as plain vectors (PyTorch layout).
struct synth_params {
  size_t d = 0, h = 0;
  vec ln1_g, ln1_b, Wq, bq, Wk, bk, Wv, bv, Wo, bo, ln2_g, ln2_b, W1, b1, W2, b2;
};

/// The residual stream of the first sub-layer: r = p (query), 0 (none) or u_l (teacher).
enum class residual { query, none, teacher };

/// The block of DESIGN §2.4, unfused: returns π (n × d); `o` receives the unnormalised output;
/// h = r + CrossAttn(LN(p), memory) with r chosen by `res`.
inline vec synthesizer(const vec& P, size_t n, const vec& C, const vec& U,
                       const std::vector<size_t>& roff, const synth_params& p, bool region_tokens,
                       act a, double ln_eps, vec* o_out = nullptr, residual res = residual::query) {
  const size_t d = p.d, B = roff.size() - 1;
  vec mem;
  std::vector<size_t> moff{0};
  for (size_t b = 0; b < B; ++b) {
    mem.insert(mem.end(), C.begin() + long(b * d), C.begin() + long((b + 1) * d));
    if (region_tokens)
      for (size_t l = roff[b]; l < roff[b + 1]; ++l)
        mem.insert(mem.end(), U.begin() + long(l * d), U.begin() + long((l + 1) * d));
    moff.push_back(mem.size() / d);
  }
  const vec A = layer_norm(P, n, d, p.ln1_g, p.ln1_b, ln_eps);
  const vec At = attention(A, n, d, mem, mem.size() / d, d, roff, moff, p.Wq, p.bq, p.Wk, p.bk,
                           p.Wv, p.bv, p.Wo, p.bo, d, d);
  vec H = res == residual::query ? P : res == residual::teacher ? U : vec(P.size(), 0.0);
  for (size_t i = 0; i < H.size(); ++i) H[i] += At[i];
  const vec G = layer_norm(H, n, d, p.ln2_g, p.ln2_b, ln_eps);
  const vec M = mlp(G, n, d, p.W1, p.b1, p.h, p.W2, p.b2, d, a);
  vec O(H);
  for (size_t i = 0; i < O.size(); ++i) O[i] += M[i];
  if (o_out) *o_out = O;
  return normalize_rows(O, n, d);
}

/// L_syn of DESIGN §2.4; `ce` selects the softmax variant.
inline double syn_loss(const vec& Pi, size_t n, size_t d, const std::vector<int>& labels,
                       const vec& Text, size_t k, double tau, double delta, bool ce) {
  const vec Tn = normalize_rows(Text, k, d);
  double s = 0;
  size_t seen = 0;
  for (size_t l = 0; l < n; ++l) {
    if (labels[l] < 0) continue;
    ++seen;
    vec z(k);
    for (size_t c = 0; c < k; ++c) {
      double dot = 0;
      for (size_t j = 0; j < d; ++j) dot += Pi[l * d + j] * Tn[c * d + j];
      z[c] = dot / tau - delta;
    }
    if (ce) {
      double mx = *std::max_element(z.begin(), z.end()), sum = 0;
      for (double x : z) sum += std::exp(x - mx);
      s += mx + std::log(sum) - z[size_t(labels[l])];
    } else {
      vec y(k, 0.0);
      y[size_t(labels[l])] = 1;
      s += bce_mean(z, y) * double(k);
    }
  }
  if (seen == 0) return 0;
  return ce ? s / double(seen) : s / double(seen * k);
}

}  // namespace zss::test::ref

namespace zss::test {

/// Any range of numbers as a `std::vector<double>`.
template <class Range>
std::vector<double> to_double(const Range& r) {
  std::vector<double> v(static_cast<std::size_t>(std::distance(std::begin(r), std::end(r))));
  std::size_t i = 0;
  for (const auto& x : r) v[i++] = static_cast<double>(x);
  return v;
}

/// max |a − b| / max(1, max |b|): the error of a result against a reference.
template <class A>
double scaled_max_error(const A& a, const std::vector<double>& b) {
  double err = 0, scale = 1;
  auto ia = std::begin(a);
  for (std::size_t i = 0; i < b.size(); ++i, ++ia) {
    err = std::max(err, std::abs(double(*ia) - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  return err / scale;
}

/// Tolerance of a forward against its double reference: float rounding or double rounding.
template <class T>
constexpr double forward_tol = sizeof(T) == 4 ? 2e-5 : 1e-12;

}  // namespace zss::test
