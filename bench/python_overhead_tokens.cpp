// SPDX-License-Identifier: Apache-2.0
// zss_bench_tokens DIR: writes the tokens of BM_MultiScaleBatch (bench_kmeans.cpp) for
// bench/python_overhead.py, so Python times zss.multiscale_kmeans on the very data the Google
// Benchmark clusters: DIR/tokens.npy (16 × 32 × 32 × 512 float32, image i = tokens(1024, 512,
// 6, 100 + i), zss::bench::multiscale_batch_tokens), and the C++ result of the same call as a check
// that both sides do the same work: DIR/n_iter.npy (16 × 4 int64, Lloyd steps per image and K) and
// DIR/inertia.npy (16 × 4).
#include <cstdio>
#include <exception>
#include <filesystem>
#include <vector>

#include "bench_common.hpp"
#include "zss/cluster/multiscale_kmeans.hpp"
#include "zss/io/npy.hpp"

int main(int argc, char** argv) try {
  if (argc != 2) {
    std::fprintf(stderr, "usage: zss_bench_tokens DIR\n");
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);
  const auto all = zss::bench::multiscale_batch_tokens();  // as BM_MultiScaleBatch
  const zss::index_t b = all.shape()[0];
  zss::multiscale_options p;  // as BM_MultiScaleBatch
  p.ks = {2, 4, 8, 16};
  p.max_iter = 10;
  const auto r = zss::multiscale_kmeans_batch<float>(all, p);
  const auto s = zss::index_t(p.ks.size());
  zss::tensor<std::int64_t, 2> n_iter = zss::tensor<std::int64_t, 2>::from_shape({b, s});
  zss::tensor<double, 2> inertia = zss::tensor<double, 2>::from_shape({b, s});
  for (zss::index_t i = 0; i < b; ++i)
    for (zss::index_t j = 0; j < s; ++j) {
      n_iter(i, j) = r[i][j].iterations;
      inertia(i, j) = r[i][j].inertia;
    }
  zss::save_npy(dir / "tokens.npy", all);
  zss::save_npy(dir / "n_iter.npy", n_iter);
  zss::save_npy(dir / "inertia.npy", inertia);
  std::printf("zss_bench_tokens: wrote %s/{tokens,n_iter,inertia}.npy\n", dir.c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "zss_bench_tokens: %s\n", e.what());
  return 1;
}
