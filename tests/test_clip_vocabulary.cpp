// SPDX-License-Identifier: Apache-2.0
// Tests for zss/clip/vocabulary.hpp: unique, stable entries; tokenize in both name modes; the
// class prompts; errors.
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "zss/clip/vocabulary.hpp"

namespace test_clip_vocabulary {

using namespace zss;
using namespace zss::clip;

TEST_CASE("the vocabulary has unique entries and holds every class name and word") {
  const auto& v = vocabulary_words();
  CHECK(std::set<std::string>(v.begin(), v.end()).size() == v.size());
  CHECK(vocabulary_size() == v.size());
  // Ids are part of the checkpoint format: the first entries and the size are fixed.
  CHECK(token_word(0) == "a");
  CHECK(vocabulary_size() == 64);
  for (std::int32_t k = 0; k < 21; ++k) {
    CHECK(token_word(token_id(toy::class_name(k))) == toy::class_name(k));
    CHECK(class_name_tokens(k, name_tokens::phrase).size() == 1);
    CHECK(class_name_tokens(k, name_tokens::words).size() == (k == 0 ? 1u : 2u));
  }
  CHECK(token_word(token_id("stripes")) == "stripes");
  CHECK(token_word(shape_token(toy::shape_kind::triangle)) == "triangle");
}

TEST_CASE("tokenize: phrases in phrase mode, single words in words mode") {
  const auto p = tokenize("a photo of a red stripes", name_tokens::phrase);
  CHECK(p == class_prompt(2, name_tokens::phrase));
  CHECK(p.size() == 5);
  const auto w = tokenize("a photo of a  red stripes ", name_tokens::words);
  CHECK(w == class_prompt(2, name_tokens::words));
  CHECK(w.size() == 6);
  CHECK(tokens_text(w) == "a photo of a red stripes");
  CHECK(tokenize("background", name_tokens::words) ==
        std::vector<std::int32_t>{token_id("background")});
  // A colour word alone is a word in both modes.
  CHECK(tokenize("red", name_tokens::phrase) == std::vector<std::int32_t>{token_id("red")});
}

TEST_CASE("the vocabulary refuses unknown words and ids") {
  CHECK_THROWS_WITH_AS(token_id("zebra"), doctest::Contains("'zebra' is not in the vocabulary"),
                       std::invalid_argument);
  CHECK_THROWS_AS(tokenize("a photo of a zebra", name_tokens::phrase), std::invalid_argument);
  CHECK_THROWS_AS(tokenize("   ", name_tokens::phrase), std::invalid_argument);
  CHECK_THROWS_WITH_AS(token_word(64), doctest::Contains("outside [0, 64)"), std::invalid_argument);
  CHECK_THROWS_AS(token_word(-1), std::invalid_argument);
}

}  // namespace test_clip_vocabulary
