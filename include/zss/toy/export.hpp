// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/toy/export.hpp
 * The toy world written as a dataset folder (data/dataset.hpp): the same files a user writes
 * after dumping real CLIP features, so the on-disk path is tested here and a toy run can be
 * replayed from disk.
 *
 * Splits `train/` and `test/` (scene i has stem `%06d` of i); labels hold every class (the reader's
 * user hides the unseen ones for training; clutter is ignored: 255 in a PNG, −1 in a .npy); the
 * teacher's tokens and CLS as float32/float64 `.npy`; `tokens_normalized = true` (the simulated
 * teacher's tokens are unit rows). Images as 8-bit PNG (what datasets ship; rounding changes the
 * student's input by up to 1/510) or as float `.npy` (lossless: a run from disk then reproduces the
 * in-memory run bitwise).
 */
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "zss/core/parallel.hpp"
#include "zss/data/dataset.hpp"
#include "zss/toy/classes.hpp"
#include "zss/toy/dataset.hpp"

namespace zss::toy {

/// The stem of item `i` ("000042").
inline std::string export_stem(index_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%06zu", static_cast<std::size_t>(i));
  return buf;
}

/**
 * Writes `w` into `root` (see the file comment), items in parallel on `threads`.
 * @throws std::runtime_error when a file cannot be written (files already written stay; each file
 *         is complete or absent).
 */
template <real_scalar T>
void export_world(const world<T>& w, const std::filesystem::path& root, data::file_kind images,
                  data::file_kind labels, int threads = 0) {
  std::vector<std::string> names;
  std::vector<bool> unseen;
  for (index_t k = 0; k < class_count; ++k) {
    names.push_back(class_name(std::int32_t(k)));
    unseen.push_back(!w.seen(std::int32_t(k)));
  }
  data::write_dataset_info(root, names, w.text, unseen, true);
  auto write_split = [&](const std::string& split, const std::vector<scene>& scenes,
                         const std::vector<teacher_output<T>>& outs) {
    // Create the folders once, before the parallel writes.
    for (const char* f : {"images", "labels", "tokens", "cls"})
      std::filesystem::create_directories(root / split / f);
    parallel_for(scenes.size(), threads, [&](index_t i, int) {
      const auto& t = outs[i];
      const index_t D = t.tokens.shape()[1];
      tensor<T, 3> tokens = tensor<T, 3>::from_shape({t.grid_h, t.grid_w, D});
      std::copy(t.tokens.begin(), t.tokens.end(), tokens.begin());
      data::write_item(root, split, export_stem(i), scenes[i].image, scenes[i].labels, tokens,
                       t.cls, images, labels);
    });
  };
  write_split("train", w.train, w.train_teacher);
  write_split("test", w.test, w.test_teacher);
}

}  // namespace zss::toy
