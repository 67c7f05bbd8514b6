// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/plm/region_pool.hpp
 * Masked region pooling, forward and backward (DESIGN.md §2.1, used by §2.4).
 *
 * Legend: N rows (pixels, of one image or of a whole batch), D width, L regions.
 * `region[i] ∈ [−1, L)` names the region of row i (−1 = in no region).
 *
 *     p_l = (1/|R_l|) Σ_{i: region[i] = l} r_i          (p_l = 0 when the region is empty)
 *     dr_i += dp_{region[i]} / |R_l|                    (backward, adds into dR)
 *
 * Region ids are global: a batch numbers its images' regions consecutively and pools all of
 * them in one call. An empty region is allowed (its mean is defined as 0 and it passes no
 * gradient); `region_pool_cache::count` tells the caller which regions were empty.
 *
 * Threads: the forward sums each region's rows in ascending row order (one region per work
 * item), the backward is row-parallel: results are bitwise identical for every thread count.
 */
#include <algorithm>
#include <span>
#include <string>
#include <vector>

#include "zss/core/check.hpp"
#include "zss/core/parallel.hpp"
#include "zss/core/simd.hpp"
#include "zss/core/tensor.hpp"

namespace zss {

/// Rows of each region (CSR, ascending) and the counts.
struct region_pool_cache {
  std::vector<index_t> offsets;  ///< L + 1 into `rows`
  std::vector<index_t> rows;     ///< the rows of region 0, then region 1, …
  std::vector<index_t> count;    ///< L: |R_l|
};

/// Options of region pooling.
struct region_pool_options {
  int threads = 0;  ///< 0 = OpenMP default
};

namespace detail {
inline void region_pool_check(std::string_view where, std::span<const int> region, index_t n,
                              index_t L) {
  check_extent(where, "number of region ids", region.size(), "rows of R", n);
  for (index_t i = 0; i < region.size(); ++i)
    if (region[i] < -1 || (region[i] >= 0 && static_cast<index_t>(region[i]) >= L))
      throw std::invalid_argument(std::string(where) + ": region id " + std::to_string(region[i]) +
                                  " of row " + std::to_string(i) + " is out of range [-1, " +
                                  std::to_string(L) + ")");
}
}  // namespace detail

/**
 * Forward: `pooled_l = mean of the rows of region l` (DESIGN §2.4 `p_l`).
 * @param pooled L × D output (written).
 * @param cache  filled with the region membership.
 * @param R      N × D rows.
 * @param region N ids in [−1, L).
 * @throws std::invalid_argument on mismatched sizes or ids out of range.
 */
template <real_scalar T>
void region_pool_forward(matrix_ref<T> pooled, region_pool_cache& cache, const_matrix_ref<T> R,
                         std::span<const int> region, const region_pool_options& params = {}) {
  constexpr std::string_view where = "region_pool_forward";
  const index_t L = pooled.rows, D = R.cols;
  check_extent(where, "width of pooled", pooled.cols, "width of R", D);
  detail::region_pool_check(where, region, R.rows, L);
  cache.count.assign(L, 0);
  for (int id : region)
    if (id >= 0) ++cache.count[static_cast<index_t>(id)];
  cache.offsets.assign(L + 1, 0);
  for (index_t l = 0; l < L; ++l) cache.offsets[l + 1] = cache.offsets[l] + cache.count[l];
  cache.rows.resize(cache.offsets[L]);
  std::vector<index_t> fill(cache.offsets.begin(), cache.offsets.end() - 1);
  for (index_t i = 0; i < region.size(); ++i)
    if (region[i] >= 0) cache.rows[fill[static_cast<index_t>(region[i])]++] = i;
  parallel_for(L, resolve_threads(params.threads), [&](index_t l, int) {
    T* p = pooled.row(l);
    std::fill_n(p, D, T(0));
    for (index_t j = cache.offsets[l]; j < cache.offsets[l + 1]; ++j)
      simd::axpy(T(1), R.row(cache.rows[j]), p, D);
    if (cache.count[l] > 0) simd::scale(T(1) / T(cache.count[l]), p, D);
  });
}

/**
 * Backward: **adds** `dpooled_l / |R_l|` into the rows of region l of `dR`.
 * @param dR      N × D, adds into.
 * @param dpooled L × D upstream gradient.
 * @param cache   from the forward.
 * @param region  the same N ids.
 */
template <real_scalar T>
void region_pool_backward(matrix_ref<T> dR, const_matrix_ref<T> dpooled,
                          const region_pool_cache& cache, std::span<const int> region,
                          const region_pool_options& params = {}) {
  constexpr std::string_view where = "region_pool_backward";
  const index_t L = dpooled.rows, D = dpooled.cols;
  check_extent(where, "width of dR", dR.cols, "width of dpooled", D);
  check_extent(where, "cached regions", cache.count.size(), "rows of dpooled", L);
  detail::region_pool_check(where, region, dR.rows, L);
  parallel_for(dR.rows, resolve_threads(params.threads), [&](index_t i, int) {
    if (region[i] < 0) return;
    const index_t l = static_cast<index_t>(region[i]);
    simd::axpy(T(1) / T(cache.count[l]), dpooled.row(l), dR.row(i), D);
  });
}

}  // namespace zss
