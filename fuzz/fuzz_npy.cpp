// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the .npy reader (io/npy.hpp) on arbitrary bytes. Every input must end in a
// value or in the reader's documented errors (std::runtime_error for a file zss cannot read,
// std::invalid_argument for one that does not fit the request); anything else — a crash, a
// sanitizer report, another exception (std::bad_alloc from an unchecked size), a leak, an
// allocation beyond libFuzzer's -malloc_limit_mb — is a finding. fuzz/README.md runs it.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>

#include "zss/io/npy.hpp"

namespace {

template <class F>
void survive(const std::string& bytes, F&& load) {
  std::istringstream in(bytes, std::ios::binary);
  try {
    load(in, bytes.size());
  } catch (const std::runtime_error&) {
  } catch (const std::invalid_argument&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  const std::filesystem::path name = "fuzz.npy";
  using zss::index_t;
  survive(bytes, [&](std::istream& in, std::size_t n) {
    const auto h = zss::detail::npy_read_header(in, n, name);
    (void)h.describe();
  });
  // What the tools and the library load: float tokens (rank 2, 3), integer labels, bools.
  survive(bytes,
          [&](std::istream& in, std::size_t n) { (void)zss::load_npy<float, 2>(in, n, name); });
  survive(bytes,
          [&](std::istream& in, std::size_t n) { (void)zss::load_npy<double, 3>(in, n, name); });
  survive(bytes,
          [&](std::istream& in, std::size_t n) { (void)zss::load_npy<bool, 2>(in, n, name); });
  survive(bytes,
          [&](std::istream& in, std::size_t n) { (void)zss::load_npy_as<float, 3>(in, n, name); });
  survive(bytes, [&](std::istream& in, std::size_t n) {
    (void)zss::load_npy_as<std::int32_t, 2>(in, n, name);
  });
  survive(bytes,
          [&](std::istream& in, std::size_t n) { (void)zss::load_npy_as<bool, 1>(in, n, name); });
  survive(bytes, [&](std::istream& in, std::size_t n) {
    (void)zss::load_npy_as<std::uint8_t, 1>(in, n, name);
  });
  return 0;
}
