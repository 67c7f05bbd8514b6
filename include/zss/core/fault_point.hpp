// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/core/fault_point.hpp
 * Test-only fault injection: kill the process with SIGKILL at a named moment, so that crash
 * tests reach moments a timer cannot hit reliably (half-way through writing a file, between
 * two renames).
 *
 * The environment variable `ZSS_TEST_FAULT=<name>:<n>` makes the n-th call (1-based, counted
 * per process) of `fault_point("<name>")` send SIGKILL to its own process — the signal a power
 * loss, the OOM killer or a pre-empted cluster job deliver: no destructor, no handler, no flush
 * runs. Unset (the normal case) a fault point costs one load of a cached flag. It is meant for
 * tests only (tests/train_toy/kill_resume.cmake); never set it in production.
 *
 * The points zss defines:
 *  - `atomic_write.partial`         io/atomic_file.hpp: half of a temporary file's bytes are on
 *                                   disk, the rest not yet written;
 *  - `atomic_write.before_rename`   every temporary of an `output_set` is complete and synced,
 *                                   none renamed yet;
 *  - `atomic_write.between_renames` after each rename of an `output_set` but the last;
 *  - `atomic_write.after_rename`    after the last rename, before the directory is synced;
 *  - `trainer.step`                 train/trainer.hpp: inside `trainer::step`, after the
 *                                   backward pass and before the optimiser update.
 */
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace zss {

namespace detail {

/// The parsed `ZSS_TEST_FAULT` ("" and 0 when unset or malformed).
struct fault_setting {
  std::string name;
  std::uint64_t at = 0;
  std::atomic<std::uint64_t> hits{0};
  fault_setting() {
    const char* env = std::getenv("ZSS_TEST_FAULT");
    if (!env) return;
    const std::string_view s(env);
    const auto colon = s.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return;
    std::uint64_t n = 0;
    for (char c : s.substr(colon + 1)) {
      if (c < '0' || c > '9') return;
      n = n * 10 + std::uint64_t(c - '0');
    }
    name = std::string(s.substr(0, colon));
    at = n;
  }
};

inline fault_setting& fault_state() {
  static fault_setting s;
  return s;
}

}  // namespace detail

/// Kills the process with SIGKILL when `ZSS_TEST_FAULT` names this point and this is its n-th
/// call (see the file comment); otherwise does nothing.
inline void fault_point(std::string_view name) {
  auto& s = detail::fault_state();
  if (s.at == 0 || name != s.name) return;
  if (s.hits.fetch_add(1) + 1 == s.at) ::kill(::getpid(), SIGKILL);
}

}  // namespace zss
