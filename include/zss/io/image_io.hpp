// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/io/image_io.hpp
 * PNG pictures of label maps: a fixed colour palette and an atomic PNG writer (Debian's stb).
 *
 * Legend: H × W a picture, C channels (1 grey, 3 RGB, 4 RGBA).
 *
 * stb and the one-definition rule. zss is header-only, so the stb_image_write implementation is
 * compiled into every translation unit that includes this header, with `STB_IMAGE_WRITE_STATIC`:
 * every stb function is `static` (internal linkage), so several TUs never clash at link time and
 * no `-lstb` is needed. If a TU has already included `stb_image_write.h` itself (include guard
 * `INCLUDE_STB_IMAGE_WRITE_H` set), this header uses those declarations and does *not* compile a
 * second implementation: the program must then provide one as stb documents (its own
 * `STB_IMAGE_WRITE_IMPLEMENTATION` TU, or Debian's `-lstb`). A TU that wants its own stb
 * implementation must include `stb_image_write.h` *before* this header. The include path comes
 * from pkg-config `stb` (`-I/usr/include/stb`); `<stb/stb_image_write.h>` is used otherwise.
 *
 * Writes are atomic (`write_file_atomically`): the PNG is encoded in memory, then written to a
 * temporary file in the target's directory and renamed; a failure leaves no partial file.
 */
#include <array>
#include <cstdint>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "zss/core/check.hpp"
#include "zss/core/tensor.hpp"
#include "zss/io/atomic_file.hpp"

#if !defined(INCLUDE_STB_IMAGE_WRITE_H)
#define ZSS_STB_IMAGE_WRITE_OWN_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-variable"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wpedantic"
#endif
#endif
#if __has_include(<stb_image_write.h>)
#include <stb_image_write.h>
#else
#include <stb/stb_image_write.h>
#endif
#if defined(ZSS_STB_IMAGE_WRITE_OWN_IMPLEMENTATION)
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#undef STB_IMAGE_WRITE_IMPLEMENTATION
#undef ZSS_STB_IMAGE_WRITE_OWN_IMPLEMENTATION
#endif

namespace zss {

/// An RGB colour.
using rgb = std::array<std::uint8_t, 3>;

/**
 * The palette colour of a label: fixed, distinct for every label in [0, 2²⁴ − 1), never black;
 * every negative label (ignored, −1) is black.
 *
 * The PASCAL VOC colour map (the bits of an index spread over the high bits of R, G and B)
 * applied to `label + 1`: label 0 → (128, 0, 0), 1 → (0, 128, 0), 2 → (128, 128, 0), … Nearby
 * labels get clearly different colours, and the VOC map's own index 0 (black) is left to ignored
 * pixels. Labels ≥ 2²⁴ − 1 wrap around (the map has 2²⁴ colours).
 */
constexpr rgb label_colour(std::int64_t label) noexcept {
  if (label < 0) return {0, 0, 0};
  std::uint32_t id = static_cast<std::uint32_t>((label % ((std::int64_t(1) << 24) - 1)) + 1);
  std::uint32_t r = 0, g = 0, b = 0;
  for (int bit = 7; bit >= 0; --bit) {
    r |= ((id >> 0) & 1u) << bit;
    g |= ((id >> 1) & 1u) << bit;
    b |= ((id >> 2) & 1u) << bit;
    id >>= 3;
  }
  return {static_cast<std::uint8_t>(r), static_cast<std::uint8_t>(g), static_cast<std::uint8_t>(b)};
}

/**
 * A colour picture of a label map: `out(y, x) = label_colour(labels(y, x))`.
 * @param labels H × W labels; negative values (ignored) become black.
 * @returns H × W × 3 RGB, 8 bits per channel.
 */
template <class Label>
requires std::integral<Label> tensor<std::uint8_t, 3> colorize_labels(
    const tensor<Label, 2>& labels) {
  const index_t h = labels.shape()[0], w = labels.shape()[1];
  tensor<std::uint8_t, 3> out = tensor<std::uint8_t, 3>::from_shape({h, w, 3});
  for (index_t i = 0; i < h * w; ++i) {
    const rgb c = label_colour(static_cast<std::int64_t>(labels.data()[i]));
    for (index_t ch = 0; ch < 3; ++ch) out.data()[3 * i + ch] = c[ch];
  }
  return out;
}

/**
 * Encodes an 8-bit image as PNG in memory (stb, default compression).
 * @param pixels   H × W × C bytes, row-major, interleaved channels.
 * @param channels C ∈ {1, 2, 3, 4} (grey, grey+alpha, RGB, RGBA).
 * @throws std::invalid_argument on an empty image, a bad channel count or a size beyond stb's int.
 */
inline std::vector<unsigned char> encode_png(const std::uint8_t* pixels, index_t height,
                                             index_t width, index_t channels) {
  require(height > 0 && width > 0, "encode_png: image is empty (" + std::to_string(height) + " x " +
                                       std::to_string(width) + ")");
  require(channels >= 1 && channels <= 4,
          "encode_png: channels must be 1, 2, 3 or 4, got " + std::to_string(channels));
  constexpr index_t max_side = index_t(1) << 24;
  require(height < max_side && width < max_side && width * channels < (index_t(1) << 30),
          "encode_png: image " + std::to_string(height) + " x " + std::to_string(width) +
              " is too large");
  std::vector<unsigned char> bytes;
  auto append = [](void* context, void* data, int size) {
    auto* out = static_cast<std::vector<unsigned char>*>(context);
    const auto* p = static_cast<const unsigned char*>(data);
    out->insert(out->end(), p, p + size);
  };
  const int ok = stbi_write_png_to_func(append, &bytes, static_cast<int>(width),
                                        static_cast<int>(height), static_cast<int>(channels),
                                        pixels, static_cast<int>(width * channels));
  if (!ok || bytes.empty()) throw std::runtime_error("encode_png: stb failed to encode the image");
  return bytes;
}

/**
 * Writes an 8-bit image as a PNG file, atomically.
 * @param pixels H × W × C (C ∈ {1, 2, 3, 4}).
 * @throws std::invalid_argument for a bad image (see `encode_png`); std::runtime_error naming the
 *         file when it cannot be written (nothing is left behind; an old file stays intact).
 */
inline void write_png(const std::filesystem::path& file, const tensor<std::uint8_t, 3>& pixels) {
  const auto bytes =
      encode_png(pixels.data(), pixels.shape()[0], pixels.shape()[1], pixels.shape()[2]);
  write_file_atomically(file, [&](std::ostream& out) {
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
  });
}

/// Writes a grey-scale H × W image as PNG, atomically.
inline void write_png(const std::filesystem::path& file, const tensor<std::uint8_t, 2>& pixels) {
  const auto bytes = encode_png(pixels.data(), pixels.shape()[0], pixels.shape()[1], 1);
  write_file_atomically(file, [&](std::ostream& out) {
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
  });
}

/// Writes the colour picture of an H × W label map (`colorize_labels`) as PNG, atomically.
template <class Label>
requires std::integral<Label>
void write_label_png(const std::filesystem::path& file, const tensor<Label, 2>& labels) {
  write_png(file, colorize_labels(labels));
}

}  // namespace zss
