// SPDX-License-Identifier: Apache-2.0
#pragma once
// Shared helpers of the command-line tools: output checks up front, uniform error reporting.
#include <cstdio>
#include <exception>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace zss::tools {

/// Checks before any work that `file` can be created: its directory exists and it is not a
/// directory. Outputs are checked up front so that a bad second output never leaves the first
/// one written; each file is then written atomically.
inline void check_output_path(const std::string& option, const std::filesystem::path& file) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
  if (file.filename().empty() || fs::is_directory(file, ec))
    throw std::invalid_argument(option + " '" + file.string() + "' is not a file name");
  if (!fs::is_directory(dir, ec))
    throw std::invalid_argument(option + " '" + file.string() + "': directory '" + dir.string() +
                                "' does not exist");
}

/// Runs `body`, turning any exception into "tool: error: message" on stderr and exit code 1.
template <class F>
int run_tool(const char* tool, F&& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", tool, e.what());
    return 1;
  }
}

}  // namespace zss::tools
