// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/nn/detail/panel_gemm.hpp
 * `C = A·B` or `C += A·B` through Eigen, split into fixed 64-column panels of `C` that OpenMP
 * threads share out statically.
 *
 * Why panels of a fixed width: every panel is one Eigen product whose shape depends only on the
 * problem, never on the thread count, so each element of `C` is computed by the same kernel with
 * the same summation order for any `threads` — results are bitwise identical for 1, 2, … threads.
 * Inside our OpenMP region Eigen runs single-threaded by itself (it checks
 * `omp_get_num_threads()`). With `threads == 1` the panels run on the calling thread *outside* an
 * OpenMP region, where Eigen follows `Eigen::nbThreads()`: the caller sets it to 1
 * (`zss::eigen_single_thread_guard`, core/eigen_map.hpp) — the project's one-thread-pool rule
 * (PERFORMANCE §5) and the condition for the bitwise guarantee.
 */
#include <algorithm>

#include <Eigen/Core>

#include "zss/core/parallel.hpp"

namespace zss::detail {

/// Width of one column panel of the output.
inline constexpr index_t gemm_panel_cols = 64;

/**
 * `C = A·B` (`accumulate` false) or `C += A·B`, panel by panel over the columns of `C`.
 * `C` is a writable Eigen expression (a map, its transpose, a block); `A` and `B` any Eigen
 * expressions with direct access (maps and their transposes).
 */
template <class CExpr, class AExpr, class BExpr>
void panel_gemm(CExpr C, const AExpr& A, const BExpr& B, bool accumulate, int threads) {
  const index_t n = static_cast<index_t>(C.cols());
  if (C.rows() == 0 || n == 0) return;
  const index_t panels = (n + gemm_panel_cols - 1) / gemm_panel_cols;
  parallel_for(panels, threads, [&](index_t p, int) {
    const auto j0 = static_cast<Eigen::Index>(p * gemm_panel_cols);
    const auto w = static_cast<Eigen::Index>(std::min(gemm_panel_cols, n - p * gemm_panel_cols));
    auto Cp = C.middleCols(j0, w);
    if (A.cols() == 0) {
      if (!accumulate) Cp.setZero();
    } else if (accumulate) {
      Cp.noalias() += A * B.middleCols(j0, w);
    } else {
      Cp.noalias() = A * B.middleCols(j0, w);
    }
  });
}

}  // namespace zss::detail
