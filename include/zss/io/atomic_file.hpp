// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/io/atomic_file.hpp
 * All-or-nothing file writes: write a temporary file next to the target, then rename it.
 *
 * `write_file_atomically(path, writer)` creates `.<name>.tmp-<random>` in the target's directory,
 * lets `writer(std::ostream&)` fill it, flushes and closes it, checks the stream, and only then
 * `std::filesystem::rename`s it over `path` (atomic on POSIX within one file system, which is why
 * the temporary lives in the same directory). If anything fails — the writer throws, the disk is
 * full, the directory does not exist — the temporary is removed and the exception propagates: the
 * target is either untouched (an old file stays as it was) or complete. Never a partial file.
 *
 * Durable too: the temporary is `fsync`ed before the rename and the directory after it, so once
 * the call returns the new content survives a power loss (where the file system honours fsync;
 * a directory that refuses fsync is tolerated).
 */
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <concepts>
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
#include <vector>

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

/// "cannot write '<path>': <what>" (built with append: GCC 12's -Wrestrict misfires on "…" +
/// string&&).
[[noreturn]] inline void throw_write_error(const std::filesystem::path& path,
                                           const std::string& what) {
  std::string msg("cannot write '");
  msg.append(path.string()).append("': ").append(what);
  throw std::runtime_error(msg);
}

/// fsync of a file or directory by path; false when it cannot be opened or synced.
inline bool fsync_path(const std::filesystem::path& p, bool directory) {
  const int fd = ::open(p.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
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
requires std::invocable<Writer&, std::ostream&>
void write_file_atomically(const std::filesystem::path& path, Writer&& writer) {
  namespace fs = std::filesystem;
  if (path.filename().empty()) detail::throw_write_error(path, "not a file name");
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    detail::throw_write_error(
        path, std::string("directory '").append(dir.string()).append("' does not exist"));
  if (fs::is_directory(path, ec)) detail::throw_write_error(path, "it is a directory");
  const fs::path tmp = dir / std::string(".")
                                 .append(path.filename().string())
                                 .append(".tmp-")
                                 .append(detail::temporary_suffix());
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
    if (!out)
      detail::throw_write_error(path,
                                std::string("cannot create '").append(tmp.string()).append("'"));
    std::forward<Writer>(writer)(static_cast<std::ostream&>(out));
    out.flush();
    if (!out) detail::throw_write_error(path, "write error (disk full?)");
    out.close();
    if (out.fail()) detail::throw_write_error(path, "error closing the file");
  }
  if (!detail::fsync_path(tmp, false))
    detail::throw_write_error(path, "fsync failed (disk full or I/O error?)");
  fs::rename(tmp, path, ec);
  if (ec)
    detail::throw_write_error(path, std::string("rename from '")
                                        .append(tmp.string())
                                        .append("' failed: ")
                                        .append(ec.message()));
  guard.armed = false;
  (void)detail::fsync_path(dir,
                           true);  // persist the rename (best effort: some file systems refuse)
}

/// `write_file_atomically` of a byte buffer.
inline void write_bytes_atomically(const std::filesystem::path& path,
                                   const std::vector<unsigned char>& bytes) {
  write_file_atomically(path, [&](std::ostream& out) {
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
  });
}

}  // namespace zss
