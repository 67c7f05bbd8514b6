// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/core/eigen_map.hpp
 * Row-major `Eigen::Map`s over zss memory, for GEMMs without copies.
 *
 * Eigen's default is column-major; zss stores row-major, so every map here is explicitly
 * `Eigen::RowMajor` with an outer stride equal to the row stride. Inside OpenMP regions that we
 * own, call Eigen products single-threaded (`Eigen::setNbThreads(1)` is the caller's job or use
 * `zss::eigen_single_thread_guard`): one thread pool, never two (PERFORMANCE §5).
 */
#include <Eigen/Core>

#include "zss/core/tensor.hpp"

namespace zss {

template <class T>
using row_major_matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

template <class T>
using matrix_map = Eigen::Map<row_major_matrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

template <class T>
using const_matrix_map =
    Eigen::Map<const row_major_matrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

/// Mutable Eigen map over a `matrix_ref`.
template <class T>
matrix_map<T> eigen_map(const matrix_ref<T>& m) {
  return matrix_map<T>(m.data, Eigen::Index(m.rows), Eigen::Index(m.cols),
                       Eigen::OuterStride<>(Eigen::Index(m.stride)));
}

/// Read-only Eigen map over a `matrix_ref<const T>`.
template <class T>
const_matrix_map<T> eigen_map(const matrix_ref<const T>& m) {
  return const_matrix_map<T>(m.data, Eigen::Index(m.rows), Eigen::Index(m.cols),
                             Eigen::OuterStride<>(Eigen::Index(m.stride)));
}

/// Maps of row-major xtensor matrices.
template <class T>
matrix_map<T> eigen_map(tensor<T, 2>& m) {
  return eigen_map(as_matrix(m));
}
template <class T>
const_matrix_map<T> eigen_map(const tensor<T, 2>& m) {
  return eigen_map(as_matrix(m));
}

/// RAII: Eigen single-threaded for the guard's lifetime (restores the previous setting).
class eigen_single_thread_guard {
 public:
  eigen_single_thread_guard() : previous_(Eigen::nbThreads()) { Eigen::setNbThreads(1); }
  ~eigen_single_thread_guard() { Eigen::setNbThreads(previous_); }
  eigen_single_thread_guard(const eigen_single_thread_guard&) = delete;
  eigen_single_thread_guard& operator=(const eigen_single_thread_guard&) = delete;

 private:
  int previous_;
};

}  // namespace zss
