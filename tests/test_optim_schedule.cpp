// SPDX-License-Identifier: Apache-2.0
// Tests for zss/optim/schedule.hpp: values at known steps.
#include <doctest/doctest.h>

#include <cmath>

#include "zss/optim/schedule.hpp"

namespace test_optim_schedule {

using namespace zss;

TEST_CASE("cosine schedule with warm-up: values at known steps") {
  const cosine_schedule s{1.0, 0.1, 4, 14};
  s.validate();
  CHECK(s(0) == doctest::Approx(0.25));
  CHECK(s(1) == doctest::Approx(0.5));
  CHECK(s(3) == doctest::Approx(1.0));
  CHECK(s(4) == doctest::Approx(1.0));   // decay starts at cos(0)
  CHECK(s(9) == doctest::Approx(0.55));  // half way: min + (base − min)/2
  CHECK(s(6) == doctest::Approx(0.1 + 0.45 * (1 + 0.80901699437494745)));  // cos(π/5)
  CHECK(s(13) == doctest::Approx(0.1 + 0.45 * (1 + std::cos(M_PI * 0.9))));
  CHECK(s(14) == doctest::Approx(0.1));
  CHECK(s(1000) == doctest::Approx(0.1));
  // Monotone: up during warm-up, down afterwards.
  for (std::uint64_t t = 1; t < 4; ++t) CHECK(s(t) > s(t - 1));
  for (std::uint64_t t = 5; t < 15; ++t) CHECK(s(t) < s(t - 1));
}

TEST_CASE("no warm-up starts at the base rate; invalid schedules throw") {
  const cosine_schedule s{2.0, 0.0, 0, 10};
  CHECK(s(0) == doctest::Approx(2.0));
  CHECK(s(5) == doctest::Approx(1.0));
  CHECK(s(10) == 0.0);
  const cosine_schedule bad{1.0, 0.0, 10, 5};
  CHECK_THROWS_WITH_AS(bad.validate(),
                       doctest::Contains("total_steps (5) must be >= warmup_steps (10)"),
                       std::invalid_argument);
}

}  // namespace test_optim_schedule
