// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the dataset reader (data/dataset.hpp: open_dataset, load_item) on arbitrary
// dataset folders. The reader takes a folder, so each input is unpacked into a fresh scratch
// folder of this process by a length-prefixed framing: a sequence of records
//
//     [1 byte: file id, taken modulo the table below] [2 bytes: length n, little-endian] [n bytes]
//
// (a record shorter than its length takes what is left; a later record of the same id replaces
// the earlier one). Then open_dataset(folder, {"train"}) and, when it succeeds, load_item<float>
// on every item, load_item<double> on the first and text_embeddings<float>. Every input must end
// in a value that keeps the reader's promises (checked below) or in std::invalid_argument /
// std::runtime_error; anything else — a crash, a sanitizer report, another exception, a leak, an
// allocation beyond libFuzzer's -malloc_limit_mb, a timeout — is a finding. fuzz/README.md runs
// it; make_dataset_seeds.py writes its seed corpus in this framing. ZSS_FUZZ_VERBOSE=1 prints
// each input's outcome.
#include <unistd.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "zss/data/dataset.hpp"

namespace {

namespace fs = std::filesystem;
using zss::index_t;

/// The files an input can hold (make_dataset_seeds.py has the same table). An entry ending in
/// '/' makes the four (possibly empty) folders of the split.
constexpr const char* files[] = {
    "dataset.txt",              // 0
    "classes.txt",              // 1
    "text_embeddings.npy",      // 2
    "unseen.txt",               // 3
    "train/images/x.png",       // 4
    "train/images/x.npy",       // 5
    "train/labels/x.png",       // 6
    "train/labels/x.npy",       // 7
    "train/tokens/x.npy",       // 8
    "train/cls/x.npy",          // 9
    "train/images/y.png",       // 10
    "train/images/y.npy",       // 11
    "train/labels/y.png",       // 12
    "train/labels/y.npy",       // 13
    "train/tokens/y.npy",       // 14
    "train/cls/y.npy",          // 15
    "train/labels/z.npy",       // 16: a file without an image
    "train/tokens/x.txt",       // 17: a wrong extension
    "train/images/.x.png.tmp",  // 18: a hidden file (skipped by the reader)
    "train/",                   // 19: the split's four folders
};
constexpr std::size_t file_count = sizeof(files) / sizeof(files[0]);

const fs::path& scratch() {
  static const fs::path dir =
      fs::temp_directory_path() / ("zss_fuzz_dataset_" + std::to_string(::getpid()));
  static const bool cleanup = [] {
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(dir, ec);
    });
    return true;
  }();
  (void)cleanup;
  return dir;
}

void unpack(const std::uint8_t* data, std::size_t size, const fs::path& root) {
  fs::remove_all(root);
  fs::create_directories(root);
  std::size_t at = 0;
  while (at + 3 <= size) {
    const std::size_t id = data[at] % file_count;
    std::size_t n = std::size_t(data[at + 1]) | (std::size_t(data[at + 2]) << 8);
    at += 3;
    n = std::min(n, size - at);
    const std::string name = files[id];
    if (name.back() == '/') {
      for (const char* f : {"images", "labels", "tokens", "cls"})
        fs::create_directories(root / name / f);
    } else {
      const fs::path file = root / name;
      fs::create_directories(file.parent_path());
      std::ofstream out(file, std::ios::binary | std::ios::trunc);
      out.write(reinterpret_cast<const char*>(data + at), static_cast<std::streamsize>(n));
      if (!out) std::abort();  // the scratch folder itself failed: not a finding of the reader
    }
    at += n;
  }
}

/// ZSS_FUZZ_VERBOSE=1 prints each input's outcome (to check what a seed reaches).
void say(const std::string& what) {
  static const bool verbose = std::getenv("ZSS_FUZZ_VERBOSE") != nullptr;
  if (verbose) std::fprintf(stderr, "fuzz_dataset: %s\n", what.c_str());
}

void check(bool ok) {
  if (!ok) std::abort();  // the reader returned a value that breaks its promise
}

template <class T>
void check_item(const zss::data::dataset& d, const zss::data::split_info& s,
                const zss::data::item<T>& it) {
  check(it.image.shape()[0] == s.height && it.image.shape()[1] == s.width &&
        it.image.shape()[2] == 3);
  for (const float v : it.image) check(v >= 0.0f && v <= 1.0f);
  check(it.labels.shape()[0] == s.height && it.labels.shape()[1] == s.width);
  for (const auto l : it.labels) check(l >= -1 && l < std::int32_t(d.classes()));
  check(it.tokens.shape()[0] == s.grid_h && it.tokens.shape()[1] == s.grid_w &&
        it.tokens.shape()[2] == d.dim);
  for (const T v : it.tokens) check(std::isfinite(v));
  check(it.cls.size() == d.dim);
  for (const T v : it.cls) check(std::isfinite(v));
}

void read(const fs::path& root) {
  const auto d = zss::data::open_dataset(root, {"train"});
  // What open_dataset promises: 1 to 255 classes, at least one seen, D > 0, a non-empty split
  // with positive sizes.
  check(d.classes() >= 1 && d.classes() <= 255 && d.seen.size() == d.classes() && d.dim > 0);
  check(!d.seen_ids().empty());
  const auto& s = d.split("train");
  check(s.size() >= 1 && s.height > 0 && s.width > 0 && s.grid_h > 0 && s.grid_w > 0);
  const auto text = d.text_embeddings<float>();
  check(text.shape()[0] == d.classes() && text.shape()[1] == d.dim);
  for (index_t i = 0; i < s.size(); ++i) {
    try {
      check_item(d, s, zss::data::load_item<float>(d, s, i));
    } catch (const std::invalid_argument& e) {
      say("item " + std::to_string(i) + ": invalid_argument: " + e.what());
    } catch (const std::runtime_error& e) {
      say("item " + std::to_string(i) + ": runtime_error: " + e.what());
    }
  }
  check_item(d, s, zss::data::load_item<double>(d, s, 0));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto& root = scratch();
  unpack(data, size, root);
  try {
    read(root);
    say("read");
  } catch (const std::invalid_argument& e) {
    say(std::string("invalid_argument: ") + e.what());
  } catch (const std::runtime_error& e) {
    say(std::string("runtime_error: ") + e.what());
  }
  return 0;
}
