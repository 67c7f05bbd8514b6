// SPDX-License-Identifier: Apache-2.0
#pragma once
/** @file tests/support/small_world.hpp  A small toy world for tests that train or export. */
#include <cstdint>

#include "zss/toy/dataset.hpp"

namespace zss::test {

/// `train` + `test` scenes of `size` × `size` pixels, text width `dim` (teacher grid size / 4).
template <class T>
toy::world<T> small_world(index_t train, index_t test, index_t size, index_t dim,
                          std::uint64_t seed, int threads = 1) {
  toy::world_options wo;
  wo.train_images = train;
  wo.test_images = test;
  wo.scenes.height = wo.scenes.width = size;
  wo.text.dim = dim;
  wo.seed = seed;
  return toy::make_world<T>(wo, threads);
}

}  // namespace zss::test
