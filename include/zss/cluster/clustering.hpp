// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/cluster/clustering.hpp
 * The hand-over type between multi-scale K-Means and mask fusion (DESIGN.md §2.3 steps 2–3).
 *
 * Legend: Q tokens of one image, D width, K' clusters that survived one scale.
 */
#include <cstdint>
#include <vector>

#include "zss/core/tensor.hpp"

namespace zss {

/// The clusters of one image at one scale (one window size), empty clusters already dropped.
template <real_scalar T>
struct scale_clustering {
  index_t window = 0;      ///< the window size s that seeded this scale (0 for k-means++ seeds)
  tensor<T, 2> centroids;  ///< K' × D final centroids (plain means; not normalised)
  std::vector<std::int32_t> labels;  ///< Q: cluster id in [0, K') of each token
  index_t iterations = 0;            ///< Lloyd iterations run
  bool converged = false;            ///< true when no assignment changed in the last iteration
  index_t seeds = 0;  ///< K before empty clusters were dropped (⌈h/s⌉·⌈w/s⌉, or the k-means++ K)
  double inertia = 0;  ///< Σ‖z_q − μ_label(q)‖² over the image's tokens (exact)
};

}  // namespace zss
