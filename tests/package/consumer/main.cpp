// SPDX-License-Identifier: Apache-2.0
// Uses zss::zss from find_package: includes the umbrella header and checks a kernel result.
#include <cstdio>

#include <zss/zss.hpp>

int main() {
  zss::tensor<float, 2> x = {{3, 4}, {0, 5}};
  auto y = zss::normalize_rows(x);
  const bool ok =
      y(0, 0) == 0.6f && y(1, 1) == 1.0f && zss::simd::dot(&x(0, 0), &x(1, 0), 2) == 20.0f;
  std::printf("zss %s consumer: %s\n", zss::version_string, ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
