// SPDX-License-Identifier: Apache-2.0
// Tests for zss/nn/detail/gemm_kernel.hpp: the register-blocked GEMM against its scalar reference
// (bitwise on integer-valued inputs) and against a plain triple loop in double.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "support/random_data.hpp"
#include "zss/nn/detail/gemm_kernel.hpp"

namespace test_nn_gemm_kernel {

using namespace zss;

namespace {
// Shapes around the tile sizes (MR 6 or 12 rows; NR 2 batches = 4…32 columns; kc = 256).
const index_t ms[] = {1, 2, 5, 6, 7, 12, 13, 25};
const index_t ns[] = {1, 3, 8, 16, 24, 32, 33, 48, 64, 70};
const index_t ks[] = {0, 1, 5, 27, 300};

// C (=|+=) A·B in double, A read as A[i·rsa + p·csa], then bias and ReLU.
template <class T>
std::vector<double> naive(index_t m, index_t n, index_t k, const T* A, index_t rsa, index_t csa,
                          const T* B, const T* C0, bool accumulate, const T* bias, bool relu) {
  std::vector<double> C(m * n);
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < n; ++j) {
      double c = accumulate ? double(C0[i * n + j]) : 0.0;
      for (index_t p = 0; p < k; ++p) c += double(A[i * rsa + p * csa]) * double(B[p * n + j]);
      if (bias) c += double(bias[j]);
      C[i * n + j] = relu ? std::max(c, 0.0) : c;
    }
  return C;
}

// The row-combination epilogue C_i = [C_i +] s_i (A·B)_i + q_i Y_i (Y with row stride ldy).
template <class T>
detail::gemm_epilogue row_combination(const T* s, const T* q, const T* Y, index_t ldy, bool add) {
  detail::gemm_epilogue epi;
  epi.row_scale = s;
  epi.row_shift = q;
  epi.rows = Y;
  epi.ldy = ldy;
  epi.add = add;
  return epi;
}

// Element (i, j) of that combination in double: c0 + s_i·Σ_p A_ip B_pj + q_i·y (A k wide, B n
// wide).
template <class T>
double row_combination_in_double(index_t i, index_t j, index_t n, index_t k, const T* A, const T* B,
                                 T s, T q, T y, double c0) {
  double ab = 0;
  for (index_t p = 0; p < k; ++p) ab += double(A[i * k + p]) * double(B[p * n + j]);
  return c0 + double(s) * ab + double(q) * double(y);
}
}  // namespace

TEST_CASE_TEMPLATE("gemm equals the reference exactly on integers, both A layouts, epilogues", T,
                   float, double) {
  for (index_t m : ms)
    for (index_t n : ns)
      for (index_t k : ks)
        for (int variant = 0; variant < 4; ++variant) {
          CAPTURE(m);
          CAPTURE(n);
          CAPTURE(k);
          CAPTURE(variant);
          const bool transposed = variant & 1, accumulate = variant & 2;
          // A m × k row-major, or its transpose stored k × m (the colᵀ·dY case).
          const auto A = test::integer_vector<T>(m * k, 1 + m + 7 * n + 31 * k, 4);
          const auto B = test::integer_vector<T>(k * n, 2 + m + 7 * n + 31 * k, 4);
          const auto bias = test::integer_vector<T>(n, 3 + n, 50);
          const auto C0 = test::integer_vector<T>(m * n, 4 + m, 50);
          const index_t rsa = transposed ? 1 : k, csa = transposed ? m : 1;
          const detail::gemm_epilogue epi{variant == 1 ? nullptr : bias.data(), variant >= 2};
          std::vector<T> C(C0.begin(), C0.end()), R = C, Bp(detail::gemm_packed_size(k, n));
          detail::gemm_pack_b(Bp.data(), B.data(), n, 1, k, n);
          detail::gemm<T>(m, n, k, A.data(), rsa, csa, Bp.data(), C.data(), n, accumulate, epi);
          detail::gemm_reference<T>(m, n, k, A.data(), rsa, csa, B.data(), n, R.data(), n,
                                    accumulate, epi);
          const auto N = naive(m, n, k, A.data(), rsa, csa, B.data(), C0.data(), accumulate,
                               static_cast<const T*>(epi.bias), epi.relu);
          for (index_t i = 0; i < m * n; ++i) {
            REQUIRE(C[i] == R[i]);
            REQUIRE(double(C[i]) == N[i]);
          }
        }
}

#ifdef __FMA__
TEST_CASE_TEMPLATE("gemm is bitwise the scalar std::fma chain on random values (hardware FMA)", T,
                   float, double) {
  // Column tails of every width below one batch (the tail runs its own tile on a zero-padded
  // panel), two reduction blocks (k > gemm_kc), row tails.
  for (index_t n : {1, 7, 8, 15, 17, 40, 47}) {
    const index_t m = 37, k = 300;
    CAPTURE(n);
    const auto A = test::uniform_vector<T>(m * k, 11 + n);
    const auto B = test::uniform_vector<T>(k * n, 12 + n);
    const auto bias = test::uniform_vector<T>(n, 13 + n);
    for (int accumulate = 0; accumulate < 2; ++accumulate) {
      const auto C0 = test::uniform_vector<T>(m * n, 14 + n);
      std::vector<T> C(C0.begin(), C0.end()), R = C, Bp(detail::gemm_packed_size(k, n));
      const detail::gemm_epilogue epi{bias.data(), accumulate == 0};
      detail::gemm_pack_b(Bp.data(), B.data(), n, 1, k, n);
      detail::gemm<T>(m, n, k, A.data(), k, 1, Bp.data(), C.data(), n, accumulate, epi);
      detail::gemm_reference<T>(m, n, k, A.data(), k, 1, B.data(), n, R.data(), n, accumulate, epi);
      for (index_t i = 0; i < m * n; ++i) REQUIRE(C[i] == R[i]);
    }
  }
}
#endif

TEST_CASE_TEMPLATE("gemm's row combination C = [C +] s_i (A B)_i + q_i Y_i", T, float, double) {
  // Exact against the reference on integer values (scales and shifts small integers, so every
  // fma is exact), within rounding of double on random ones; C a block of a wider matrix.
  for (index_t m : {1, 5, 12, 13, 37})
    for (index_t n : {1, 8, 17, 24, 40, 48, 70, 512})
      for (index_t k : {0, 1, 16, 40, 256})
        for (int add = 0; add < 2; ++add) {
          CAPTURE(m);
          CAPTURE(n);
          CAPTURE(k);
          CAPTURE(add);
          const index_t ldc = n + 3, ldy = n + 5;
          const auto A = test::integer_vector<T>(m * k, 21 + m + 3 * n + 7 * k, 4);
          const auto B = test::integer_vector<T>(k * n, 22 + m + 3 * n + 7 * k, 4);
          const auto Y = test::integer_vector<T>(m * ldy, 23 + n, 9);
          const auto s = test::integer_vector<T>(m, 24 + m, 3);
          const auto q = test::integer_vector<T>(m, 25 + m, 3);
          const auto C0 = test::integer_vector<T>(m * ldc, 26 + m, 50);
          const auto epi = row_combination(s.data(), q.data(), Y.data(), ldy, add);
          std::vector<T> C(C0.begin(), C0.end()), R = C, Bp(detail::gemm_packed_size(k, n));
          detail::gemm_pack_b(Bp.data(), B.data(), n, 1, k, n);
          detail::gemm<T>(m, n, k, A.data(), k, 1, Bp.data(), C.data(), ldc, false, epi);
          detail::gemm_reference<T>(m, n, k, A.data(), k, 1, B.data(), n, R.data(), ldc, false,
                                    epi);
          for (index_t i = 0; i < m; ++i) {
            for (index_t j = 0; j < n; ++j) {
              const double want =
                  row_combination_in_double(i, j, n, k, A.data(), B.data(), s[i], q[i],
                                            Y[i * ldy + j], add ? double(C0[i * ldc + j]) : 0.0);
              REQUIRE(C[i * ldc + j] == R[i * ldc + j]);
              REQUIRE(double(C[i * ldc + j]) == want);
            }
            for (index_t j = n; j < ldc; ++j) REQUIRE(C[i * ldc + j] == C0[i * ldc + j]);
          }
        }
  // Random values: the combination within rounding of double.
  const index_t m = 29, n = 40, k = 40;
  const auto A = test::uniform_vector<T>(m * k, 31);
  const auto B = test::uniform_vector<T>(k * n, 32);
  const auto Y = test::uniform_vector<T>(m * n, 33);
  const auto s = test::uniform_vector<T>(m, 34);
  const auto q = test::uniform_vector<T>(m, 35);
  const auto C0 = test::uniform_vector<T>(m * n, 36);
  const auto epi = row_combination(s.data(), q.data(), Y.data(), n, true);
  std::vector<T> C(C0.begin(), C0.end()), Bp(detail::gemm_packed_size(k, n));
  detail::gemm_pack_b(Bp.data(), B.data(), n, 1, k, n);
  detail::gemm<T>(m, n, k, A.data(), k, 1, Bp.data(), C.data(), n, false, epi);
  const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-13;
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < n; ++j) {
      const double want = row_combination_in_double(i, j, n, k, A.data(), B.data(), s[i], q[i],
                                                    Y[i * n + j], double(C0[i * n + j]));
      CHECK(std::abs(double(C[i * n + j]) - want) <= tol * k);
    }
}

TEST_CASE_TEMPLATE("gemm on random values: close to double, strides and leading dimensions", T,
                   float, double) {
  // C is a block of a wider matrix (ldc > n), B the transpose of a block of a wider one (packed
  // from strides rsb = 1, csb = ldb): the columns of C outside stay untouched.
  const index_t m = 29, n = 40, k = 263, ldb = 270, ldc = 43;
  const auto A = test::uniform_vector<T>(m * k, 5);
  const auto Bw = test::uniform_vector<T>(n * ldb, 6);  // B(p, j) = Bw[j·ldb + p]
  std::vector<T> C(m * ldc, T(7)), Bp(detail::gemm_packed_size(k, n));
  detail::gemm_pack_b(Bp.data(), Bw.data(), 1, ldb, k, n);
  detail::gemm<T>(m, n, k, A.data(), k, 1, Bp.data(), C.data(), ldc, false);
  const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-13;
  for (index_t i = 0; i < m; ++i) {
    for (index_t j = 0; j < n; ++j) {
      double r = 0;
      for (index_t p = 0; p < k; ++p) r += double(A[i * k + p]) * double(Bw[j * ldb + p]);
      CHECK(std::abs(double(C[i * ldc + j]) - r) <= tol * k);
    }
    for (index_t j = n; j < ldc; ++j) CHECK(C[i * ldc + j] == T(7));
  }
}

}  // namespace test_nn_gemm_kernel
