// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/io/atomic_file.hpp
 * All-or-nothing outputs: every file zss writes goes through `output_set` (a group of outputs
 * committed together) or `write_file_atomically` (a group of one).
 *
 * **Checked before any work.** `output_set::add` classifies and checks an output path at once,
 * so a program can refuse a bad output before it computes anything:
 *  - a new or existing *regular file* (a symbolic link is followed: the file it names is
 *    replaced and the link stays): its directory must exist and accept a new file — checked by
 *    creating and removing a probe file there, which is the only test that also holds for root,
 *    read-only mounts and /proc; a directory is refused;
 *  - a *stream*: `-`, `/dev/stdout` (descriptor 1), `/dev/stderr` (2), `/dev/fd/N` and
 *    `/proc/self/fd/N` (descriptor N) are written to that open descriptor; an existing character
 *    device or FIFO (named pipe) is opened for writing, never replaced (so `/dev/null` discards,
 *    a FIFO feeds its reader — opening it waits for one — and a full device fails with its
 *    error);
 *  - refused: block devices (never a disk by mistake), sockets, an output that is the same file
 *    as a registered input (`add_input`: same device and inode, whatever the spelling, hard
 *    links included) or as another output of the set (two streams on one descriptor included).
 *
 * **Written completely, then committed.** `write(i, writer)` renders output i in memory and,
 * for a regular file, writes it to a temporary `.<name>.tmp-<random>` in the target's directory
 * and fsyncs it. `commit()` first writes the streams (they cannot be taken back), then renames
 * every temporary over its target, in the order added, and fsyncs the directories. An error at
 * any point before the renames — a writer that throws, a full disk, a closed pipe — removes every
 * temporary: no target is touched. The renames themselves do not fail in practice once the
 * temporaries exist (same directory, same file system); a group of renames is not atomic, so a
 * crash *between* two of them leaves the outputs renamed so far new and the others old (each one
 * is always complete). A process killed with SIGKILL may leave a hidden temporary behind, never a
 * partial file under a target's name; `remove_stale_temporaries` cleans them up.
 *
 * **Durable.** Temporaries are fsynced before the rename and the directory after it, so once
 * `commit` returns the content survives a power loss (where the file system honours fsync; a
 * directory that refuses fsync is tolerated). An existing file's permission bits are kept.
 *
 * Test-only fault points (core/fault_point.hpp): `atomic_write.partial`,
 * `atomic_write.before_rename`, `atomic_write.between_renames`, `atomic_write.after_rename`.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <filesystem>
#include <ios>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "zss/core/fault_point.hpp"
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

/// The temporary's name prefix for `file`: ".<name>.tmp-".
inline std::string temporary_prefix(const std::filesystem::path& file) {
  return std::string(".").append(file.filename().string()).append(".tmp-");
}

/// "cannot write '<path>' (<option>): <what>" (built with append: GCC 12's -Wrestrict misfires
/// on "…" + string&&).
[[noreturn]] inline void throw_write_error(const std::filesystem::path& path,
                                           const std::string& what,
                                           const std::string& option = {}) {
  std::string msg("cannot write '");
  msg.append(path.string()).append("'");
  if (!option.empty()) msg.append(" (").append(option).append(")");
  msg.append(": ").append(what);
  throw std::runtime_error(msg);
}

/// The text of an errno value ("No space left on device").
inline std::string errno_text(int e) {
  return std::generic_category().message(e);
}

/// fsync of a file or directory by path; false when it cannot be opened or synced.
inline bool fsync_path(const std::filesystem::path& p, bool directory) {
  const int fd = ::open(p.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

/// Writes all `n` bytes to `fd` (retrying short writes and EINTR); false with errno set on error.
inline bool write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ::ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

/// The descriptor a stream name denotes: "-" and "/dev/stdout" → 1, "/dev/stderr" → 2,
/// "/dev/fd/N" and "/proc/self/fd/N" → N; −1 for any other name.
inline int stream_descriptor(const std::string& s) {
  if (s == "-" || s == "/dev/stdout") return 1;
  if (s == "/dev/stderr") return 2;
  for (std::string_view prefix : {std::string_view("/dev/fd/"), std::string_view("/proc/self/fd/")})
    if (s.size() > prefix.size() && s.compare(0, prefix.size(), prefix) == 0) {
      int fd = 0;
      for (char c : std::string_view(s).substr(prefix.size())) {
        if (c < '0' || c > '9' || fd > 1'000'000) return -1;
        fd = fd * 10 + (c - '0');
      }
      return fd;
    }
  return -1;
}

}  // namespace detail

/**
 * Outputs written completely, checked up front and committed together (see the file comment).
 *
 *     output_set out;
 *     out.add_input(input_path, "INPUT");
 *     const auto labels = out.add(labels_path, "--labels");   // checks now, before any work
 *     … compute …
 *     out.write(labels, [&](std::ostream& s) { … });          // a temporary, synced
 *     out.commit();                                           // all renamed, or none
 *
 * Destroying a set that was not committed removes its temporaries.
 */
class output_set {
 public:
  output_set() = default;
  output_set(const output_set&) = delete;
  output_set& operator=(const output_set&) = delete;
  ~output_set() {
    for (auto& e : entries_)
      if (!e.tmp.empty() && !e.renamed) ::unlink(e.tmp.c_str());
  }

  /**
   * Registers a file the program reads: no output may be the same file.
   * @param option how the user named it, for messages ("INPUT", "--tokens").
   */
  void add_input(const std::filesystem::path& file, std::string option = {}) {
    identity id;
    struct stat st {};
    if (::stat(file.c_str(), &st) == 0) id = {true, st.st_dev, st.st_ino};
    inputs_.push_back({file, std::move(option), id});
  }

  /**
   * Registers and checks one output (see the file comment for what each kind of path means).
   * @param file   the path as given ("-" = standard output).
   * @param option how the user named it, for messages ("--labels").
   * @returns its index for `write`.
   * @throws std::runtime_error "cannot write '<file>' (<option>): <reason>" when the output is
   *         refused; nothing is created.
   */
  std::size_t add(const std::filesystem::path& file, std::string option = {}) {
    entry e;
    e.given = file;
    e.option = std::move(option);
    classify(e);
    for (const auto& in : inputs_)
      if (e.id.known && in.id.known && e.id.dev == in.id.dev && e.id.ino == in.id.ino)
        fail(e, "it is the same file as the input '" + in.path.string() + "'" +
                    (in.option.empty() ? "" : " (" + in.option + ")") +
                    "; choose another output name");
    for (const auto& o : entries_) {
      const bool same_fd = e.fd >= 0 && e.fd == o.fd;
      const bool same_id = e.id.known && o.id.known && e.id.dev == o.id.dev && e.id.ino == o.id.ino;
      const bool same_path =
          e.kind == target_kind::file && o.kind == target_kind::file && e.target == o.target;
      if (same_fd || same_id || same_path)
        fail(e, "it is the same " + std::string(same_fd ? "stream" : "file") +
                    " as another output, '" + o.given.string() + "'" +
                    (o.option.empty() ? "" : " (" + o.option + ")"));
    }
    entries_.push_back(std::move(e));
    return entries_.size() - 1;
  }

  /// Number of outputs.
  std::size_t size() const noexcept { return entries_.size(); }
  /// The path of output i as given.
  const std::filesystem::path& path(std::size_t i) const { return entries_.at(i).given; }
  /// True when an output goes to standard output (descriptor 1): the program's own text then
  /// belongs on standard error.
  bool uses_stdout() const noexcept {
    for (const auto& e : entries_)
      if (e.fd == 1) return true;
    return false;
  }

  /**
   * Renders output i: `writer(std::ostream&)` writes the whole content; for a regular file it
   * goes to a synced temporary, for a stream it waits in memory for `commit`.
   * @throws what `writer` throws, or std::runtime_error naming the file (disk full, …); the
   *         temporary is then removed.
   */
  template <class Writer>
  requires std::invocable<Writer&, std::ostream&>
  void write(std::size_t i, Writer&& writer) {
    std::ostringstream os(std::ios::out | std::ios::binary);
    std::forward<Writer>(writer)(static_cast<std::ostream&>(os));
    if (!os)
      detail::throw_write_error(entries_.at(i).given, "the writer failed", entries_[i].option);
    write_bytes(i, os.view());
  }

  /// Renders output i from bytes (see `write`).
  void write_bytes(std::size_t i, std::string_view bytes) {
    entry& e = entries_.at(i);
    if (e.kind == target_kind::stream) {
      e.content.assign(bytes);
      e.written = true;
      return;
    }
    if (!e.tmp.empty()) ::unlink(e.tmp.c_str());
    e.tmp.clear();
    e.written = false;
    const int fd = create_temporary(e, e.tmp);
    const std::size_t half = bytes.size() / 2;
    bool ok = detail::write_all(fd, bytes.data(), half);
    if (ok) {
      fault_point("atomic_write.partial");
      ok = detail::write_all(fd, bytes.data() + half, bytes.size() - half);
    }
    int err = ok ? 0 : errno;
    if (ok && ::fsync(fd) != 0) err = errno, ok = false;
    if (::close(fd) != 0 && ok) err = errno, ok = false;
    if (!ok) {
      ::unlink(e.tmp.c_str());
      e.tmp.clear();
      fail(e, detail::errno_text(err));
    }
    e.written = true;
  }

  /// `write_bytes` of a byte vector.
  void write_bytes(std::size_t i, const std::vector<unsigned char>& bytes) {
    write_bytes(i, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  }

  /**
   * Writes the streams, then renames every temporary over its target (see the file comment).
   * @throws std::logic_error when an output was never written; std::runtime_error naming the
   *         output when a stream or a rename fails.
   */
  void commit() {
    for (const auto& e : entries_)
      if (!e.written)
        throw std::logic_error("output_set::commit: '" + e.given.string() + "' was never written");
    for (auto& e : entries_) {
      if (e.kind != target_kind::stream) continue;
      const int fd = e.fd >= 0 ? e.fd : ::open(e.target.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC);
      if (fd < 0) fail(e, "cannot open it for writing: " + detail::errno_text(errno));
      bool ok = detail::write_all(fd, e.content.data(), e.content.size());
      int err = ok ? 0 : errno;
      if (e.fd < 0 && ::close(fd) != 0 && ok) err = errno, ok = false;
      if (!ok) fail(e, detail::errno_text(err));
    }
    fault_point("atomic_write.before_rename");
    std::vector<std::filesystem::path> dirs;
    std::size_t renamed = 0, files = 0;
    for (const auto& e : entries_) files += e.kind == target_kind::file;
    for (auto& e : entries_) {
      if (e.kind != target_kind::file) continue;
      if (::rename(e.tmp.c_str(), e.target.c_str()) != 0) {
        const int err = errno;
        std::string done;
        for (const auto& o : entries_)
          if (o.renamed) done += (done.empty() ? "" : ", ") + ("'" + o.given.string() + "'");
        fail(e, "rename from '" + e.tmp.string() + "' failed: " + detail::errno_text(err) +
                    (done.empty() ? "" : " (already replaced: " + done + ")"));
      }
      e.renamed = true;
      if (++renamed < files) fault_point("atomic_write.between_renames");
      const auto dir = e.target.parent_path();
      bool seen = false;
      for (const auto& d : dirs) seen = seen || d == dir;
      if (!seen) dirs.push_back(dir);
    }
    fault_point("atomic_write.after_rename");
    for (const auto& d : dirs) (void)detail::fsync_path(d, true);  // best effort
    committed_ = true;
  }

  bool committed() const noexcept { return committed_; }

 private:
  enum class target_kind { file, stream };
  struct identity {
    bool known = false;
    dev_t dev = 0;
    ino_t ino = 0;
  };
  struct entry {
    std::filesystem::path given;  // as the user wrote it
    std::string option;           // "--labels"
    target_kind kind = target_kind::file;
    std::filesystem::path target;  // file: the resolved path renamed over; stream: opened path
    int fd = -1;                   // stream to an open descriptor, or −1
    identity id;                   // the existing file or descriptor, when there is one
    mode_t mode = 0;               // file: permission bits to keep (0 = a new file)
    std::filesystem::path tmp;     // file: the written temporary
    std::string content;           // stream: the bytes to write at commit
    bool written = false, renamed = false;
  };
  struct input {
    std::filesystem::path path;
    std::string option;
    identity id;
  };

  [[noreturn]] static void fail(const entry& e, const std::string& what) {
    detail::throw_write_error(e.given, what, e.option);
  }

  /// Sets kind, target, fd, identity and mode of `e`, or throws why the output is refused.
  static void classify(entry& e) {
    namespace fs = std::filesystem;
    const std::string given = e.given.string();
    if (given.empty()) fail(e, "the file name is empty");
    if (const int fd = detail::stream_descriptor(given); fd >= 0) {
      const int flags = ::fcntl(fd, F_GETFL);
      if (flags < 0 || (flags & O_ACCMODE) == O_RDONLY)
        fail(e, "descriptor " + std::to_string(fd) + " is not open for writing");
      struct stat st {};
      if (::fstat(fd, &st) == 0) e.id = {true, st.st_dev, st.st_ino};
      e.kind = target_kind::stream;
      e.fd = fd;
      e.target = e.given;
      return;
    }
    // Follow symbolic links by hand (a dangling link names the file to create).
    fs::path p = e.given;
    for (int depth = 0;; ++depth) {
      struct stat lst {};
      if (::lstat(p.c_str(), &lst) != 0 || !S_ISLNK(lst.st_mode)) break;
      if (depth == 40) fail(e, "too many levels of symbolic links");
      std::error_code ec;
      const fs::path to = fs::read_symlink(p, ec);
      if (ec) fail(e, "cannot read the symbolic link: " + ec.message());
      p = to.is_absolute() ? to : p.parent_path() / to;
    }
    if (p.filename().empty() || p.filename() == "." || p.filename() == "..")
      fail(e, "it is not a file name");
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0) {
      e.id = {true, st.st_dev, st.st_ino};
      if (S_ISDIR(st.st_mode)) fail(e, "it is a directory");
      if (S_ISBLK(st.st_mode))
        fail(e, "it is a block device (zss never writes to a disk device; name a regular file)");
      if (S_ISSOCK(st.st_mode)) fail(e, "it is a socket");
      if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) {
        if (::access(p.c_str(), W_OK) != 0)
          fail(e, "cannot open it for writing: " + detail::errno_text(errno));
        e.kind = target_kind::stream;
        e.target = p;
        return;
      }
      e.mode = st.st_mode & 07777;
    }
    const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
    std::error_code ec;
    if (!fs::exists(dir, ec)) fail(e, "directory '" + dir.string() + "' does not exist");
    if (!fs::is_directory(dir, ec)) fail(e, "'" + dir.string() + "' is not a directory");
    e.kind = target_kind::file;
    e.target = fs::canonical(dir, ec) / p.filename();
    if (ec) fail(e, "cannot resolve directory '" + dir.string() + "': " + ec.message());
    fs::path probe;
    const int fd = create_temporary(e, probe);
    ::close(fd);
    ::unlink(probe.c_str());
  }

  /// Creates a fresh temporary next to `e.target` (mode of the old file, or 0666 & ~umask).
  static int create_temporary(const entry& e, std::filesystem::path& tmp) {
    const auto dir = e.target.parent_path();
    for (int attempt = 0;; ++attempt) {
      tmp = dir / (detail::temporary_prefix(e.target) + detail::temporary_suffix());
      const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd >= 0) {
        if (e.mode != 0) (void)::fchmod(fd, e.mode);
        return fd;
      }
      if (errno == EEXIST && attempt < 8) continue;
      const int err = errno;
      tmp.clear();
      fail(e,
           "cannot create a file in directory '" + dir.string() + "': " + detail::errno_text(err));
    }
  }

  std::vector<entry> entries_;
  std::vector<input> inputs_;
  bool committed_ = false;
};

/**
 * Writes `path` all-or-nothing: an `output_set` of one (see the file comment).
 * @param path    the target: a regular file (its directory must exist), or a stream.
 * @param writer  callable `void(std::ostream&)` that writes the whole content (binary stream).
 * @throws std::runtime_error naming `path` when it is refused or cannot be written; anything
 *         `writer` throws, unchanged. In every failure case no file is left behind and an
 *         existing `path` keeps its old content.
 */
template <class Writer>
requires std::invocable<Writer&, std::ostream&>
void write_file_atomically(const std::filesystem::path& path, Writer&& writer) {
  output_set out;
  const auto i = out.add(path);
  out.write(i, std::forward<Writer>(writer));
  out.commit();
}

/// `write_file_atomically` of a byte buffer.
inline void write_bytes_atomically(const std::filesystem::path& path, std::string_view bytes) {
  output_set out;
  const auto i = out.add(path);
  out.write_bytes(i, bytes);
  out.commit();
}

/// `write_file_atomically` of a byte buffer.
inline void write_bytes_atomically(const std::filesystem::path& path,
                                   const std::vector<unsigned char>& bytes) {
  write_bytes_atomically(
      path, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

/**
 * Removes the temporaries (`.<name>.tmp-*`) a killed writer of `file` may have left in its
 * directory. Only for a program that owns the directory: it would also remove the temporary of
 * a concurrent writer of the same file.
 * @returns how many were removed.
 */
inline std::size_t remove_stale_temporaries(const std::filesystem::path& file) {
  namespace fs = std::filesystem;
  const fs::path dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
  const std::string prefix = detail::temporary_prefix(file);
  std::size_t n = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.compare(0, prefix.size(), prefix) == 0 && it->is_regular_file(ec))
      n += fs::remove(it->path(), ec) ? 1 : 0;
  }
  return n;
}

}  // namespace zss
