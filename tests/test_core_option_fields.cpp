// SPDX-License-Identifier: Apache-2.0
// Tests for zss/core/option_fields.hpp: described fields read and write text exactly, refuse bad
// text with the field's path, validate with readable ranges, and name the first difference.
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "zss/core/option_fields.hpp"

namespace test_core_option_fields {

using namespace zss;

enum class colour { red, green };
inline const enum_names<colour, 2> colour_names{{{colour::red, "red"}, {colour::green, "green"}}};

struct inner {
  double tau = 0.07;
  std::vector<index_t> windows = {2, 4};
};

struct knobs {
  bool on = true;
  int threads = 0;
  std::uint64_t seed = 3;
  index_t steps = 10;
  colour c = colour::green;
  inner in;
};

template <class V>
void describe(V& v, inner& o) {
  v.field("tau", o.tau, "temperature", checks::positive(), "tau");
  v.field("windows", o.windows, "window sizes", checks::at_least(1), "windows");
}

template <class V>
void describe(V& v, knobs& k) {
  v.field("on", k.on, "a switch", "on");
  v.field("threads", k.threads, "threads", checks::non_negative(), "threads");
  v.field("seed", k.seed, "seed", {}, "seed");
  v.field("steps", k.steps, "steps", checks::at_least(1), "steps");
  v.choice("colour", k.c, colour_names, "a colour", "colour");
  v.nested("inner.", k.in, "inner-");
}

TEST_CASE("option_fields: paths, flags, kinds and defaults in declaration order") {
  knobs k;
  option_fields f(k);
  REQUIRE(f.size() == 7);
  CHECK(f.all()[0].path == "on");
  CHECK(f.all()[0].kind == field_kind::boolean);
  CHECK(f.all()[1].kind == field_kind::integer);
  CHECK(f.all()[2].kind == field_kind::count);
  CHECK(f.all()[4].kind == field_kind::choice);
  CHECK(f.all()[4].choices == std::vector<std::string>{"red", "green"});
  CHECK(f.all()[5].path == "inner.tau");
  CHECK(f.all()[5].flag == "inner-tau");
  CHECK(f.all()[6].kind == field_kind::list);
  CHECK(f.find("inner.windows")->default_text == "2,4");
  CHECK(f.find("nope") == nullptr);
  CHECK(f.to_text() ==
        "on = true\nthreads = 0\nseed = 3\nsteps = 10\ncolour = green\ninner.tau = "
        "0.070000000000000007\n"
        "inner.windows = 2,4\n");
}

TEST_CASE("option_fields: text round-trips exactly and writes through to the object") {
  knobs k;
  option_fields f(k);
  f.find("on")->set("false");
  f.find("threads")->set("4");
  f.find("seed")->set("18446744073709551615");
  f.find("colour")->set("red");
  f.find("inner.tau")->set("0.1");
  f.find("inner.windows")->set("4,8, 16");
  CHECK_FALSE(k.on);
  CHECK(k.threads == 4);
  CHECK(k.seed == std::numeric_limits<std::uint64_t>::max());
  CHECK(k.c == colour::red);
  CHECK(k.in.tau == 0.1);
  CHECK(k.in.windows == std::vector<index_t>{4, 8, 16});
  // Reals are written with 17 significant digits: parsing the text gives the same double.
  k.in.tau = 1.0 / 3.0;
  const std::string t = f.find("inner.tau")->get();
  knobs other;
  option_fields g(other);
  g.find("inner.tau")->set(t);
  CHECK(other.in.tau == k.in.tau);
}

TEST_CASE("option_fields: bad text names the field and the problem") {
  knobs k;
  option_fields f(k);
  CHECK_THROWS_WITH_AS(f.find("seed")->set("-1"), "seed: must be >= 0, got -1",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(f.find("steps")->set("12x"), "steps: '12x' is not a whole number >= 0",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(f.find("inner.tau")->set("abc"), "inner.tau: 'abc' is not a number",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(f.find("on")->set("maybe"), "on: 'maybe' is not true or false",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(f.find("colour")->set("blue"), "colour: 'blue' is not one of red, green",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(f.find("threads")->set("99999999999"), doctest::Contains("out of range"),
                       std::invalid_argument);
  CHECK(k.seed == 3);  // unchanged by the failed parses
}

TEST_CASE("option_fields: validate reports the first failing check with a readable range") {
  knobs k;
  option_fields f(k);
  CHECK_NOTHROW(f.validate("knobs"));
  k.steps = 0;
  CHECK_THROWS_WITH_AS(f.validate("knobs"), "knobs: steps must be >= 1, got 0",
                       std::invalid_argument);
  k.steps = 1;
  k.in.tau = -1e300;
  CHECK_THROWS_WITH_AS(f.validate("knobs"), "knobs: inner.tau must be > 0, got -1e+300",
                       std::invalid_argument);
  k.in.tau = 1;
  k.in.windows = {};
  CHECK_THROWS_WITH_AS(f.validate("knobs"), "knobs: inner.windows must not be empty",
                       std::invalid_argument);
  k.in.windows = {2, 0};
  CHECK_THROWS_WITH_AS(f.validate("knobs"), "knobs: inner.windows every entry must be >= 1, got 0",
                       std::invalid_argument);
  CHECK(checks::interval(0, 1, true, false)(0) == "must be in (0, 1]");
  CHECK(checks::interval(0, 1, true, false)(1).empty());
}

TEST_CASE("first_difference names the first field that differs, or a missing one") {
  knobs a;
  const std::string stored = option_fields(a).to_text();
  knobs b;
  CHECK(first_difference(stored, option_fields(b)).empty());
  b.in.windows = {2, 8};
  CHECK(first_difference(stored, option_fields(b)) ==
        "inner.windows is 2,4 in the checkpoint, 2,8 now");
  knobs c;
  CHECK(first_difference("on = true\n", option_fields(c)) ==
        "threads is missing from the checkpoint (now 0)");
  CHECK(first_difference(stored + "extra = 1\n", option_fields(c)) ==
        "extra = 1 is in the checkpoint but not an option of this build");
  CHECK_THROWS_AS(parse_option_text("no equals sign\n"), std::invalid_argument);
}

}  // namespace test_core_option_fields
