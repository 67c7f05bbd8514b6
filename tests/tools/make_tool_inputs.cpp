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

namespace {

/// A .npy file written byte by byte (for headers zss itself would never write).
void write_raw_npy(const std::filesystem::path& file, const std::string& dict,
                   const std::string& data) {
  std::string header = dict;
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::ofstream out(file, std::ios::binary);
  out << "\x93NUMPY" << char(1) << char(0) << char(header.size() & 0xff) << char(header.size() >> 8)
      << header << data;
}

std::string dict(const std::string& descr, const std::string& shape, bool fortran = false) {
  return "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") +
         ", 'shape': " + shape + ", }";
}

}  // namespace

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

  // Hostile inputs (issues #12, #17): every one must be refused with the file and the problem
  // named, without a partial output.
  std::ofstream(dir / "zero_bytes.npy");  // an empty file
  const std::string f32x6(24, '\0');
  write_raw_npy(dir / "big_endian.npy", dict(">f4", "(2, 3)"), f32x6);
  write_raw_npy(dir / "big_endian3.npy", dict(">f4", "(1, 2, 3)"), f32x6);
  write_raw_npy(dir / "fortran.npy", dict("<f4", "(2, 3)", true), f32x6);
  write_raw_npy(dir / "fortran3.npy", dict("<f4", "(1, 2, 3)", true), f32x6);
  write_raw_npy(dir / "empty.npy", dict("<f4", "(0, 3)"), "");
  write_raw_npy(dir / "empty3.npy", dict("<f4", "(0, 4, 3)"), "");
  write_raw_npy(dir / "labels_empty.npy", dict("<i4", "(0, 64)"), "");
  // A shape far beyond the file's 8 bytes (4 TB): refused before anything is allocated.
  write_raw_npy(dir / "huge_shape.npy", dict("<f4", "(1000000000, 1000)"), std::string(8, '\0'));
  write_raw_npy(dir / "huge_shape3.npy", dict("<f4", "(100000, 100000, 1000)"),
                std::string(8, '\0'));
  // Found by fuzzing: an empty array whose other extent overflows signed strides, and a byte
  // size whose sum with the header offset wraps around 2^64.
  write_raw_npy(dir / "zero_huge.npy", dict("<f4", "(0, 9223372036854775808)"), "");
  write_raw_npy(dir / "wrap.npy", dict("<f8", "(2305843009213693944,)"), "");
  write_raw_npy(dir / "bool_bytes.npy", dict("|b1", "(2, 2)"), std::string("\x02\x00\x01\x00", 4));
  zss::tensor<float, 2> nan_filled = zss::tensor<float, 2>::from_shape({5, 3});
  nan_filled.fill(std::numeric_limits<float>::quiet_NaN());
  zss::save_npy(dir / "nan_filled.npy", nan_filled);
  zss::tensor<float, 3> nan_tokens_all = zss::tensor<float, 3>::from_shape({4, 4, 8});
  nan_tokens_all.fill(std::numeric_limits<float>::quiet_NaN());
  zss::save_npy(dir / "tokens_nan_filled.npy", nan_tokens_all);
  // Finite float32 values whose squares overflow: ±3e38 (issue #17).
  zss::save_npy(dir / "huge_values.npy",
                zss::tensor<float, 2>{{3e38f}, {-3e38f}, {3e38f}, {-3e38f}});
  // 8 x 4096 float32: its centroids (32 KiB at K = 2) exceed a 1-block file-size limit that its
  // labels (160 bytes) fit.
  zss::tensor<float, 2> wide = zss::tensor<float, 2>::from_shape({8, 4096});
  for (auto& v : wide) v = g.normal<float>();
  zss::save_npy(dir / "wide.npy", wide);
  // Labels: one seen label 7 (outside --num-seen 2), one beyond int32, and a grid that does not
  // match the tokens' (10 x 10 pixels for 16 x 16 tokens).
  auto label7 = labels;
  label7(5, 9) = 7;
  zss::save_npy(dir / "labels_7.npy", label7);
  auto label_big = labels;
  label_big(2, 3) = std::int64_t(1) << 40;
  zss::save_npy(dir / "labels_int64_big.npy", label_big);
  zss::tensor<std::int64_t, 2> small_labels = zss::tensor<std::int64_t, 2>::from_shape({10, 10});
  small_labels.fill(0);
  zss::save_npy(dir / "labels_10x10.npy", small_labels);
  return 0;
}
