// SPDX-License-Identifier: Apache-2.0
// Tests for zss/core/simd.hpp: every kernel against its scalar reference.
#include <doctest/doctest.h>

#include <vector>

#include <cmath>
#include <limits>

#include "support/random_data.hpp"
#include "zss/core/simd.hpp"

namespace test_core_simd {

using namespace zss;

TEST_CASE_TEMPLATE("reductions equal the scalar reference exactly on integer-valued inputs", T,
                   float, double) {
  for (index_t n : test::kernel_sizes()) {
    CAPTURE(n);
    auto a = test::integer_vector<T>(n, 1 + n), b = test::integer_vector<T>(n, 1000 + n);
    CHECK(simd::dot(a.data(), b.data(), n) == simd::ref::dot(a.data(), b.data(), n));
    CHECK(simd::squared_norm(a.data(), n) == simd::ref::squared_norm(a.data(), n));
    CHECK(simd::squared_distance(a.data(), b.data(), n) ==
          simd::ref::squared_distance(a.data(), b.data(), n));
    CHECK(simd::max_value(a.data(), n) == simd::ref::max_value(a.data(), n));
    // Unaligned start: the kernels accept any pointer.
    if (n > 1) {
      CHECK(simd::dot(a.data() + 1, b.data() + 1, n - 1) ==
            simd::ref::dot(a.data() + 1, b.data() + 1, n - 1));
    }
  }
}

TEST_CASE_TEMPLATE("reductions match the scalar reference on random inputs", T, float, double) {
  const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-13;
  for (index_t n : test::kernel_sizes()) {
    CAPTURE(n);
    auto a = test::uniform_vector<T>(n, 7 + n), b = test::uniform_vector<T>(n, 77 + n);
    // Error bound of a sum of n products: ~ n·u·Σ|a_i b_i|.
    double scale = 0;
    for (index_t i = 0; i < n; ++i) scale += std::abs(double(a[i]) * double(b[i]));
    CHECK(std::abs(double(simd::dot(a.data(), b.data(), n)) -
                   double(simd::ref::dot(a.data(), b.data(), n))) <= tol * (scale + 1));
    CHECK(double(simd::squared_distance(a.data(), b.data(), n)) ==
          doctest::Approx(double(simd::ref::squared_distance(a.data(), b.data(), n))).epsilon(tol));
    CHECK(double(simd::squared_norm(a.data(), n)) ==
          doctest::Approx(double(simd::ref::squared_norm(a.data(), n))).epsilon(tol));
  }
}

TEST_CASE_TEMPLATE("axpy and scale equal the scalar reference", T, float, double) {
  for (index_t n : test::kernel_sizes()) {
    CAPTURE(n);
    auto x = test::integer_vector<T>(n, 3 + n), y = test::integer_vector<T>(n, 33 + n);
    auto y_ref = y;
    simd::axpy(T(3), x.data(), y.data(), n);
    simd::ref::axpy(T(3), x.data(), y_ref.data(), n);
    CHECK(y == y_ref);
    simd::scale(T(-2), y.data(), n);
    simd::ref::scale(T(-2), y_ref.data(), n);
    CHECK(y == y_ref);
    // Random values: fma vs separate multiply-add may differ in the last bit only.
    auto u = test::uniform_vector<T>(n, 5 + n), v = test::uniform_vector<T>(n, 55 + n), v_ref = v;
    simd::axpy(T(0.37), u.data(), v.data(), n);
    simd::ref::axpy(T(0.37), u.data(), v_ref.data(), n);
    for (index_t i = 0; i < n; ++i)
      CHECK(double(v[i]) ==
            doctest::Approx(double(v_ref[i])).epsilon(4 * std::numeric_limits<T>::epsilon()));
  }
}

TEST_CASE_TEMPLATE("argmin and argmax: ties go to the lowest index", T, float, double) {
  for (index_t n : test::kernel_sizes()) {
    CAPTURE(n);
    // Small integer range: many ties.
    auto x = test::integer_vector<T>(n, 11 + n, 3);
    CHECK(simd::argmin(x.data(), n) == simd::ref::argmin(x.data(), n));
    CHECK(simd::argmax(x.data(), n) == simd::ref::argmax(x.data(), n));
    // All equal: index 0.
    aligned_vector<T> c(n, T(2));
    CHECK(simd::argmin(c.data(), n) == 0);
    CHECK(simd::argmax(c.data(), n) == 0);
    // Extremum planted at every position, duplicated later: the first one wins.
    for (index_t p = 0; p < n; ++p) {
      aligned_vector<T> z(n, T(0));
      z[p] = T(-5);
      if (p + 3 < n) z[p + 3] = T(-5);
      CHECK(simd::argmin(z.data(), n) == p);
      for (auto& e : z) e = -e;
      CHECK(simd::argmax(z.data(), n) == p);
    }
    // Strictly decreasing input updates the best in every block.
    aligned_vector<T> d(n);
    for (index_t i = 0; i < n; ++i) d[i] = T(n - i);
    CHECK(simd::argmin(d.data(), n) == n - 1);
    CHECK(simd::argmax(d.data(), n) == 0);
  }
  const T inf = std::numeric_limits<T>::infinity();
  aligned_vector<T> w = {inf, inf, T(1), -inf, -inf};
  CHECK(simd::argmin(w.data(), w.size()) == 3);
  CHECK(simd::argmax(w.data(), w.size()) == 0);
}

TEST_CASE_TEMPLATE("reduce_add, reduce_min and reduce_max over one batch", T, float, double) {
  constexpr index_t W = simd::width<T>;
  alignas(64) T lanes[W];
  T sum = 0, mn = 1e9, mx = -1e9;
  for (index_t i = 0; i < W; ++i) {
    lanes[i] = T((i * 7) % 5) - T(2);
    sum += lanes[i];
    mn = std::min(mn, lanes[i]);
    mx = std::max(mx, lanes[i]);
  }
  auto b = simd::batch<T>::load_aligned(lanes);
  CHECK(simd::reduce_add(b) == sum);
  CHECK(simd::reduce_min(b) == mn);
  CHECK(simd::reduce_max(b) == mx);
  CHECK(!simd::arch_name().empty());
  CHECK(simd::xsimd_version().rfind("8.", 0) == 0);
}

TEST_CASE_TEMPLATE("load_partial and store_partial touch exactly w elements", T, float, double) {
  constexpr index_t W = simd::width<T>;
  // Guard elements on both sides: a load must not return them, a store must not change them.
  for (index_t w = 0; w <= W; ++w) {
    CAPTURE(w);
    std::vector<T> src(W + 2), dst(W + 2, T(-7));
    for (index_t i = 0; i < W + 2; ++i) src[i] = T(i + 1);
    alignas(64) T lanes[W];
    simd::load_partial(src.data() + 1, w).store_aligned(lanes);
    for (index_t i = 0; i < W; ++i) CHECK(lanes[i] == (i < w ? T(i + 2) : T(0)));
    simd::store_partial(simd::batch<T>::load_unaligned(src.data() + 1), dst.data() + 1, w);
    CHECK(dst[0] == T(-7));
    for (index_t i = 0; i < W; ++i) CHECK(dst[i + 1] == (i < w ? T(i + 2) : T(-7)));
    CHECK(dst[W + 1] == T(-7));
  }
}

TEST_CASE_TEMPLATE("reduce_add_each: W horizontal sums at once, each its own batch's", T, float,
                   double) {
  constexpr index_t W = simd::width<T>;
  using B = simd::batch<T>;
  alignas(64) T lanes[W * W];
  B acc[W];
  T out[W];
  SUBCASE("integer values: exact, every sum in its own slot") {
    // Batch a holds a·1000 + lane values (distinct sums for every a): a permuted result fails.
    for (index_t a = 0; a < W; ++a)
      for (index_t l = 0; l < W; ++l) lanes[a * W + l] = T(a * 1000) + T((a * 7 + l * 3) % 11);
    for (index_t a = 0; a < W; ++a) acc[a] = B::load_aligned(lanes + a * W);
    simd::reduce_add_each(acc, out);
    for (index_t a = 0; a < W; ++a) {
      T sum = 0;
      for (index_t l = 0; l < W; ++l) sum += lanes[a * W + l];
      CAPTURE(a);
      CHECK(out[a] == sum);
    }
  }
  SUBCASE("random values: within the rounding of a W-term sum") {
    const auto v = test::uniform_vector<T>(W * W, 17);
    for (index_t a = 0; a < W; ++a) acc[a] = B::load_unaligned(v.data() + a * W);
    simd::reduce_add_each(acc, out);
    for (index_t a = 0; a < W; ++a) {
      double sum = 0, mag = 0;
      for (index_t l = 0; l < W; ++l) sum += double(v[a * W + l]), mag += std::abs(v[a * W + l]);
      CAPTURE(a);
      CHECK(std::abs(double(out[a]) - sum) <=
            double(W) * double(std::numeric_limits<T>::epsilon()) * mag);
    }
  }
}

}  // namespace test_core_simd
