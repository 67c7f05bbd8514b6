// SPDX-License-Identifier: Apache-2.0
// Writes the good and bad .npy inputs that tests/tools/CMakeLists.txt runs the tools on.
// Usage: zss-make-tool-inputs DIR
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include "support/planted_scene.hpp"
#include "zss/io/npy.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  namespace fs = std::filesystem;
  const fs::path dir = argv[1];
  fs::create_directories(dir);
  using zss::index_t;

  // A planted scene: 16 x 16 tokens, D 32; labels at 4x resolution, int64, ignored = 255 / -1.
  const auto scene = zss::test::make_planted_scene<float>(16, 16, 32, 3, 4);
  zss::save_npy(dir / "tokens.npy", scene.tokens);
  zss::tensor<std::int64_t, 2> labels = zss::tensor<std::int64_t, 2>::from_shape({64, 64});
  std::copy(scene.pixels.begin(), scene.pixels.end(), labels.begin());
  zss::save_npy(dir / "labels.npy", labels);

  // Points for zss-kmeans: 60 x 4 float64 in three groups; and a 5 x 3 float32 set.
  zss::rng g(9);
  zss::tensor<double, 2> points = zss::tensor<double, 2>::from_shape({60, 4});
  for (index_t i = 0; i < 60; ++i)
    for (index_t c = 0; c < 4; ++c) points(i, c) = double(i % 3 == c ? 10 : 0) + g.normal<double>();
  zss::save_npy(dir / "points.npy", points);
  zss::tensor<float, 2> small = zss::tensor<float, 2>::from_shape({5, 3});
  for (auto& v : small) v = g.normal<float>();
  zss::save_npy(dir / "points_small.npy", small);

  // Bad inputs.
  zss::save_npy(dir / "points_int.npy", zss::tensor<std::int32_t, 2>{{1, 2}, {3, 4}, {5, 6}});
  zss::save_npy(dir / "points_rank1.npy", zss::tensor<float, 1>{1, 2, 3});
  auto nan_points = small;
  nan_points(2, 1) = std::numeric_limits<float>::quiet_NaN();
  zss::save_npy(dir / "points_nan.npy", nan_points);
  auto nan_tokens = scene.tokens;
  nan_tokens(5, 6, 7) = std::numeric_limits<float>::infinity();
  zss::save_npy(dir / "tokens_inf.npy", nan_tokens);
  zss::save_npy(dir / "tokens_rank2.npy", small);
  zss::save_npy(dir / "labels_float.npy", zss::tensor<float, 2>{{0, 1}, {1, 0}});
  zss::save_npy(dir / "labels_rank3.npy", zss::tensor<std::int32_t, 3>::from_shape({2, 2, 1}));
  auto bad_labels = labels;
  bad_labels(3, 3) = -5;
  zss::save_npy(dir / "labels_negative.npy", bad_labels);
  {
    // Truncated: a valid file with its last 10 bytes cut off.
    zss::save_npy(dir / "truncated.npy", points);
    fs::resize_file(dir / "truncated.npy", fs::file_size(dir / "truncated.npy") - 10);
  }
  {
    // float16, which zss does not read.
    std::string header = "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 2), }";
    while ((10 + header.size() + 1) % 64) header += ' ';
    header += '\n';
    std::ofstream out(dir / "half.npy", std::ios::binary);
    out << "\x93NUMPY" << char(1) << char(0) << char(header.size() & 0xff)
        << char(header.size() >> 8) << header << std::string(8, '\0');
  }
  std::ofstream(dir / "not_npy.npy") << "just some text\n";
  return 0;
}
