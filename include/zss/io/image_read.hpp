// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/io/image_read.hpp
 * PNG files in: RGB pictures and grey label maps (Debian's stb_image, PNG decoder only).
 * Legend: H × W pixels, C channels in the file (1 grey, 2 grey + alpha, 3 RGB, 4 RGBA).
 *
 * stb and the one-definition rule, as in image_io.hpp: the decoder is compiled into each
 * translation unit that includes this header with `STB_IMAGE_STATIC` (internal linkage) and
 * `STBI_ONLY_PNG`; a translation unit that included `stb_image.h` itself first keeps its own
 * declarations and implementation (include guard `STBI_INCLUDE_STB_IMAGE_H`).
 *
 * Errors: a file that cannot be read as a PNG (missing, not a PNG, corrupt) throws
 * `std::runtime_error` naming the file and stb's reason; a PNG that does not fit the request
 * (channels, bit depth) throws `std::invalid_argument` naming the file and what it holds.
 */
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "zss/core/check.hpp"
#include "zss/core/tensor.hpp"

#if !defined(STBI_INCLUDE_STB_IMAGE_H)
#define ZSS_STB_IMAGE_OWN_IMPLEMENTATION
#define ZSS_STB_IMAGE_OWNED  // stays defined: stbi_clear_reason below uses the static state
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wconversion"
#endif
#if __has_include(<stb_image.h>)
#include <stb_image.h>
#else
#include <stb/stb_image.h>
#endif
#if defined(ZSS_STB_IMAGE_OWN_IMPLEMENTATION)
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#undef STB_IMAGE_IMPLEMENTATION
#undef ZSS_STB_IMAGE_OWN_IMPLEMENTATION
#endif
#endif

namespace zss {

/// What a PNG file's header says (no pixel is decoded).
struct png_info {
  index_t height = 0, width = 0;
  index_t channels = 0;  ///< C in the file
  int bit_depth = 8;     ///< 8 or 16
};

namespace detail {
[[noreturn]] inline void png_fail(const std::filesystem::path& file, const std::string& what) {
  throw std::runtime_error("'" + file.string() + "': " + what);
}
/// Forgets stb's last failure reason before a call that may fail, where this header compiled stb
/// (its reason is a static, thread-local pointer that nothing resets, so a failure that sets no
/// reason would otherwise be reported with an earlier call's).
inline void stbi_clear_reason() noexcept {
#if defined(ZSS_STB_IMAGE_OWNED)
  stbi__g_failure_reason = nullptr;
#endif
}
/// stb's reason for the failure of the last call. stb returns failure without setting one on
/// some corrupt streams (a DEFLATE block of the reserved type 3: `stbi__parse_zlib`), so a null
/// reason is said in words, never handed to a std::string (fuzz_dataset's crash of 2026-11-30).
inline std::string stbi_reason() {
  const char* reason = stbi_failure_reason();
  return reason ? reason : "stb gives no reason: corrupt compressed data";
}
struct stbi_deleter {
  void operator()(void* p) const noexcept { stbi_image_free(p); }
};

/// A PNG file's bytes, its chunk structure checked before stb sees them, and its header.
struct png_bytes {
  std::vector<unsigned char> bytes;
  png_info info;
  int file_depth = 8;  ///< the IHDR's bit depth (1, 2, 4, 8, 16)
  int colour = 0;      ///< the IHDR's colour type
};

inline std::uint32_t be32(const unsigned char* p) {
  return std::uint32_t(p[0]) << 24 | std::uint32_t(p[1]) << 16 | std::uint32_t(p[2]) << 8 | p[3];
}

/**
 * Reads `file` and checks what stb trusts: every chunk lies inside the file (stb grows its
 * buffer to a chunk's declared length before reading it), the IHDR comes first, and the decoded
 * size is at most what the compressed data can inflate to (deflate's limit is 1032:1), so no
 * allocation exceeds about a thousand times the file's size. Empty IDAT chunks (legal, no data)
 * are dropped: stb copies a first empty one to its still-null buffer (memcpy(nullptr, p, 0),
 * undefined behaviour; fuzz_png's second finding). stb does not check CRCs, so nothing else
 * changes. A file that ends in a cut chunk (stb reads its length) or without an IEND (stb
 * cannot decode it) is refused.
 */
inline png_bytes read_png_bytes(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) png_fail(file, "no such file");
  png_bytes png;
  std::ifstream in(file, std::ios::binary);
  const auto size = std::filesystem::file_size(file, ec);
  if (!in || ec) png_fail(file, "cannot open the file");
  if (size > std::uintmax_t(1) << 31) png_fail(file, "larger than 2 GiB (stb's limit)");
  png.bytes.resize(std::size_t(size));
  in.read(reinterpret_cast<char*>(png.bytes.data()), std::streamsize(size));
  if (!in) png_fail(file, "cannot read the file");
  const unsigned char* b = png.bytes.data();
  std::size_t n = png.bytes.size();
  static const unsigned char magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (n < 8 || std::memcmp(b, magic, 8) != 0)
    png_fail(file, "not a readable PNG (no PNG signature)");
  std::uint64_t idat = 0;
  std::uint32_t w = 0, h = 0;
  bool have_header = false, interlaced = false, ended = false;
  std::vector<std::size_t> empty_idat;  // positions of IDAT chunks without data
  std::size_t pos = 8;
  while (pos + 12 <= n) {
    const std::uint64_t len = be32(b + pos);
    const std::string type(reinterpret_cast<const char*>(b + pos + 4), 4);
    if (len > n - pos - 12)
      png_fail(file, "truncated or corrupt PNG: chunk of " + std::to_string(len) +
                         " bytes at byte " + std::to_string(pos) +
                         " runs past the end of the file (" + std::to_string(n) + " bytes)");
    if (!have_header) {
      if (type != "IHDR" || len != 13)
        png_fail(file, "not a readable PNG (the first chunk is not a 13-byte IHDR)");
      w = be32(b + pos + 8), h = be32(b + pos + 12);
      png.file_depth = b[pos + 16], png.colour = b[pos + 17];
      interlaced = b[pos + 20] == 1;
      have_header = true;
    } else if (type == "IDAT") {
      idat += len;
      if (len == 0) empty_idat.push_back(pos);
    } else if (type == "IEND") {
      ended = true;
      break;
    }
    pos += 12 + std::size_t(len);
  }
  if (!have_header) png_fail(file, "not a readable PNG (no IHDR chunk)");
  // A chunk cut before its end (fewer than 12 bytes left) is not seen by the loop, but stb reads
  // its length and allocates it (fuzz_png's third finding); without an IEND stb cannot decode.
  if (!ended && pos < n)
    png_fail(file, "truncated or corrupt PNG: the chunk at byte " + std::to_string(pos) +
                       " is cut short (" + std::to_string(n - pos) +
                       " bytes left, a chunk takes at least 12)");
  if (!ended) png_fail(file, "truncated or corrupt PNG: no IEND chunk");
  for (auto p = empty_idat.rbegin(); p != empty_idat.rend(); ++p)
    png.bytes.erase(png.bytes.begin() + std::ptrdiff_t(*p),
                    png.bytes.begin() + std::ptrdiff_t(*p + 12));
  b = png.bytes.data(), n = png.bytes.size();
  const int samples = png.colour == 2 ? 3 : png.colour == 4 ? 2 : png.colour == 6 ? 4 : 1;
  const std::uint64_t row = (std::uint64_t(w) * samples * std::uint64_t(png.file_depth) + 7) / 8;
  // Adam7 adds at most one partial byte and one filter byte per row of each of its 7 passes.
  const std::uint64_t decoded = std::uint64_t(h) * (row + 1 + (interlaced ? 14 : 0));
  if (w > 0 && h > 0 && decoded / 1032 > idat + 64)
    png_fail(file, "truncated or corrupt PNG: " + std::to_string(h) + " x " + std::to_string(w) +
                       " pixels (" + std::to_string(decoded) + " bytes decoded) cannot come from " +
                       std::to_string(idat) + " bytes of compressed data");
  int iw = 0, ih = 0, ic = 0;
  stbi_clear_reason();
  if (!stbi_info_from_memory(b, int(n), &iw, &ih, &ic))
    png_fail(file, "not a readable PNG (" + stbi_reason() + ")");
  png.info.height = index_t(ih), png.info.width = index_t(iw), png.info.channels = index_t(ic);
  png.info.bit_depth = stbi_is_16_bit_from_memory(b, int(n)) ? 16 : 8;
  return png;
}
}  // namespace detail

/**
 * The header of a PNG file.
 * @throws std::runtime_error naming the file when it is missing or not a readable PNG.
 */
inline png_info read_png_info(const std::filesystem::path& file) {
  return detail::read_png_bytes(file).info;
}

/**
 * An 8-bit PNG as RGB: grey is replicated, alpha dropped (stb's conversion).
 * @returns H × W × 3 bytes.
 * @throws std::runtime_error as `read_png_info`, or when decoding fails (a corrupt file);
 *         std::invalid_argument for a 16-bit PNG.
 */
inline tensor<std::uint8_t, 3> read_png_rgb(const std::filesystem::path& file) {
  const detail::png_bytes png = detail::read_png_bytes(file);
  const png_info& info = png.info;
  if (info.bit_depth != 8)
    throw std::invalid_argument("'" + file.string() + "' is a 16-bit PNG, expected 8-bit RGB");
  int w = 0, h = 0, c = 0;
  detail::stbi_clear_reason();
  std::unique_ptr<stbi_uc, detail::stbi_deleter> px(
      stbi_load_from_memory(png.bytes.data(), int(png.bytes.size()), &w, &h, &c, 3));
  if (!px) detail::png_fail(file, "cannot decode the PNG (" + detail::stbi_reason() + ")");
  tensor<std::uint8_t, 3> out = tensor<std::uint8_t, 3>::from_shape({index_t(h), index_t(w), 3});
  std::copy_n(px.get(), out.size(), out.data());
  return out;
}

/**
 * A one-channel PNG (8 or 16 bits) as integers, e.g. a label map.
 * @returns H × W values in [0, 255] or [0, 65535].
 * @throws std::runtime_error as `read_png_info` or on a corrupt file; std::invalid_argument when
 *         the PNG has more than one channel (e.g. a palette or RGB picture of labels).
 */
inline tensor<std::int32_t, 2> read_png_grey(const std::filesystem::path& file) {
  const detail::png_bytes png = detail::read_png_bytes(file);
  const png_info& info = png.info;
  if (info.channels != 1)
    throw std::invalid_argument("'" + file.string() + "' has " + std::to_string(info.channels) +
                                " channels, expected a one-channel (grey) PNG (a palette PNG "
                                "decodes as RGB: save the indices as grey or as .npy)");
  int w = 0, h = 0, c = 0;
  tensor<std::int32_t, 2> out;
  if (info.bit_depth == 16) {
    detail::stbi_clear_reason();
    std::unique_ptr<stbi_us, detail::stbi_deleter> px(
        stbi_load_16_from_memory(png.bytes.data(), int(png.bytes.size()), &w, &h, &c, 1));
    if (!px) detail::png_fail(file, "cannot decode the PNG (" + detail::stbi_reason() + ")");
    out = tensor<std::int32_t, 2>::from_shape({index_t(h), index_t(w)});
    std::copy_n(px.get(), out.size(), out.data());
  } else {
    detail::stbi_clear_reason();
    std::unique_ptr<stbi_uc, detail::stbi_deleter> px(
        stbi_load_from_memory(png.bytes.data(), int(png.bytes.size()), &w, &h, &c, 1));
    if (!px) detail::png_fail(file, "cannot decode the PNG (" + detail::stbi_reason() + ")");
    out = tensor<std::int32_t, 2>::from_shape({index_t(h), index_t(w)});
    // stb scales grey samples of 1, 2 and 4 bits to 0..255 (x 255, 85, 17): the stored labels
    // are the quotients (exact).
    const int scale = png.file_depth == 1   ? 255
                      : png.file_depth == 2 ? 85
                      : png.file_depth == 4 ? 17
                                            : 1;
    std::transform(px.get(), px.get() + out.size(), out.data(),
                   [scale](stbi_uc v) { return std::int32_t(v) / scale; });
  }
  return out;
}

}  // namespace zss
