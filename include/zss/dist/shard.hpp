// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/dist/shard.hpp
 * Which items a rank (or a thread of a rank) owns: two fixed partitions of `[0, n)` into `parts`
 * shares. Pure arithmetic, no MPI: the tools use it with one process too.
 *
 * Legend: n items, R parts (ranks), r a part.
 *
 *  - `block_range(n, r, R)`: the contiguous range `[r·⌊n/R⌋ + min(r, n mod R), …)` — the first
 *    `n mod R` parts get one item more. A data-parallel step cuts its batch this way (rank r's
 *    images are the batch's images `begin … end − 1`, so the ranks' rows stacked in rank order are
 *    the batch in order).
 *  - `strided_items(n, r, R)`: the items `r, r + R, r + 2R, …` — for long lists of independent
 *    items (dataset-scale pseudo labels), so ranks that stop early (a killed job) leave the same
 *    share of work behind and a rerun stays balanced.
 */
#include <string>
#include <vector>

#include "zss/core/check.hpp"
#include "zss/core/config.hpp"

namespace zss::dist {

/// A half-open range of items.
struct item_range {
  index_t begin = 0, end = 0;
  index_t size() const noexcept { return end - begin; }
};

namespace detail {
inline void check_part(const char* where, index_t part, index_t parts) {
  require(parts > 0, std::string(where) + ": parts must be > 0");
  require(part < parts, std::string(where) + ": part " + std::to_string(part) + " is outside [0, " +
                            std::to_string(parts) + ")");
}
}  // namespace detail

/**
 * Part `part` of the block partition of `[0, n)` into `parts` contiguous ranges (file comment).
 * @throws std::invalid_argument when `parts` is 0 or `part ≥ parts`.
 */
inline item_range block_range(index_t n, index_t part, index_t parts) {
  detail::check_part("block_range", part, parts);
  const index_t q = n / parts, r = n % parts;
  const index_t begin = part * q + (part < r ? part : r);
  return {begin, begin + q + (part < r ? 1 : 0)};
}

/**
 * The items `part, part + parts, …` below `n` (file comment).
 * @throws std::invalid_argument when `parts` is 0 or `part ≥ parts`.
 */
inline std::vector<index_t> strided_items(index_t n, index_t part, index_t parts) {
  detail::check_part("strided_items", part, parts);
  std::vector<index_t> out;
  out.reserve(n / parts + 1);
  for (index_t i = part; i < n; i += parts) out.push_back(i);
  return out;
}

}  // namespace zss::dist
