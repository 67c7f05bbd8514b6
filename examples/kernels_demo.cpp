// SPDX-License-Identifier: Apache-2.0
// zss-kernels-demo: runs the core kernels on seeded data, checks each against its scalar
// reference and prints what it did. A small stand-in for the end-to-end example.
#include <chrono>
#include <cmath>
#include <cstdio>

#include "zss/zss.hpp"

int main() {
  using clock = std::chrono::steady_clock;
  const zss::index_t n = 4096, d = 512;
  std::printf("zss %s  simd=%s (%zu float lanes)  xsimd %s  threads=%d\n", zss::version_string,
              zss::simd::arch_name().c_str(), zss::simd::width<float>,
              zss::simd::xsimd_version().c_str(), zss::resolve_threads(0));

  zss::rng g(2024);
  zss::tensor<float, 2> X = zss::tensor<float, 2>::from_shape({n, d});
  for (auto& x : X) x = g.normal<float>();

  const auto t0 = clock::now();
  zss::tensor<float, 2> Y = zss::normalize_rows(X, zss::normalize_eps<float>, 0);
  const double ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count();
  double worst = 0;
  for (zss::index_t i = 0; i < n; ++i)
    worst =
        std::max(worst, std::abs(1.0 - std::sqrt(double(zss::simd::squared_norm(&Y(i, 0), d)))));
  std::printf("normalize_rows  %zux%zu in %.2f ms (%.1f GB/s); max | ||y|| - 1 | = %.2e\n", n, d,
              ms, 2.0 * n * d * sizeof(float) / ms * 1e-6, worst);

  const float fast = zss::simd::dot(&X(0, 0), &X(1, 0), d),
              slow = zss::simd::ref::dot(&X(0, 0), &X(1, 0), d);
  std::printf("dot(x0, x1)     simd %.6f  scalar %.6f\n", fast, slow);

  std::vector<float> logits(40);
  for (auto& l : logits) l = g.normal<float>(0.0f, 3.0f);
  std::vector<float> p(40);
  const float lse = zss::softmax_row(p.data(), logits.data(), 40);
  std::printf("softmax(40)     lse %.5f  argmax %zu (scalar %zu)  p[argmax] %.4f\n", lse,
              zss::simd::argmax(logits.data(), 40), zss::simd::ref::argmax(logits.data(), 40),
              p[zss::simd::argmax(p.data(), 40)]);
  return 0;
}
