// SPDX-License-Identifier: Apache-2.0
// Tests for zss/dist/shard.hpp (no MPI): both partitions cover every item exactly once, in the
// promised order and sizes; bad parts are refused.
#include <doctest/doctest.h>

#include <stdexcept>
#include <vector>

#include "zss/dist/shard.hpp"

namespace test_dist_shard {

using namespace zss;

TEST_CASE("block_range: contiguous, in order, sizes differ by at most one, first parts larger") {
  for (index_t n : {0, 1, 2, 5, 7, 16, 101})
    for (index_t parts : {1, 2, 3, 4, 8}) {
      CAPTURE(n);
      CAPTURE(parts);
      index_t next = 0;
      for (index_t p = 0; p < parts; ++p) {
        const auto r = dist::block_range(n, p, parts);
        CHECK(r.begin == next);  // contiguous and in part order: rank order is batch order
        CHECK(r.size() == n / parts + (p < n % parts ? 1 : 0));
        next = r.end;
      }
      CHECK(next == n);
    }
  CHECK_THROWS_WITH_AS(dist::block_range(4, 2, 2), doctest::Contains("part 2 is outside [0, 2)"),
                       std::invalid_argument);
  CHECK_THROWS_AS(dist::block_range(4, 0, 0), std::invalid_argument);
}

TEST_CASE("strided_items: part p owns p, p + R, ...; the parts partition the items") {
  for (index_t n : {0, 1, 3, 10, 33})
    for (index_t parts : {1, 2, 3, 5}) {
      std::vector<int> owner(n, -1);
      for (index_t p = 0; p < parts; ++p) {
        index_t expect = p;
        for (auto i : dist::strided_items(n, p, parts)) {
          CHECK(i == expect);
          CHECK(owner[i] == -1);
          owner[i] = int(p);
          expect += parts;
        }
        CHECK(expect >= n);
      }
      for (auto o : owner) CHECK(o >= 0);
    }
  CHECK_THROWS_AS(dist::strided_items(3, 1, 1), std::invalid_argument);
}

}  // namespace test_dist_shard
