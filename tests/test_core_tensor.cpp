// SPDX-License-Identifier: Apache-2.0
// Tests for zss/core/tensor.hpp and zss/core/eigen_map.hpp: views share memory, maps are row-major.
#include <doctest/doctest.h>

#include "zss/core/eigen_map.hpp"
#include "zss/core/tensor.hpp"

namespace test_core_tensor {

using namespace zss;

TEST_CASE_TEMPLATE("matrix_ref views an xtensor without copying", T, float, double) {
  tensor<T, 2> x = {{1, 2, 3}, {4, 5, 6}};
  auto v = as_matrix(x);
  CHECK(v.data == x.data());
  CHECK(v.rows == 2);
  CHECK(v.cols == 3);
  CHECK(v(1, 2) == T(6));
  v(0, 1) = T(20);
  CHECK(x(0, 1) == T(20));
  matrix_ref<const T> c = v;
  CHECK(c.row(1)[0] == T(4));
  aligned_tensor<T, 2> a = aligned_tensor<T, 2>::from_shape({4, 5});
  CHECK(reinterpret_cast<std::uintptr_t>(a.data()) % simd_alignment == 0);
  CHECK(as_matrix(a).cols == 5);
}

TEST_CASE_TEMPLATE("adapt views caller memory as an xtensor", T, float, double) {
  std::vector<T> buf = {1, 2, 3, 4, 5, 6};
  auto t = adapt(buf.data(), std::array<index_t, 2>{3, 2});
  CHECK(t.shape()[0] == 3);
  CHECK(t(2, 1) == T(6));
  t(0, 0) = T(9);
  CHECK(buf[0] == T(9));
}

TEST_CASE_TEMPLATE("eigen_map is row-major, strided and shares memory", T, float, double) {
  // 2 × 3 logical matrix inside rows of stride 4.
  std::vector<T> buf = {1, 2, 3, -1, 4, 5, 6, -1};
  matrix_ref<T> m(buf.data(), 2, 3, 4);
  auto e = eigen_map(m);
  CHECK(e.rows() == 2);
  CHECK(e.cols() == 3);
  CHECK(e(1, 0) == T(4));
  e(1, 2) = T(60);
  CHECK(buf[6] == T(60));
  // A product through maps equals the hand-computed one.
  row_major_matrix<T> p = e * e.transpose();
  CHECK(p(0, 1) == T(1 * 4 + 2 * 5 + 3 * 60));
  matrix_ref<const T> c = m;
  CHECK(eigen_map(c).sum() == T(1 + 2 + 3 + 4 + 5 + 60));
  CHECK_THROWS_AS(check_shape("f", "M", m, 3, 3), std::invalid_argument);
}

TEST_CASE("eigen_single_thread_guard restores the previous setting") {
  Eigen::setNbThreads(2);
  {
    eigen_single_thread_guard g;
    CHECK(Eigen::nbThreads() == 1);
  }
  CHECK(Eigen::nbThreads() == 2);
  Eigen::setNbThreads(0);
}

}  // namespace test_core_tensor
