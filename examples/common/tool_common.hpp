// SPDX-License-Identifier: Apache-2.0
#pragma once
// Shared helpers of the command-line tools: uniform error reporting and the process policy
// their outputs rely on. Outputs themselves go through zss::output_set (io/atomic_file.hpp):
// checked before any work, written completely, committed together or not at all.
#include <csignal>
#include <cstdio>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>

namespace zss::tools {

/// Runs `body`, turning any exception into "tool: error: message" on stderr and exit code 1.
/// SIGXFSZ is ignored first, so a file-size limit (`ulimit -f`) is an error of the write that
/// hits it (EFBIG: the outputs are then removed) instead of killing the process mid-write.
template <class F>
int run_tool(const char* tool, F&& body) {
  std::signal(SIGXFSZ, SIG_IGN);
  try {
    return body();
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "%s: error: out of memory\n", tool);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", tool, e.what());
  }
  return 1;
}

}  // namespace zss::tools
