// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/core/atomic_file.hpp
 * All-or-nothing file writes: write a temporary file next to the target, then rename it.
 *
 * `write_file_atomically(path, writer)` creates `.<name>.tmp-<random>` in the target's directory,
 * lets `writer(std::ostream&)` fill it, flushes and closes it, checks the stream, and only then
 * `std::filesystem::rename`s it over `path` (atomic on POSIX within one file system, which is why
 * the temporary lives in the same directory). If anything fails — the writer throws, the disk is
 * full, the directory does not exist — the temporary is removed and the exception propagates: the
 * target is either untouched (an old file stays as it was) or complete. Never a partial file.
 *
 * Atomic, not durable: there is no fsync, so after a power loss the new file may be missing (but
 * still never half-written from the reader's point of view on journaling file systems).
 */
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <ios>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include "zss/core/random.hpp"

namespace zss {

namespace detail {

/// A fresh random suffix per call (process-wide counter + entropy, so concurrent writers differ).
inline std::string temporary_suffix() {
  static std::atomic<std::uint64_t> counter{0};
  static const std::uint64_t base = [] {
    std::random_device rd;
    return (std::uint64_t(rd()) << 32) ^ std::uint64_t(rd()) ^
           static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  }();
  rng g(base, counter.fetch_add(1, std::memory_order_relaxed));
  std::ostringstream os;
  os << std::hex << g();
  return os.str();
}

/// "cannot write '<path>': <what>" (built with append: GCC 12's -Wrestrict misfires on "…" + string&&).
[[noreturn]] inline void throw_write_error(const std::filesystem::path& path, const std::string& what) {
  std::string msg("cannot write '");
  msg.append(path.string()).append("': ").append(what);
  throw std::runtime_error(msg);
}

}  // namespace detail

/**
 * Writes `path` all-or-nothing (see the file comment).
 * @param path    the target file; its directory must exist.
 * @param writer  callable `void(std::ostream&)` that writes the whole content (binary stream).
 * @throws std::runtime_error naming `path` when the file cannot be created, written or renamed;
 *         anything `writer` throws, unchanged. In every failure case no file is left behind and
 *         an existing `path` keeps its old content.
 */
template <class Writer>
void write_file_atomically(const std::filesystem::path& path, Writer&& writer) {
  namespace fs = std::filesystem;
  if (path.filename().empty()) detail::throw_write_error(path, "not a file name");
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    detail::throw_write_error(path, std::string("directory '").append(dir.string()).append("' does not exist"));
  if (fs::is_directory(path, ec)) detail::throw_write_error(path, "it is a directory");
  const fs::path tmp = dir / std::string(".").append(path.filename().string()).append(".tmp-").append(detail::temporary_suffix());
  struct remove_on_failure {
    const fs::path& p;
    bool armed = true;
    ~remove_on_failure() {
      if (armed) {
        std::error_code ignored;
        fs::remove(p, ignored);
      }
    }
  } guard{tmp};
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) detail::throw_write_error(path, std::string("cannot create '").append(tmp.string()).append("'"));
    std::forward<Writer>(writer)(static_cast<std::ostream&>(out));
    out.flush();
    if (!out) detail::throw_write_error(path, "write error (disk full?)");
    out.close();
    if (out.fail()) detail::throw_write_error(path, "error closing the file");
  }
  fs::rename(tmp, path, ec);
  if (ec)
    detail::throw_write_error(path, std::string("rename from '").append(tmp.string()).append("' failed: ").append(ec.message()));
  guard.armed = false;
}

}  // namespace zss
