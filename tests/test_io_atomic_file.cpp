// SPDX-License-Identifier: Apache-2.0
// Tests for zss/io/atomic_file.hpp (output_set, write_file_atomically) and
// zss/core/fault_point.hpp: outputs checked up front, committed together or not at all, special
// files written into and never replaced, aliases refused, and the state a SIGKILL leaves at
// every fault point (in a forked child, so the test runner survives).
#include <doctest/doctest.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "support/error_of.hpp"
#include "support/temp_dir.hpp"
#include "zss/io/atomic_file.hpp"

namespace test_io_atomic_file {

using namespace zss;
using zss::test::error_of;
using zss::test::read_bytes;
using zss::test::temp_dir;
using zss::test::write_bytes;
namespace fs = std::filesystem;

namespace {

bool has(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

/// A file-size limit of `bytes` for this process while alive (SIGXFSZ ignored: writes fail
/// with EFBIG instead), so "disk full" can be tested as root too.
struct file_size_limit {
  rlimit old{};
  void (*old_handler)(int);
  explicit file_size_limit(rlim_t bytes) {
    old_handler = std::signal(SIGXFSZ, SIG_IGN);
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
    rlimit small = old;
    small.rlim_cur = bytes;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
  }
  ~file_size_limit() {
    ::setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, old_handler);
  }
};

/// Runs `f` in a forked child with the fault point `name` armed at its `at`-th call; returns
/// the signal that ended the child (0 when it exited normally).
template <class F>
int killed_by(const char* name, std::uint64_t at, F&& f) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto& s = detail::fault_state();
    s.name = name;
    s.at = at;
    s.hits = 0;
    try {
      f();
    } catch (...) {
      ::_exit(3);
    }
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

std::vector<std::string> temporaries(const temp_dir& dir) {
  std::vector<std::string> out;
  for (const auto& f : dir.files())
    if (f.find(".tmp-") != std::string::npos) out.push_back(f);
  return out;
}

}  // namespace

TEST_CASE("output_set commits every output or none") {
  temp_dir dir;
  write_bytes(dir / "a.txt", "old a");
  write_bytes(dir / "b.txt", "old b");
  SUBCASE("all written: all replaced, no temporary left") {
    output_set out;
    const auto a = out.add(dir / "a.txt", "--a");
    const auto b = out.add(dir / "b.txt", "--b");
    const auto c = out.add(dir / "c.txt", "--c");
    out.write_bytes(a, std::string_view("new a"));
    out.write(b, [](std::ostream& s) { s << "new b"; });
    out.write_bytes(c, std::string_view("new c"));
    CHECK(read_bytes(dir / "a.txt") == "old a");  // nothing visible before commit
    CHECK_FALSE(fs::exists(dir / "c.txt"));
    out.commit();
    CHECK(out.committed());
    CHECK(read_bytes(dir / "a.txt") == "new a");
    CHECK(read_bytes(dir / "b.txt") == "new b");
    CHECK(read_bytes(dir / "c.txt") == "new c");
    CHECK(temporaries(dir).empty());
  }
  SUBCASE("a failing second write (file-size limit: a full disk, as root too) changes nothing") {
    {
      output_set out;
      const auto a = out.add(dir / "a.txt");
      const auto b = out.add(dir / "b.txt");
      out.write_bytes(a, std::string_view("small"));
      file_size_limit limit(64);
      const auto msg = error_of([&] { out.write_bytes(b, std::string(4096, 'x')); });
      CHECK(has(msg, "cannot write '"));
      CHECK(has(msg, "b.txt"));
      CHECK(has(msg, "File too large"));
    }  // destroyed without commit: the first output's temporary goes too
    CHECK(read_bytes(dir / "a.txt") == "old a");
    CHECK(read_bytes(dir / "b.txt") == "old b");
    CHECK(temporaries(dir).empty());
  }
  SUBCASE("a writer that throws: nothing is renamed") {
    {
      output_set out;
      const auto a = out.add(dir / "a.txt");
      const auto b = out.add(dir / "new.txt");
      out.write_bytes(a, std::string_view("new a"));
      CHECK_THROWS_WITH(out.write(b,
                                  [](std::ostream& s) {
                                    s << "half";
                                    throw std::runtime_error("boom");
                                  }),
                        "boom");
    }
    CHECK(read_bytes(dir / "a.txt") == "old a");
    CHECK_FALSE(fs::exists(dir / "new.txt"));
    CHECK(temporaries(dir).empty());
  }
  SUBCASE("commit before every output is written is a logic error") {
    output_set out;
    (void)out.add(dir / "a.txt");
    CHECK_THROWS_AS(out.commit(), std::logic_error);
    CHECK(read_bytes(dir / "a.txt") == "old a");
  }
  SUBCASE("an existing file keeps its permission bits") {
    REQUIRE(::chmod((dir / "a.txt").c_str(), 0640) == 0);
    write_file_atomically(dir / "a.txt", [](std::ostream& s) { s << "x"; });
    struct stat st {};
    REQUIRE(::stat((dir / "a.txt").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0640);
  }
}

TEST_CASE("output_set checks every output before any work") {
  temp_dir dir;
  write_bytes(dir / "in.npy", "input");
  fs::create_directory(dir / "sub");
  auto refused = [&](const fs::path& p, const std::string& why) {
    output_set out;
    out.add_input(dir / "in.npy", "INPUT");
    const auto msg = error_of([&] { (void)out.add(p, "--o"); });
    CHECK_MESSAGE(has(msg, why), msg);
    CHECK_MESSAGE(has(msg, "--o"), msg);
  };
  SUBCASE("missing folder, a folder, a file as folder, an empty name, /proc") {
    refused(dir / "no-such-dir" / "x.npy", "no-such-dir' does not exist");
    refused(dir / "sub", "it is a directory");
    refused(dir / "sub" / "", "it is not a file name");
    refused(dir / "in.npy" / "x.npy", "is not a directory");
    refused("", "the file name is empty");
    // Not writable for anyone, root included: the probe file is what finds out.
    refused("/proc/zss-output.npy", "cannot create a file in directory '/proc'");
    CHECK(dir.files().size() == 2);  // no probe or temporary left behind
  }
  SUBCASE("an output that is an input, under any spelling, a hard link or a symbolic link") {
    refused(dir / "in.npy", "same file as the input");
    refused(dir / "sub" / ".." / "in.npy", "same file as the input");
    fs::create_hard_link(dir / "in.npy", dir / "hard.npy");
    refused(dir / "hard.npy", "same file as the input");
    fs::create_symlink(dir / "in.npy", dir / "link.npy");
    refused(dir / "link.npy", "same file as the input");
    CHECK(read_bytes(dir / "in.npy") == "input");
  }
  SUBCASE("two outputs that are one file") {
    output_set out;
    (void)out.add(dir / "o.npy", "--labels");
    const auto msg = error_of([&] { (void)out.add(dir / "sub" / ".." / "o.npy", "--centroids"); });
    CHECK(has(msg, "same file as another output"));
    CHECK(has(msg, "(--labels)"));
    output_set streams;
    (void)streams.add("-");
    CHECK(has(error_of([&] { (void)streams.add("/dev/stdout"); }), "same stream"));
  }
  SUBCASE("a socket is refused, a block device is never written") {
    const fs::path sock = dir / "s.sock";
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(sock.string().size() < sizeof addr.sun_path);
    std::strcpy(addr.sun_path, sock.c_str());
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    refused(sock, "it is a socket");
    ::close(fd);
    // A block device exists only where the container has one; mknod needs CAP_MKNOD.
    if (::mknod((dir / "blk").c_str(), S_IFBLK | 0600, makedev(7, 200)) == 0)
      refused(dir / "blk", "block device");
  }
}

TEST_CASE("output_set writes into streams and special files, never replaces them") {
  temp_dir dir;
  SUBCASE("a symbolic link: the file it names is replaced, the link stays") {
    write_bytes(dir / "target.txt", "old");
    fs::create_symlink("target.txt", dir / "link.txt");
    write_file_atomically(dir / "link.txt", [](std::ostream& s) { s << "new"; });
    CHECK(fs::is_symlink(dir / "link.txt"));
    CHECK(read_bytes(dir / "target.txt") == "new");
    fs::create_symlink("created.txt", dir / "dangling.txt");
    write_file_atomically(dir / "dangling.txt", [](std::ostream& s) { s << "made"; });
    CHECK(fs::is_symlink(dir / "dangling.txt"));
    CHECK(read_bytes(dir / "created.txt") == "made");
  }
  SUBCASE("/dev/null (through a link too) stays the device") {
    fs::create_symlink("/dev/null", dir / "null");
    write_file_atomically(dir / "null", [](std::ostream& s) { s << "discarded"; });
    CHECK(fs::is_symlink(dir / "null"));
    CHECK(fs::is_character_file("/dev/null"));
    write_file_atomically("/dev/null", [](std::ostream& s) { s << "discarded"; });
    CHECK(fs::is_character_file("/dev/null"));
  }
  SUBCASE("/dev/full fails with its error, before any regular output is renamed") {
    fs::create_symlink("/dev/full", dir / "full");
    output_set out;
    const auto a = out.add(dir / "a.txt");
    const auto f = out.add(dir / "full");
    out.write_bytes(a, std::string_view("a"));
    out.write_bytes(f, std::string_view("bytes"));
    CHECK(has(error_of([&] { out.commit(); }), "No space left on device"));
    CHECK_FALSE(fs::exists(dir / "a.txt"));
    CHECK(fs::is_symlink(dir / "full"));
  }
  SUBCASE("a FIFO feeds its reader and stays a FIFO") {
    REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
    std::string got;
    std::thread reader([&] { got = read_bytes(dir / "fifo"); });
    write_file_atomically(dir / "fifo", [](std::ostream& s) { s << "through the pipe"; });
    reader.join();
    CHECK(got == "through the pipe");
    CHECK(fs::is_fifo(dir / "fifo"));
  }
  SUBCASE("/dev/fd/N writes to the open descriptor N") {
    int p[2];
    REQUIRE(::pipe(p) == 0);
    output_set out;
    const auto i = out.add("/dev/fd/" + std::to_string(p[1]));
    CHECK_FALSE(out.uses_stdout());
    out.write_bytes(i, std::string_view("via fd"));
    out.commit();
    ::close(p[1]);
    char buf[16] = {};
    CHECK(::read(p[0], buf, sizeof buf) == 6);
    CHECK(std::string(buf) == "via fd");
    ::close(p[0]);
    output_set so;
    (void)so.add("-");
    CHECK(so.uses_stdout());
  }
}

TEST_CASE("fault points: a SIGKILL at any moment never leaves a partial file at a target") {
  temp_dir dir;
  write_bytes(dir / "a.txt", "old a");
  write_bytes(dir / "b.txt", "old b");
  const std::string big(1 << 16, 'n');
  auto write_both = [&] {
    output_set out;
    const auto a = out.add(dir / "a.txt");
    const auto b = out.add(dir / "b.txt");
    out.write_bytes(a, std::string_view(big));
    out.write_bytes(b, std::string_view(big));
    out.commit();
  };
  SUBCASE("half-way through a temporary: targets old, a half temporary that cleanup removes") {
    CHECK(killed_by("atomic_write.partial", 2, write_both) == SIGKILL);
    CHECK(read_bytes(dir / "a.txt") == "old a");
    CHECK(read_bytes(dir / "b.txt") == "old b");
    const auto tmp = temporaries(dir);
    REQUIRE(tmp.size() == 2);  // a's complete temporary and b's half one
    CHECK(remove_stale_temporaries(dir / "a.txt") == 1);
    CHECK(remove_stale_temporaries(dir / "b.txt") == 1);
    CHECK(temporaries(dir).empty());
  }
  SUBCASE("before the renames: targets old") {
    CHECK(killed_by("atomic_write.before_rename", 1, write_both) == SIGKILL);
    CHECK(read_bytes(dir / "a.txt") == "old a");
    CHECK(read_bytes(dir / "b.txt") == "old b");
  }
  SUBCASE("between the renames: each target complete, old or new") {
    CHECK(killed_by("atomic_write.between_renames", 1, write_both) == SIGKILL);
    CHECK(read_bytes(dir / "a.txt") == big);
    CHECK(read_bytes(dir / "b.txt") == "old b");
  }
  SUBCASE("after the renames: all new") {
    CHECK(killed_by("atomic_write.after_rename", 1, write_both) == SIGKILL);
    CHECK(read_bytes(dir / "a.txt") == big);
    CHECK(read_bytes(dir / "b.txt") == big);
    CHECK(temporaries(dir).empty());
  }
  SUBCASE("an unarmed or other point does nothing") {
    CHECK(killed_by("atomic_write.partial", 3, write_both) == 0);
    CHECK(killed_by("trainer.step", 1, write_both) == 0);
    CHECK(read_bytes(dir / "b.txt") == big);
  }
}

}  // namespace test_io_atomic_file
