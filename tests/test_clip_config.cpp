// SPDX-License-Identifier: Apache-2.0
// Tests for zss/clip/config.hpp: every field described with a path and flag, checks that fail,
// relations between fields.
#include <doctest/doctest.h>

#include <set>

#include "zss/clip/config.hpp"

namespace test_clip_config {

using namespace zss;
using namespace zss::clip;

TEST_CASE("mini-CLIP options: described fields, nested flags, validation") {
  options o;
  option_fields f;
  f.nested("mini_clip.", o, "clip-");
  CHECK(f.find("mini_clip.train.steps") != nullptr);
  CHECK(f.find("mini_clip.train.steps")->flag == "clip-steps");
  CHECK(f.find("mini_clip.captions.names")->flag == "clip-caption-names");
  CHECK(f.find("mini_clip.model.dim")->flag.empty());  // D follows the world's text width
  std::set<std::string> flags;
  for (const auto& x : f.all())
    if (!x.flag.empty()) CHECK(flags.insert(x.flag).second);
  CHECK_NOTHROW(o.validate());
  f.find("mini_clip.train.batch")->set("1");
  CHECK_THROWS_WITH_AS(o.validate(), doctest::Contains("train.batch"), std::invalid_argument);
  o = options{};
  o.train.schedule.warmup_steps = 700;
  CHECK_THROWS_WITH_AS(o.validate(), doctest::Contains("train.warmup"), std::invalid_argument);
  o = options{};
  o.model.image.kernel = 2;
  CHECK_THROWS_WITH_AS(o.validate(), doctest::Contains("kernel must be odd"),
                       std::invalid_argument);
  o = options{};
  o.model.temperature = 0.001;
  CHECK_THROWS_WITH_AS(o.validate(), doctest::Contains("max_scale"), std::invalid_argument);
}

}  // namespace test_clip_config
