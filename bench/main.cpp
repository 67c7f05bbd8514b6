// SPDX-License-Identifier: Apache-2.0
// zss_bench main: prints the SIMD architecture, batch width, threads and library versions,
// then runs Google Benchmark as usual (all its flags work).
#include <benchmark/benchmark.h>
#include <Eigen/Core>
#include <xtensor/xtensor_config.hpp>

#include <cstdio>

#include "zss/core/parallel.hpp"
#include "zss/core/simd.hpp"
#include "zss/version.hpp"

int main(int argc, char** argv) {
  std::printf(
      "zss %s | simd %s, %zu float / %zu double lanes | threads %d (OMP_NUM_THREADS) | "
      "xsimd %s, xtensor %d.%d.%d, Eigen %d.%d.%d, g++ %d.%d\n",
      zss::version_string, zss::simd::arch_name().c_str(), zss::simd::width<float>,
      zss::simd::width<double>, zss::resolve_threads(0), zss::simd::xsimd_version().c_str(),
      XTENSOR_VERSION_MAJOR, XTENSOR_VERSION_MINOR, XTENSOR_VERSION_PATCH, EIGEN_WORLD_VERSION,
      EIGEN_MAJOR_VERSION, EIGEN_MINOR_VERSION, __GNUC__, __GNUC_MINOR__);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
