// SPDX-License-Identifier: Apache-2.0
// Tests for zss/io/image_read.hpp: PNGs written by zss (8-bit grey, RGB, RGBA) and a hand-built
// 16-bit grey PNG read back exactly; headers without decoding; missing, non-PNG, truncated files
// and the wrong kind of PNG refused with the file's name.
#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "support/temp_dir.hpp"
#include "zss/io/image_io.hpp"
#include "zss/io/image_read.hpp"

namespace test_io_image_read {

using namespace zss;

namespace {

std::uint32_t crc32_of(const std::string& bytes) {
  std::uint32_t c = 0xffffffffu;
  for (unsigned char b : bytes) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return c ^ 0xffffffffu;
}

void put32(std::string& s, std::uint32_t v) {
  for (int k = 3; k >= 0; --k) s += char((v >> (8 * k)) & 0xff);
}

void chunk(std::string& png, const std::string& type, const std::string& data) {
  put32(png, std::uint32_t(data.size()));
  const std::string body = type + data;
  png += body;
  put32(png, crc32_of(body));
}

/// A 16-bit grey PNG of `values` (H × W), built chunk by chunk (stb writes 8-bit only).
std::string png16(const std::vector<std::uint16_t>& values, index_t H, index_t W) {
  std::string raw;
  for (index_t y = 0; y < H; ++y) {
    raw += char(0);  // filter: none
    for (index_t x = 0; x < W; ++x) {
      raw += char(values[y * W + x] >> 8);
      raw += char(values[y * W + x] & 0xff);
    }
  }
  int len = 0;
  unsigned char* z =
      stbi_zlib_compress(reinterpret_cast<unsigned char*>(raw.data()), int(raw.size()), &len, 8);
  const std::string idat(reinterpret_cast<const char*>(z), std::size_t(len));
  std::free(z);
  std::string png("\x89PNG\r\n\x1a\n", 8), ihdr;
  put32(ihdr, std::uint32_t(W));
  put32(ihdr, std::uint32_t(H));
  ihdr += std::string("\x10\x00\x00\x00\x00", 5);  // 16 bits, grey, deflate, filter 0, no interlace
  chunk(png, "IHDR", ihdr);
  chunk(png, "IDAT", idat);
  chunk(png, "IEND", "");
  return png;
}

/// A grey PNG of `bits` (1, 2, 4 or 8) per label, H × W, rows packed as the format says.
std::string png_grey(int bits, const std::vector<int>& labels, index_t H, index_t W) {
  std::string raw;
  for (index_t y = 0; y < H; ++y) {
    raw += char(0);
    unsigned acc = 0;
    int n = 0;
    for (index_t x = 0; x < W; ++x) {
      acc = (acc << bits) | unsigned(labels[std::size_t(y * W + x)]);
      if ((n += bits) == 8) raw += char(acc), acc = 0, n = 0;
    }
    if (n) raw += char(acc << (8 - n));
  }
  int len = 0;
  unsigned char* z =
      stbi_zlib_compress(reinterpret_cast<unsigned char*>(raw.data()), int(raw.size()), &len, 8);
  const std::string idat(reinterpret_cast<const char*>(z), std::size_t(len));
  std::free(z);
  std::string png("\x89PNG\r\n\x1a\n", 8), ihdr;
  put32(ihdr, std::uint32_t(W));
  put32(ihdr, std::uint32_t(H));
  ihdr += char(bits);
  ihdr += std::string("\x00\x00\x00\x00", 4);  // grey, deflate, filter 0, no interlace
  chunk(png, "IHDR", ihdr);
  chunk(png, "IDAT", idat);
  chunk(png, "IEND", "");
  return png;
}

}  // namespace

TEST_CASE("read_png_rgb and read_png_grey read zss's PNGs exactly") {
  test::temp_dir dir;
  tensor<std::uint8_t, 3> rgb = tensor<std::uint8_t, 3>::from_shape({5, 7, 3});
  for (index_t i = 0; i < rgb.size(); ++i) rgb.data()[i] = std::uint8_t((i * 37) % 256);
  write_png(dir / "rgb.png", rgb);
  const auto info = read_png_info(dir / "rgb.png");
  CHECK(info.height == 5);
  CHECK(info.width == 7);
  CHECK(info.channels == 3);
  CHECK(info.bit_depth == 8);
  CHECK(read_png_rgb(dir / "rgb.png") == rgb);

  tensor<std::uint8_t, 2> grey = tensor<std::uint8_t, 2>::from_shape({4, 3});
  for (index_t i = 0; i < grey.size(); ++i) grey.data()[i] = std::uint8_t(i == 5 ? 255 : i * 20);
  write_png(dir / "grey.png", grey);
  const auto g = read_png_grey(dir / "grey.png");
  for (index_t i = 0; i < grey.size(); ++i) CHECK(g.data()[i] == grey.data()[i]);
  // Grey as RGB: replicated channels.
  const auto g3 = read_png_rgb(dir / "grey.png");
  CHECK(g3(1, 2, 0) == grey(1, 2));
  CHECK(g3(1, 2, 2) == grey(1, 2));
  // RGBA: the alpha channel is dropped.
  tensor<std::uint8_t, 3> rgba = tensor<std::uint8_t, 3>::from_shape({2, 2, 4});
  for (index_t i = 0; i < rgba.size(); ++i) rgba.data()[i] = std::uint8_t(10 * i);
  write_png(dir / "rgba.png", rgba);
  const auto r3 = read_png_rgb(dir / "rgba.png");
  CHECK(r3(1, 1, 0) == rgba(1, 1, 0));
  CHECK(r3(1, 1, 2) == rgba(1, 1, 2));
}

TEST_CASE("read_png_grey reads 16-bit label maps (values above 255)") {
  test::temp_dir dir;
  const std::vector<std::uint16_t> v = {0, 1, 255, 256, 1000, 65535};
  test::write_bytes(dir / "l16.png", png16(v, 2, 3));
  CHECK(read_png_info(dir / "l16.png").bit_depth == 16);
  const auto m = read_png_grey(dir / "l16.png");
  CHECK(m.shape()[0] == 2);
  CHECK(m.shape()[1] == 3);
  for (index_t i = 0; i < v.size(); ++i) CHECK(m.data()[i] == std::int32_t(v[i]));
  CHECK_THROWS_WITH_AS(read_png_rgb(dir / "l16.png"), doctest::Contains("16-bit PNG"),
                       std::invalid_argument);
}

TEST_CASE("bad PNG files are refused with the file's name") {
  test::temp_dir dir;
  CHECK_THROWS_WITH_AS(read_png_info(dir / "none.png"),
                       doctest::Contains("none.png': no such file"), std::runtime_error);
  test::write_bytes(dir / "text.png", "this is not a picture");
  CHECK_THROWS_WITH_AS(read_png_rgb(dir / "text.png"),
                       doctest::Contains("text.png': not a readable PNG"), std::runtime_error);
  tensor<std::uint8_t, 3> rgb = tensor<std::uint8_t, 3>::from_shape({16, 16, 3});
  for (index_t i = 0; i < rgb.size(); ++i) rgb.data()[i] = std::uint8_t((i * 7919) % 251);
  write_png(dir / "rgb.png", rgb);
  CHECK_THROWS_WITH_AS(read_png_grey(dir / "rgb.png"), doctest::Contains("3 channels"),
                       std::invalid_argument);
  const std::string bytes = test::read_bytes(dir / "rgb.png");
  test::write_bytes(dir / "cut.png", bytes.substr(0, bytes.size() / 2));
  CHECK_THROWS_WITH_AS(read_png_rgb(dir / "cut.png"), doctest::Contains("cut.png"),
                       std::runtime_error);
}

TEST_CASE("grey label maps of 1, 2 and 4 bits are read as stored (stb scales them to 0..255)") {
  test::temp_dir dir;
  for (int bits : {1, 2, 4}) {
    CAPTURE(bits);
    std::vector<int> labels(15);
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = int(i * 7 % (1u << bits));
    test::write_bytes(dir / "low.png", png_grey(bits, labels, 3, 5));
    const auto m = read_png_grey(dir / "low.png");
    REQUIRE(m.shape()[0] == 3);
    REQUIRE(m.shape()[1] == 5);
    for (std::size_t i = 0; i < labels.size(); ++i) CHECK(m.data()[i] == labels[i]);
  }
}

TEST_CASE("a PNG promising more than its file holds is refused before stb allocates it") {
  // fuzz_png's finding (fuzz/corpus/png/oom_chunk_length.png): stb grows its buffer to a chunk's
  // declared length before reading it (1.7 GB for a 64-byte file), and sizes the inflated data
  // from the header alone.
  test::temp_dir dir;
  const std::string good = png_grey(8, std::vector<int>(15, 3), 3, 5);
  std::string bad = good.substr(0, 33);  // signature + IHDR
  put32(bad, 0x66000000u);
  bad += "IDAT" + std::string(20, 'x');
  test::write_bytes(dir / "long_chunk.png", bad);
  CHECK_THROWS_WITH_AS(read_png_grey(dir / "long_chunk.png"),
                       doctest::Contains("long_chunk.png': truncated or corrupt PNG: chunk of "
                                         "1711276032 bytes at byte 33 runs past the end"),
                       std::runtime_error);
  std::string big("\x89PNG\r\n\x1a\n", 8), ihdr;
  put32(ihdr, 12000);
  put32(ihdr, 12000);
  ihdr += std::string("\x08\x06\x00\x00\x00", 5);  // 8-bit RGBA: 576 MB decoded
  chunk(big, "IHDR", ihdr);
  chunk(big, "IDAT", good.substr(41, 20));
  chunk(big, "IEND", "");
  test::write_bytes(dir / "big.png", big);
  for (auto read : {+[](const std::filesystem::path& f) { (void)read_png_rgb(f); },
                    +[](const std::filesystem::path& f) { (void)read_png_info(f); }})
    CHECK_THROWS_WITH_AS(read(dir / "big.png"),
                         doctest::Contains("12000 x 12000 pixels (576012000 bytes decoded) cannot "
                                           "come from 20 bytes of compressed data"),
                         std::runtime_error);
}

TEST_CASE("empty IDAT chunks are skipped: the pixels are those of the file without them") {
  // fuzz_png's second finding (fuzz/corpus/png/empty_idat.png): stb copies a first IDAT of
  // length 0 into its not yet allocated buffer, memcpy(nullptr, p, 0), undefined behaviour that
  // the sanitizer build stops at. Empty IDATs are legal, so the file must still decode.
  test::temp_dir dir;
  const std::vector<int> labels{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  const std::string good = png_grey(8, labels, 3, 4);
  // good = signature (8) + IHDR (25) + IDAT + IEND (12): empty IDATs before, between and after.
  const std::string head = good.substr(0, 33), idat = good.substr(33, good.size() - 45),
                    iend = good.substr(good.size() - 12);
  std::string empty;
  chunk(empty, "IDAT", "");
  const std::size_t half = (idat.size() - 12) / 2;  // split the IDAT's data into two chunks
  std::string first, second;
  chunk(first, "IDAT", idat.substr(8, half));
  chunk(second, "IDAT", idat.substr(8 + half, idat.size() - 12 - half));
  for (const auto& [name, bytes] :
       {std::pair{"first.png", head + empty + idat + iend},
        std::pair{"between.png", head + first + empty + empty + second + iend},
        std::pair{"after.png", head + idat + empty + iend}}) {
    CAPTURE(name);
    test::write_bytes(dir / name, bytes);
    const auto grey = read_png_grey(dir / name);
    REQUIRE(grey.shape() == std::array<index_t, 2>{3, 4});
    for (std::size_t i = 0; i < labels.size(); ++i) CHECK(grey.data()[i] == labels[i]);
    const auto rgb = read_png_rgb(dir / name);
    REQUIRE(rgb.shape() == std::array<index_t, 3>{3, 4, 3});
    for (std::size_t i = 0; i < rgb.size(); ++i) CHECK(int(rgb.data()[i]) == labels[i / 3]);
    CHECK(read_png_info(dir / name).width == 4);
  }
  // Only empty IDATs: no data, refused.
  test::write_bytes(dir / "only_empty.png", head + empty + iend);
  CHECK_THROWS_AS(read_png_grey(dir / "only_empty.png"), std::runtime_error);
}

TEST_CASE("a file ending in a cut chunk or without IEND is refused before stb allocates") {
  // fuzz_png's third finding (fuzz/corpus/png/oom_cut_chunk.png, 43 bytes): after the IHDR, 10
  // bytes, the start of a chunk whose length says 1.4 GB; the chunk walk stopped when fewer than
  // 12 bytes were left, stb read the length and grew its buffer to it.
  test::temp_dir dir;
  const std::string good = png_grey(8, std::vector<int>(15, 3), 3, 5);
  std::string bad = good.substr(0, 33);  // signature + IHDR
  put32(bad, 0x54cc000eu);
  bad += "IDAT\x60\x82";
  test::write_bytes(dir / "cut.png", bad);
  for (auto read : {+[](const std::filesystem::path& f) { (void)read_png_grey(f); },
                    +[](const std::filesystem::path& f) { (void)read_png_rgb(f); },
                    +[](const std::filesystem::path& f) { (void)read_png_info(f); }})
    CHECK_THROWS_WITH_AS(read(dir / "cut.png"),
                         doctest::Contains("cut.png': truncated or corrupt PNG: the chunk at byte "
                                           "33 is cut short (10 bytes left"),
                         std::runtime_error);
  // A file that ends after a whole chunk without IEND is refused up front too (stb cannot
  // decode it: read_png_info used to accept it and read_png_grey to fail without a reason).
  test::write_bytes(dir / "no_iend.png", good.substr(0, good.size() - 12));
  for (auto read : {+[](const std::filesystem::path& f) { (void)read_png_grey(f); },
                    +[](const std::filesystem::path& f) { (void)read_png_info(f); }})
    CHECK_THROWS_WITH_AS(read(dir / "no_iend.png"),
                         doctest::Contains("no_iend.png': truncated or corrupt PNG: no IEND chunk"),
                         std::runtime_error);
  // A trailing piece after the IEND is not a chunk and is ignored.
  test::write_bytes(dir / "tail.png", good + "xyz");
  CHECK(read_png_grey(dir / "tail.png")(0, 0) == 3);
}

TEST_CASE("a failure stb gives no reason for is reported in words, never with an earlier reason") {
  // fuzz_dataset's finding of 2026-11-30 (fuzz/corpus/dataset/image_no_reason): stb fails on a
  // DEFLATE block of the reserved type 3 without setting its failure reason, and the reader built
  // its message from the null pointer (a crash when no earlier failure in the thread had left a
  // reason, a stale reason otherwise).
  test::temp_dir dir;
  const std::string reserved("\x78\x01\x07\x00\x00\x00\x00", 7);  // zlib header, BTYPE 11
  for (const int bits : {8, 16}) {
    CAPTURE(bits);
    std::string png("\x89PNG\r\n\x1a\n", 8), ihdr;
    put32(ihdr, 5);
    put32(ihdr, 3);
    ihdr += char(bits);
    ihdr += std::string("\x00\x00\x00\x00", 4);  // grey, deflate, filter 0, no interlace
    chunk(png, "IHDR", ihdr);
    chunk(png, "IDAT", reserved);
    chunk(png, "IEND", "");
    test::write_bytes(dir / "reserved.png", png);
    test::write_bytes(dir / "text.png", "this is not a picture");
    CHECK(read_png_info(dir / "reserved.png").width == 5);  // the header is fine
    std::vector<void (*)(const std::filesystem::path&)> readers{
        [](const std::filesystem::path& f) { (void)read_png_grey(f); }};
    if (bits == 8) readers.push_back([](const std::filesystem::path& f) { (void)read_png_rgb(f); });
    for (const auto read : readers) {
      // An earlier failure in this thread leaves stb a reason ("not PNG") to be forgotten.
      CHECK_THROWS_AS(read_png_rgb(dir / "text.png"), std::runtime_error);
      CHECK_THROWS_WITH_AS(read(dir / "reserved.png"),
                           doctest::Contains("reserved.png': cannot decode the PNG (stb gives no "
                                             "reason: corrupt compressed data)"),
                           std::runtime_error);
    }
  }
}

}  // namespace test_io_image_read
