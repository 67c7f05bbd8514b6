// SPDX-License-Identifier: Apache-2.0
#pragma once
/** @file zss/version.hpp  The library's version (kept equal to the CMake project version). */

#define ZSS_VERSION_MAJOR 0
#define ZSS_VERSION_MINOR 1
#define ZSS_VERSION_PATCH 0

namespace zss {
/// "MAJOR.MINOR.PATCH" of the headers in use.
inline constexpr const char* version_string = "0.1.0";
}  // namespace zss
