// SPDX-License-Identifier: Apache-2.0
// doctest runner of the MPI tests (run by ctest under `mpiexec -n 2`): every rank runs every test
// case; the exit code is the worst of all ranks, so a failure on any rank fails the test. Test
// cases must keep the ranks in step: CHECK (never REQUIRE) around collectives.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <mpi.h>

#include "zss/dist/environment.hpp"

int main(int argc, char** argv) {
  zss::dist::environment env(&argc, &argv);
  doctest::Context context(argc, argv);
  int result = context.run();
  int worst = 0;
  MPI_Allreduce(&result, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (context.shouldExit()) return result;
  return worst;
}
