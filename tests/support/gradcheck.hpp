// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file tests/support/gradcheck.hpp
 * Central finite differences in double and the relative error used by every gradient test:
 * ‖g − ĝ‖ / ‖g + ĝ‖ (0 when both are 0). Each gradient test asserts < 1e-6.
 */
#include <cmath>
#include <functional>
#include <vector>

namespace zss::test {

/**
 * Numerical gradient of `loss()` with respect to the `n` values at `x` (perturbed in place and
 * restored): (L(x + h e_i) − L(x − h e_i)) / 2h.
 */
inline std::vector<double> numeric_gradient(const std::function<double()>& loss, double* x,
                                            std::size_t n, double h = 1e-6) {
  std::vector<double> g(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double saved = x[i];
    x[i] = saved + h;
    const double lp = loss();
    x[i] = saved - h;
    const double lm = loss();
    x[i] = saved;
    g[i] = (lp - lm) / (2 * h);
  }
  return g;
}

/// ‖a − b‖ / ‖a + b‖, 0 when both are zero.
template <class A, class B>
double relative_error(const A& a, const B& b) {
  double num = 0, den = 0;
  auto ia = std::begin(a);
  for (auto ib = std::begin(b); ib != std::end(b); ++ia, ++ib) {
    const double x = static_cast<double>(*ia), y = static_cast<double>(*ib);
    num += (x - y) * (x - y);
    den += (x + y) * (x + y);
  }
  if (den == 0) return num == 0 ? 0.0 : 1.0;
  return std::sqrt(num / den);
}

}  // namespace zss::test
