// SPDX-License-Identifier: Apache-2.0
// Tests for zss/io/image_io.hpp: the palette, PNG bytes decoded back with stb_image, atomic writes.
#include <doctest/doctest.h>

#include <set>
#include <tuple>

#include "support/temp_dir.hpp"
#include "zss/io/image_io.hpp"
#include "zss/io/image_read.hpp"  // stb_image's decoder (PNG), to decode the bytes back

namespace test_io_image_io {

using namespace zss;

namespace {

struct decoded {
  int w = 0, h = 0, c = 0;
  std::vector<unsigned char> pixels;
};

decoded decode(const std::vector<unsigned char>& png) {
  decoded d;
  unsigned char* p =
      stbi_load_from_memory(png.data(), static_cast<int>(png.size()), &d.w, &d.h, &d.c, 0);
  REQUIRE(p != nullptr);
  d.pixels.assign(p, p + d.w * d.h * d.c);
  stbi_image_free(p);
  return d;
}

}  // namespace

TEST_CASE("label_colour: VOC colours of label + 1, ignored is black, all distinct") {
  CHECK(label_colour(-1) == rgb{0, 0, 0});
  CHECK(label_colour(-255) == rgb{0, 0, 0});
  // VOC map by hand: index 1 = bit 0 of R at 128; 2 = G; 3 = R+G; 7 = R+G+B; 8 = R at 64.
  CHECK(label_colour(0) == rgb{128, 0, 0});
  CHECK(label_colour(1) == rgb{0, 128, 0});
  CHECK(label_colour(2) == rgb{128, 128, 0});
  CHECK(label_colour(6) == rgb{128, 128, 128});
  CHECK(label_colour(7) == rgb{64, 0, 0});
  CHECK(label_colour(14) == rgb{192, 128, 128});  // VOC 15 = 0b1111 (person)
  std::set<std::tuple<int, int, int>> seen;
  for (int l = 0; l < 4096; ++l) {
    const rgb c = label_colour(l);
    CHECK_FALSE(c == rgb{0, 0, 0});
    seen.insert({c[0], c[1], c[2]});
  }
  CHECK(seen.size() == 4096);
}

TEST_CASE("colorize_labels maps every pixel through the palette") {
  tensor<std::int32_t, 2> labels = {{0, 1, -1}, {255, 2, 0}};
  const auto img = colorize_labels(labels);
  REQUIRE(img.shape() == std::array<std::size_t, 3>{2, 3, 3});
  for (index_t y = 0; y < 2; ++y)
    for (index_t x = 0; x < 3; ++x)
      for (index_t c = 0; c < 3; ++c) CHECK(img(y, x, c) == label_colour(labels(y, x))[c]);
  CHECK(img(0, 2, 0) == 0);
}

TEST_CASE("encode_png round-trips through a PNG decoder") {
  SUBCASE("RGB") {
    tensor<std::uint8_t, 3> px = tensor<std::uint8_t, 3>::from_shape({5, 7, 3});
    for (index_t i = 0; i < px.size(); ++i) px.data()[i] = static_cast<std::uint8_t>(i * 37 % 256);
    const auto d = decode(encode_png(px.data(), 5, 7, 3));
    CHECK(d.w == 7);
    CHECK(d.h == 5);
    CHECK(d.c == 3);
    CHECK(std::equal(d.pixels.begin(), d.pixels.end(), px.data()));
  }
  SUBCASE("grey") {
    const std::uint8_t px[4] = {0, 64, 128, 255};
    const auto d = decode(encode_png(px, 2, 2, 1));
    CHECK(d.c == 1);
    CHECK(d.pixels == std::vector<unsigned char>{0, 64, 128, 255});
  }
  SUBCASE("bad images") {
    const std::uint8_t px[4] = {};
    CHECK_THROWS_AS(encode_png(px, 0, 2, 1), std::invalid_argument);
    CHECK_THROWS_AS(encode_png(px, 2, 2, 5), std::invalid_argument);
  }
}

TEST_CASE("write_label_png writes a decodable file atomically") {
  zss::test::temp_dir dir;
  const auto file = dir / "labels.png";
  tensor<std::int32_t, 2> labels = {{0, 1}, {-1, 3}};
  write_label_png(file, labels);
  const std::string bytes = zss::test::read_bytes(file);
  const auto d = decode(std::vector<unsigned char>(bytes.begin(), bytes.end()));
  REQUIRE(d.c == 3);
  for (index_t i = 0; i < 4; ++i)
    for (index_t c = 0; c < 3; ++c) CHECK(d.pixels[3 * i + c] == label_colour(labels.data()[i])[c]);
  CHECK(dir.files() == std::vector<std::string>{"labels.png"});

  SUBCASE("a failing write keeps the old picture and leaves nothing else") {
    tensor<std::uint8_t, 3> empty = tensor<std::uint8_t, 3>::from_shape({0, 4, 3});
    CHECK_THROWS_AS(write_png(file, empty), std::invalid_argument);
    CHECK_THROWS_AS(write_label_png(dir / "missing" / "x.png", labels), std::runtime_error);
    CHECK(zss::test::read_bytes(file) == bytes);
    CHECK(dir.files() == std::vector<std::string>{"labels.png"});
  }
}

}  // namespace test_io_image_io
