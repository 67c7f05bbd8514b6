// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file tests/support/loss_reference.hpp
 * Plain, unfused references of the losses (DESIGN §2.1, §2.2), written straight from the
 * formulas in double with naive loops: no SIMD, no GEMM, no blocking, no shared code with the
 * library. The forward tests compare the library against these.
 */
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "zss/core/tensor.hpp"

namespace zss::test::ref {

using dmat = std::vector<std::vector<double>>;

template <class T>
dmat to_dmat(matrix_ref<const T> m) {
  dmat r(m.rows, std::vector<double>(m.cols));
  for (index_t i = 0; i < m.rows; ++i)
    for (index_t j = 0; j < m.cols; ++j) r[i][j] = double(m(i, j));
  return r;
}

inline std::vector<double> unit(const std::vector<double>& x, double eps) {
  double n = 0;
  for (double v : x) n += v * v;
  n = std::max(std::sqrt(n), eps);
  std::vector<double> y(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) y[i] = x[i] / n;
  return y;
}

inline double dotd(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

inline double lse(const std::vector<double>& z) {
  double m = -std::numeric_limits<double>::infinity();
  for (double v : z) m = std::max(m, v);
  double s = 0;
  for (double v : z) s += std::exp(v - m);
  return m + std::log(s);
}

/// The class list (rows) of image b: seen then its pseudo classes.
inline dmat classes_of(const dmat& seen, const dmat& pseudo, const std::vector<index_t>& poff,
                       index_t b) {
  dmat W = seen;
  if (!poff.empty())
    for (index_t m = poff[b]; m < poff[b + 1]; ++m) W.push_back(pseudo[m]);
  return W;
}

/// Cosine logits row by row (N rows, K_b entries each).
inline dmat cosine_logits(const dmat& X, const std::vector<index_t>& roff, const dmat& seen,
                          const dmat& pseudo, const std::vector<index_t>& poff, double alpha,
                          double beta, double eps) {
  dmat S(X.size());
  for (index_t b = 0; b + 1 < roff.size(); ++b) {
    const dmat W = classes_of(seen, pseudo, poff, b);
    for (index_t i = roff[b]; i < roff[b + 1]; ++i) {
      const auto x = unit(X[i], eps);
      for (index_t k = 0; k < W.size(); ++k)
        S[i].push_back((k < seen.size() ? alpha : beta) * dotd(x, unit(W[k], eps)));
    }
  }
  return S;
}

/// Weighted softmax cross-entropy with ignore (−1) over given logit rows.
inline double cross_entropy(const dmat& S, const std::vector<int>& y,
                            const std::vector<double>& w) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < S.size(); ++i) {
    if (y[i] < 0) continue;
    const double wi = w.empty() ? 1.0 : w[i];
    num += wi * (lse(S[i]) - S[i][std::size_t(y[i])]);
    den += wi;
  }
  return den > 0 ? num / den : 0.0;
}

/// Sigmoid focal + dice (focal_dice.hpp's definition, written independently).
inline double focal_dice(const dmat& S, const std::vector<int>& y, const std::vector<index_t>& roff,
                         double alpha, double gamma, double smooth, double wf, double wd) {
  double focal = 0, dice = 0;
  int nvalid = 0, nterms = 0;
  for (index_t b = 0; b + 1 < roff.size(); ++b) {
    int nv = 0;
    std::size_t K = 0;
    for (index_t i = roff[b]; i < roff[b + 1]; ++i) K = S[i].size();
    std::vector<double> inter(K, 0), ps(K, 0), ts(K, 0);
    for (index_t i = roff[b]; i < roff[b + 1]; ++i) {
      if (y[i] < 0) continue;
      ++nv;
      double fr = 0;
      for (std::size_t k = 0; k < K; ++k) {
        const double s = S[i][k];
        const double p = 1.0 / (1.0 + std::exp(-s));
        const double t = (std::size_t(y[i]) == k) ? 1.0 : 0.0;
        // log σ(s) = −log(1 + e^{−s}), log σ(−s) = −log(1 + e^{s}), via log1p on the safe side.
        const double logp = s >= 0 ? -std::log1p(std::exp(-s)) : s - std::log1p(std::exp(s));
        const double logq = s >= 0 ? -s - std::log1p(std::exp(-s)) : -std::log1p(std::exp(s));
        const double q = 1.0 / (1.0 + std::exp(s));
        fr += t * (-alpha * std::pow(q, gamma) * logp) +
              (1 - t) * (-(1 - alpha) * std::pow(p, gamma) * logq);
        inter[k] += p * t;
        ps[k] += p;
        ts[k] += t;
      }
      focal += fr / double(K);
    }
    nvalid += nv;
    if (nv == 0) continue;
    for (std::size_t k = 0; k < K; ++k, ++nterms)
      dice += 1 - (2 * inter[k] + smooth) / (ps[k] + ts[k] + smooth);
  }
  if (nvalid == 0) return 0.0;
  return wf * focal / nvalid + wd * dice / nterms;
}

enum class pool { attention, mean, dense, selective };

/// GLM (DESIGN §2.2) from the formulas: R is (B·P) × D, C is B × D, bank rows already normalised.
inline double glm(const dmat& R, index_t P, const dmat& C, const dmat& bank, pool kind, double tau,
                  double rho, double eps) {
  const index_t B = C.size(), D = C[0].size();
  dmat keys;
  for (const auto& c : C) keys.push_back(unit(c, eps));
  for (const auto& v : bank) keys.push_back(v);
  if (kind == pool::dense) {
    double s = 0;
    for (index_t i = 0; i < B * P; ++i) {
      const auto r = unit(R[i], eps);
      std::vector<double> z;
      for (const auto& k : keys) z.push_back(dotd(r, k) / tau);
      s += lse(z) - z[i / P];
    }
    return s / double(B * P);
  }
  double loss = 0;
  for (index_t b = 0; b < B; ++b) {
    std::vector<double> pooled(D, 0.0);
    if (kind == pool::attention) {
      std::vector<double> e(P);
      for (index_t p = 0; p < P; ++p) e[p] = dotd(C[b], R[b * P + p]) / std::sqrt(double(D));
      const double l = lse(e);
      for (index_t p = 0; p < P; ++p)
        for (index_t d = 0; d < D; ++d) pooled[d] += std::exp(e[p] - l) * R[b * P + p][d];
    } else if (kind == pool::mean) {
      for (index_t p = 0; p < P; ++p)
        for (index_t d = 0; d < D; ++d) pooled[d] += R[b * P + p][d] / double(P);
    } else {
      // selective: the ⌈ρP⌉ pixels with the highest cosine to c_b, ties to the lower index.
      index_t k = index_t(std::ceil(rho * double(P) - 1e-9));
      k = std::clamp<index_t>(k, 1, P);
      std::vector<std::pair<double, index_t>> sc;
      for (index_t p = 0; p < P; ++p) sc.push_back({-dotd(unit(R[b * P + p], eps), C[b]), p});
      std::sort(sc.begin(), sc.end());
      for (index_t j = 0; j < k; ++j)
        for (index_t d = 0; d < D; ++d) pooled[d] += R[b * P + sc[j].second][d] / double(k);
    }
    const auto g = unit(pooled, eps);
    std::vector<double> z;
    for (const auto& kk : keys) z.push_back(dotd(g, kk) / tau);
    loss += lse(z) - z[b];
  }
  return loss / double(B);
}

/// Masked region mean.
inline dmat region_pool(const dmat& R, const std::vector<int>& region, index_t L) {
  const index_t D = R.empty() ? 0 : R[0].size();
  dmat out(L, std::vector<double>(D, 0.0));
  std::vector<double> n(L, 0.0);
  for (std::size_t i = 0; i < R.size(); ++i) {
    if (region[i] < 0) continue;
    n[std::size_t(region[i])] += 1;
    for (index_t d = 0; d < D; ++d) out[std::size_t(region[i])][d] += R[i][d];
  }
  for (index_t l = 0; l < L; ++l)
    if (n[l] > 0)
      for (auto& v : out[l]) v /= n[l];
  return out;
}

}  // namespace zss::test::ref

#include "support/random_data.hpp"
#include "zss/core/random.hpp"
#include "zss/loss/cosine_logits.hpp"

namespace zss::test {

/// A random class-set problem: B images with given row counts, Ks seen classes, M_b pseudo
/// classes per image, labels with a fraction ignored, optional row weights.
template <class T>
struct class_problem {
  index_t D = 0;
  std::vector<index_t> roff, poff;
  tensor<T, 2> X, Ts, Ps;
  std::vector<int> labels;
  std::vector<T> weights;

  class_sets<T> sets() const {
    return {std::span<const index_t>(roff), as_matrix(Ts), as_matrix(Ps),
            std::span<const index_t>(poff)};
  }
  matrix_ref<const T> x() const { return as_matrix(X); }
  std::span<const T> w() const { return std::span<const T>(weights); }
  std::span<const int> y() const { return std::span<const int>(labels); }

  template <class U>
  class_problem<U> cast() const {
    class_problem<U> o;
    o.D = D, o.roff = roff, o.poff = poff, o.labels = labels;
    o.X = xt::cast<U>(X), o.Ts = xt::cast<U>(Ts), o.Ps = xt::cast<U>(Ps);
    for (T v : weights) o.weights.push_back(U(v));
    return o;
  }
  // Reference views in double.
  ref::dmat dX() const { return ref::to_dmat<T>(as_matrix(X)); }
  ref::dmat dT() const { return ref::to_dmat<T>(as_matrix(Ts)); }
  ref::dmat dP() const { return ref::to_dmat<T>(as_matrix(Ps)); }
  std::vector<double> dw() const { return std::vector<double>(weights.begin(), weights.end()); }
};

inline class_problem<double> make_class_problem(std::uint64_t seed,
                                                const std::vector<index_t>& rows,
                                                const std::vector<index_t>& pseudo, index_t Ks,
                                                index_t D, double ignore = 0.2,
                                                bool weighted = false) {
  class_problem<double> p;
  rng g(seed);
  p.D = D;
  const index_t B = rows.size();
  p.roff.assign(B + 1, 0);
  for (index_t b = 0; b < B; ++b) p.roff[b + 1] = p.roff[b] + rows[b];
  if (!pseudo.empty()) {
    p.poff.assign(B + 1, 0);
    for (index_t b = 0; b < B; ++b) p.poff[b + 1] = p.poff[b] + pseudo[b];
  }
  const index_t N = p.roff[B], M = p.poff.empty() ? 0 : p.poff[B];
  p.X = normal_matrix<double>(N, D, seed + 1);
  p.Ts = normal_matrix<double>(Ks, D, seed + 2);
  p.Ps = M ? normal_matrix<double>(M, D, seed + 3) : tensor<double, 2>::from_shape({0, D});
  for (index_t b = 0; b < B; ++b) {
    const index_t K = Ks + (pseudo.empty() ? 0 : pseudo[b]);
    for (index_t i = p.roff[b]; i < p.roff[b + 1]; ++i)
      p.labels.push_back(g.uniform<double>() < ignore ? -1 : int(g.below(K)));
  }
  if (weighted)
    for (index_t i = 0; i < N; ++i) p.weights.push_back(g.uniform<double>(0.1, 2.0));
  return p;
}

/**
 * Images `[first, last)` of a problem as a problem of their own (a shard of the batch, as one
 * rank of a data-parallel step sees it): their rows, labels, weights and pseudo classes; the seen
 * classes are shared.
 */
template <class T>
class_problem<T> shard_of(const class_problem<T>& p, index_t first, index_t last) {
  class_problem<T> s;
  s.D = p.D, s.Ts = p.Ts;
  const index_t r0 = p.roff[first], r1 = p.roff[last];
  for (index_t b = first; b <= last; ++b) s.roff.push_back(p.roff[b] - r0);
  const index_t m0 = p.poff.empty() ? 0 : p.poff[first], m1 = p.poff.empty() ? 0 : p.poff[last];
  if (!p.poff.empty())
    for (index_t b = first; b <= last; ++b) s.poff.push_back(p.poff[b] - m0);
  s.X = tensor<T, 2>::from_shape({r1 - r0, p.D});
  std::copy(p.X.data() + r0 * p.D, p.X.data() + r1 * p.D, s.X.data());
  s.Ps = tensor<T, 2>::from_shape({m1 - m0, p.D});
  std::copy(p.Ps.data() + m0 * p.D, p.Ps.data() + m1 * p.D, s.Ps.data());
  s.labels.assign(p.labels.begin() + std::ptrdiff_t(r0), p.labels.begin() + std::ptrdiff_t(r1));
  if (!p.weights.empty())
    s.weights.assign(p.weights.begin() + std::ptrdiff_t(r0),
                     p.weights.begin() + std::ptrdiff_t(r1));
  return s;
}

/// All entries of a tensor are finite.
template <class E>
bool all_finite(const E& e) {
  for (auto v : e)
    if (!std::isfinite(double(v))) return false;
  return true;
}

}  // namespace zss::test
