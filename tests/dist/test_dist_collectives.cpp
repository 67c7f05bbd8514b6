// SPDX-License-Identifier: Apache-2.0
// Tests for zss/dist/collectives.hpp and zss/dist/collective.hpp under mpiexec: the ordered sum
// against the rank-order sum computed locally from every rank's (seeded) data, bitwise and on
// every rank, whatever order the messages arrive in; rows gathered in rank order; broadcast;
// size mismatches that throw on every rank.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "support/random_data.hpp"
#include "zss/dist/collective.hpp"
#include "zss/dist/collectives.hpp"
#include "zss/dist/environment.hpp"

namespace test_dist_collectives {

using namespace zss;

namespace {

int rank() {
  return dist::detail::comm_rank(MPI_COMM_WORLD);
}
int ranks() {
  return dist::detail::comm_size(MPI_COMM_WORLD);
}

/// Rank r's values: seeded, of very different magnitudes so the order of the sum matters.
template <class T>
std::vector<T> values_of(int r, index_t n) {
  const auto u = test::uniform_vector<T>(n, 1000 + std::uint64_t(r));
  std::vector<T> v(u.begin(), u.end());
  for (index_t i = 0; i < n; ++i) v[i] *= T(i % 3 == 0 ? 1e7 : (i % 3 == 1 ? 1.0 : 1e-7));
  return v;
}

/// Every rank's copy of `v`, gathered (to compare them bitwise).
template <class T>
std::vector<std::vector<T>> gather_all(const std::vector<T>& v) {
  aligned_vector<T> all;
  std::vector<index_t> off;
  dist::allgather_rows(matrix_ref<const T>(v.data(), 1, v.size()), all, off);
  std::vector<std::vector<T>> out;
  for (int r = 0; r < ranks(); ++r)
    out.emplace_back(all.begin() + off[r] * v.size(), all.begin() + off[r + 1] * v.size());
  return out;
}

}  // namespace

TEST_CASE_TEMPLATE("sum_ordered is the rank-order sum, bitwise, on every rank", T, float, double) {
  const int R = ranks(), me = rank();
  CHECK(R >= 2);  // the ctest entry runs 2 ranks; 1 would test nothing
  for (index_t n :
       {index_t(0), index_t(1), index_t(R - 1), index_t(7), index_t(1000), index_t(100003)}) {
    CAPTURE(n);
    for (int delayed = 0; delayed < R; ++delayed) {
      // One rank arrives late: the result must not depend on the arrival order.
      auto v = values_of<T>(me, n);
      std::vector<T> scratch;
      if (me == delayed) usleep(20000);
      dist::sum_ordered(std::span<T>(v), scratch);
      // Reference: ((v_0 + v_1) + v_2) + … element by element, from every rank's seeded data.
      std::vector<T> ref = values_of<T>(0, n);
      for (int r = 1; r < R; ++r) {
        const auto w = values_of<T>(r, n);
        for (index_t i = 0; i < n; ++i) ref[i] += w[i];
      }
      CHECK(std::memcmp(v.data(), ref.data(), n * sizeof(T)) == 0);
      if (n > 0) {
        const auto copies = gather_all(v);
        for (int r = 1; r < R; ++r) CHECK(copies[r] == copies[0]);
      }
    }
  }
}

TEST_CASE("mpi_collective sums doubles and floats and gathers rows (the trainer's collective)") {
  const int R = ranks(), me = rank();
  dist::mpi_collective comm;
  CHECK(comm.ranks() == R);
  CHECK(comm.rank() == me);
  double counts[3] = {1.0, double(me), 0.5};
  comm.sum(std::span<double>(counts));
  CHECK(counts[0] == double(R));
  CHECK(counts[1] == double(R * (R - 1) / 2));
  CHECK(counts[2] == 0.5 * R);
  // Rank r holds r + 1 rows of width 3 with value 10 r + row.
  std::vector<float> mine;
  for (int i = 0; i <= me; ++i)
    for (int c = 0; c < 3; ++c) mine.push_back(float(10 * me + i));
  aligned_vector<float> all;
  std::vector<index_t> off;
  comm.allgather_rows(matrix_ref<const float>(mine.data(), index_t(me + 1), 3), all, off);
  CHECK(off.size() == std::size_t(R + 1));
  for (int r = 0; r < R; ++r) {
    CHECK(off[r + 1] - off[r] == index_t(r + 1));
    for (index_t i = off[r]; i < off[r + 1]; ++i)
      CHECK(all[i * 3 + 2] == float(10 * r + int(i - off[r])));
  }
}

TEST_CASE("allgather_rows: a rank without rows, a strided view; widths must agree") {
  const int me = rank();
  // Rank 0 gives no rows; the others two rows taken every other row of a 4 × 2 matrix.
  std::vector<double> m = {1, 2, 3, 4, 5, 6, 7, 8};
  const matrix_ref<const double> view(m.data(), me == 0 ? 0 : 2, 2, 4);
  aligned_vector<double> all;
  std::vector<index_t> off;
  dist::allgather_rows(view, all, off);
  CHECK(off[1] == 0);
  CHECK(all.size() == 2 * 2 * std::size_t(ranks() - 1));
  if (all.size() >= 4) {
    CHECK(all[0] == 1);
    CHECK(all[1] == 2);
    CHECK(all[2] == 5);
    CHECK(all[3] == 6);
  }
  // A rank with another width: every rank throws (each sees every shape).
  std::vector<double> w(6, 1.0);
  const matrix_ref<const double> bad(w.data(), 2, me == 0 ? 3 : 2);
  CHECK_THROWS_WITH_AS(dist::allgather_rows(bad, all, off), doctest::Contains("width"),
                       std::invalid_argument);
}

TEST_CASE("broadcast and broadcast_parameters: rank 0's values everywhere; sizes must agree") {
  const int me = rank();
  std::vector<std::int64_t> v = {me, 2 * me, 3};
  dist::broadcast(std::span<std::int64_t>(v));
  CHECK(v == std::vector<std::int64_t>{0, 0, 3});
  param_buffer<float> p;
  p.add("w", {5});
  p.allocate();
  for (index_t i = 0; i < p.size(); ++i) p.values()[i] = float(me * 100 + int(i));
  dist::broadcast_parameters(p);
  for (index_t i = 0; i < 5; ++i) CHECK(p.values()[i] == float(i));
  param_buffer<float> q;
  q.add("w", {index_t(me == 0 ? 5 : 6)});
  q.allocate();
  CHECK_THROWS_WITH_AS(dist::broadcast_parameters(q), doctest::Contains("rank(s) differ"),
                       std::invalid_argument);
}

}  // namespace test_dist_collectives
