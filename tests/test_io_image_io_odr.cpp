// SPDX-License-Identifier: Apache-2.0
// A second translation unit that includes zss/io/image_io.hpp: linking it beside
// test_core_image_io.cpp proves that the header's stb implementation is ODR-safe.
#include <doctest/doctest.h>

#include "zss/io/image_io.hpp"

namespace test_io_image_io_odr {

TEST_CASE("image_io links from a second translation unit") {
  const std::uint8_t px[3] = {1, 2, 3};
  CHECK(zss::encode_png(px, 1, 1, 3).size() > 8);
}

}  // namespace test_io_image_io_odr
