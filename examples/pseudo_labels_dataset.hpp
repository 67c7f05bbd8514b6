// SPDX-License-Identifier: Apache-2.0
#pragma once
// zss-pseudo-labels --data: the PLM pseudo labels of every image of a dataset split
// (pseudo_labels_dataset.cpp).
#include <cstdint>
#include <string>

#include "zss/plm/pseudo_labels.hpp"

namespace zss::tools {

struct dataset_mode_options {
  std::string data;             ///< dataset folder (data/dataset.hpp)
  std::string split = "train";  ///< split folder
  std::string out;              ///< output folder: one <stem>.npy per image
  std::string summary;          ///< JSON summary (default OUT/summary.json)
  pseudo_label_options pseudo;  ///< K-Means scales, fusion (the tool's flags)
  int threads = 0;              ///< OpenMP threads per rank
  bool quiet = false;
  // Test hook (hidden option): rank `kill_rank` kills itself with SIGKILL in the middle of writing
  // its output number `kill_after` + 1 (a temporary file is left behind, the output is not).
  std::int64_t kill_after = -1;
  int kill_rank = 0;
};

/// Runs the dataset mode (one process, or the MPI ranks when the tool was built with MPI and
/// started by mpirun); returns the exit code.
int run_pseudo_labels_dataset(int* argc, char*** argv, const dataset_mode_options& o);

}  // namespace zss::tools
