// SPDX-License-Identifier: Apache-2.0
#pragma once
/** @file tests/support/error_of.hpp  The message of the exception a call throws. */
#include <exception>
#include <string>

namespace zss::test {

/// `f()`'s exception message, or "(no exception)".
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

}  // namespace zss::test
