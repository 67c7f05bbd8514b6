// SPDX-License-Identifier: Apache-2.0
// Tests for zss/cluster/empty_cluster.hpp: re-seeding at the farthest points, and dropping.
#include <doctest/doctest.h>

#include <vector>

#include "zss/cluster/empty_cluster.hpp"

namespace test_cluster_empty_cluster {

using namespace zss;

TEST_CASE_TEMPLATE(
    "reseed moves an empty cluster to the farthest point of a cluster that can spare it", T, float,
    double) {
  // 1-D points; clusters: {0, 1, 2} around 1, {10} alone, cluster 2 empty.
  tensor<T, 2> X = tensor<T, 2>::from_shape({4, 1});
  X(0, 0) = 0, X(1, 0) = 1, X(2, 0) = 2, X(3, 0) = 10;
  tensor<T, 2> C = tensor<T, 2>::from_shape({3, 1});
  C(0, 0) = 1, C(1, 0) = 10, C(2, 0) = -50;
  std::vector<std::int32_t> labels = {0, 0, 0, 1};
  std::vector<index_t> counts = {3, 1, 0};
  // Distances to the centroids the points were assigned against: point 3 is the farthest but
  // alone in its cluster, so the next farthest, point 2, moves.
  std::vector<T> dist = {T(1), T(0), T(4), T(9)};
  const index_t moved = reseed_empty_clusters<T>(as_matrix(X), as_matrix(C), labels, counts, dist);
  CHECK(moved == 1);
  CHECK(labels == std::vector<std::int32_t>{0, 0, 2, 1});
  CHECK(counts == std::vector<index_t>{2, 1, 1});
  CHECK(C(2, 0) == T(2));
  CHECK(C(0, 0) == doctest::Approx(0.5));  // mean of {0, 1}
  CHECK(C(1, 0) == T(10));
}

TEST_CASE_TEMPLATE("reseed leaves a cluster empty when no cluster can spare a point", T, float,
                   double) {
  tensor<T, 2> X = tensor<T, 2>::from_shape({2, 1});
  X(0, 0) = 0, X(1, 0) = 5;
  tensor<T, 2> C = tensor<T, 2>::from_shape({3, 1});
  C(0, 0) = 0, C(1, 0) = 5, C(2, 0) = 7;
  std::vector<std::int32_t> labels = {0, 1};
  std::vector<index_t> counts = {1, 1, 0};
  std::vector<T> dist = {T(0), T(0)};
  CHECK(reseed_empty_clusters<T>(as_matrix(X), as_matrix(C), labels, counts, dist) == 0);
  CHECK(counts == std::vector<index_t>{1, 1, 0});
  CHECK(C(2, 0) == T(7));
}

TEST_CASE_TEMPLATE("drop compacts centroids, counts and labels in order", T, float, double) {
  tensor<T, 2> C = tensor<T, 2>::from_shape({5, 2});
  tensor<T, 2> old = tensor<T, 2>::from_shape({5, 2});
  for (index_t c = 0; c < 5; ++c)
    for (index_t j = 0; j < 2; ++j) C(c, j) = T(10 * c + j), old(c, j) = T(-10 * int(c) - int(j));
  std::vector<std::int32_t> labels = {4, 1, 4, 3, 1};
  std::vector<index_t> counts = {0, 2, 0, 1, 2};
  const index_t k = drop_empty_clusters<T>(as_matrix(C), labels, counts, as_matrix(old));
  CHECK(k == 3);
  CHECK(labels == std::vector<std::int32_t>{2, 0, 2, 1, 0});
  CHECK(counts[0] == 2);
  CHECK(counts[1] == 1);
  CHECK(counts[2] == 2);
  CHECK(C(0, 0) == T(10));
  CHECK(C(1, 1) == T(31));
  CHECK(C(2, 0) == T(40));
  CHECK(old(2, 1) == T(-41));
}

}  // namespace test_cluster_empty_cluster
