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
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

#include "zss/core/check.hpp"
#include "zss/core/tensor.hpp"

#if !defined(STBI_INCLUDE_STB_IMAGE_H)
#define ZSS_STB_IMAGE_OWN_IMPLEMENTATION
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
struct stbi_deleter {
  void operator()(void* p) const noexcept { stbi_image_free(p); }
};
}  // namespace detail

/**
 * The header of a PNG file.
 * @throws std::runtime_error naming the file when it is missing or not a readable PNG.
 */
inline png_info read_png_info(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) detail::png_fail(file, "no such file");
  int w = 0, h = 0, c = 0;
  if (!stbi_info(file.c_str(), &w, &h, &c))
    detail::png_fail(file, std::string("not a readable PNG (") + stbi_failure_reason() + ")");
  png_info info;
  info.height = index_t(h), info.width = index_t(w), info.channels = index_t(c);
  info.bit_depth = stbi_is_16_bit(file.c_str()) ? 16 : 8;
  return info;
}

/**
 * An 8-bit PNG as RGB: grey is replicated, alpha dropped (stb's conversion).
 * @returns H × W × 3 bytes.
 * @throws std::runtime_error as `read_png_info`, or when decoding fails (a corrupt file);
 *         std::invalid_argument for a 16-bit PNG.
 */
inline tensor<std::uint8_t, 3> read_png_rgb(const std::filesystem::path& file) {
  const png_info info = read_png_info(file);
  if (info.bit_depth != 8)
    throw std::invalid_argument("'" + file.string() + "' is a 16-bit PNG, expected 8-bit RGB");
  int w = 0, h = 0, c = 0;
  std::unique_ptr<stbi_uc, detail::stbi_deleter> px(stbi_load(file.c_str(), &w, &h, &c, 3));
  if (!px)
    detail::png_fail(file, std::string("cannot decode the PNG (") + stbi_failure_reason() + ")");
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
  const png_info info = read_png_info(file);
  if (info.channels != 1)
    throw std::invalid_argument("'" + file.string() + "' has " + std::to_string(info.channels) +
                                " channels, expected a one-channel (grey) PNG (a palette PNG "
                                "decodes as RGB: save the indices as grey or as .npy)");
  int w = 0, h = 0, c = 0;
  tensor<std::int32_t, 2> out;
  if (info.bit_depth == 16) {
    std::unique_ptr<stbi_us, detail::stbi_deleter> px(stbi_load_16(file.c_str(), &w, &h, &c, 1));
    if (!px)
      detail::png_fail(file, std::string("cannot decode the PNG (") + stbi_failure_reason() + ")");
    out = tensor<std::int32_t, 2>::from_shape({index_t(h), index_t(w)});
    std::copy_n(px.get(), out.size(), out.data());
  } else {
    std::unique_ptr<stbi_uc, detail::stbi_deleter> px(stbi_load(file.c_str(), &w, &h, &c, 1));
    if (!px)
      detail::png_fail(file, std::string("cannot decode the PNG (") + stbi_failure_reason() + ")");
    out = tensor<std::int32_t, 2>::from_shape({index_t(h), index_t(w)});
    std::copy_n(px.get(), out.size(), out.data());
  }
  return out;
}

}  // namespace zss
