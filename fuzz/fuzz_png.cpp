// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the PNG reader (io/image_read.hpp: read_png_info, read_png_grey for label
// maps, read_png_rgb for pictures) on arbitrary bytes. The reader takes a path, so each input is
// written to a file of this process first. Every input must end in a value whose shape matches
// the header and whose labels fit the bit depth, or in the reader's documented errors
// (std::runtime_error for a file that is not a readable PNG, std::invalid_argument for one that
// does not fit the request); anything else — a crash, a sanitizer report, another exception, a
// leak, an allocation beyond libFuzzer's -malloc_limit_mb — is a finding. fuzz/README.md runs it.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>

#include "zss/io/image_read.hpp"

namespace {

// Removed when the process exits normally (a crash leaves it, next to libFuzzer's crash-* input).
const std::filesystem::path& scratch() {
  static const std::filesystem::path file = std::filesystem::temp_directory_path() /
                                            ("zss_fuzz_png_" + std::to_string(::getpid()) + ".png");
  static const bool cleanup = [] {
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove(file, ec);
    });
    return true;
  }();
  (void)cleanup;
  return file;
}

template <class F>
void survive(F&& read) {
  try {
    read();
  } catch (const std::runtime_error&) {
  } catch (const std::invalid_argument&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto& file = scratch();
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!out) std::abort();  // the scratch file itself failed: not a finding of the reader
  }
  zss::png_info info;
  bool have_info = false;
  survive([&] {
    info = zss::read_png_info(file);
    have_info = true;
  });
  survive([&] {
    const auto labels = zss::read_png_grey(file);
    // A decoded label map has the header's shape, and its labels fit the bit depth.
    if (!have_info || labels.shape()[0] != info.height || labels.shape()[1] != info.width)
      std::abort();
    const std::int32_t top = info.bit_depth == 16 ? 65535 : 255;
    for (std::size_t i = 0; i < labels.size(); ++i)
      if (labels.data()[i] < 0 || labels.data()[i] > top) std::abort();
  });
  survive([&] {
    const auto rgb = zss::read_png_rgb(file);
    if (!have_info || rgb.shape()[0] != info.height || rgb.shape()[1] != info.width ||
        rgb.shape()[2] != 3)
      std::abort();
  });
  return 0;
}
