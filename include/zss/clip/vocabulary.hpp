// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/clip/vocabulary.hpp
 * mini-CLIP's fixed vocabulary: every word a toy-world caption or prompt can contain, with a
 * stable id (DESIGN.md §4, the learned teacher).
 *
 * Ids never change between runs or configurations (a checkpoint's token embeddings stay valid):
 * the table below is the vocabulary, in id order. It holds
 *  - the 21 class names as *phrases* ("red stripes" is one entry, "background" another): the
 *    entries a caption uses in `name_tokens::phrase` mode, one token per class as a sub-word
 *    tokenizer that knows the name would give;
 *  - the colour and texture *words* ("red", "stripes") that `name_tokens::words` mode uses
 *    instead, so that a class name is two tokens and a bag of words cannot tell "red stripes
 *    and blue dots" from "red dots and blue stripes" (CLIP's attribute-binding weakness);
 *  - template words ("a", "photo", "of", …), the four shape words and distractor adjectives.
 *
 * `tokenize` splits text on spaces and matches greedily, longest entry first, so in phrase mode
 * "a photo of a red stripes" is 5 tokens and in words mode 6.
 */
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "zss/core/check.hpp"
#include "zss/core/option_fields.hpp"
#include "zss/toy/classes.hpp"
#include "zss/toy/scenes.hpp"

namespace zss::clip {

/// How a class name becomes tokens.
enum class name_tokens {
  phrase,  ///< one vocabulary entry per class name ("red stripes")
  words,   ///< the colour word and the texture word ("red", "stripes"); background is one word
};
inline const enum_names<name_tokens, 2> name_tokens_names{
    {{name_tokens::phrase, "phrase"}, {name_tokens::words, "words"}}};

namespace detail {
/// Template words (ids 0 …), then shape words, distractors; class phrases and colour/texture
/// words follow (see `vocabulary_words`).
inline constexpr std::array<const char*, 22> template_words = {
    "a",  "an",   "the", "photo", "image", "picture", "of",      "with", "and",  "there", "is",
    "on", "next", "to",  "some",  "scene", "shows",   "showing", "in",   "this", "plain", "toy"};
inline constexpr std::array<const char*, 4> shape_words = {"disc", "rectangle", "triangle",
                                                           "ellipse"};
inline constexpr std::array<const char*, 8> distractor_words = {
    "small", "large", "bright", "nice", "little", "big", "simple", "flat"};

inline std::vector<std::string> make_vocabulary() {
  std::vector<std::string> v;
  for (auto w : template_words) v.emplace_back(w);
  for (auto w : shape_words) v.emplace_back(w);
  for (auto w : distractor_words) v.emplace_back(w);
  for (std::int32_t k = 0; k < std::int32_t(toy::class_count); ++k)
    v.push_back(toy::class_name(k));  // "background", "red solid", …
  for (auto w : toy::colour_names) v.emplace_back(w);
  for (auto w : toy::texture_names) v.emplace_back(w);
  return v;
}
}  // namespace detail

/// Every entry of the vocabulary in id order.
inline const std::vector<std::string>& vocabulary_words() {
  static const std::vector<std::string> words = detail::make_vocabulary();
  return words;
}

/// Number of entries (the rows of the token-embedding table).
inline index_t vocabulary_size() {
  return vocabulary_words().size();
}

/// Id of `entry` ("photo", "red stripes").
/// @throws std::invalid_argument for a word outside the vocabulary.
inline std::int32_t token_id(std::string_view entry) {
  const auto& v = vocabulary_words();
  for (index_t i = 0; i < v.size(); ++i)
    if (v[i] == entry) return std::int32_t(i);
  throw std::invalid_argument("clip::token_id: '" + std::string(entry) +
                              "' is not in the vocabulary");
}

/// The entry of id `id`.
/// @throws std::invalid_argument for an id outside [0, vocabulary_size()).
inline const std::string& token_word(std::int32_t id) {
  require(id >= 0 && index_t(id) < vocabulary_size(), "clip::token_word: id " + std::to_string(id) +
                                                          " is outside [0, " +
                                                          std::to_string(vocabulary_size()) + ")");
  return vocabulary_words()[index_t(id)];
}

/// Id of the shape word of `s`.
inline std::int32_t shape_token(toy::shape_kind s) {
  return token_id(detail::shape_words[index_t(s)]);
}

/// Tokens of class `k`'s name (one in phrase mode; two for an object class in words mode).
inline std::vector<std::int32_t> class_name_tokens(std::int32_t k, name_tokens mode) {
  if (mode == name_tokens::phrase || k == toy::background) return {token_id(toy::class_name(k))};
  return {token_id(toy::colour_names[toy::colour_of(k)]),
          token_id(toy::texture_names[index_t(toy::texture_of(k))])};
}

/// Words joined by single spaces.
inline std::string tokens_text(const std::vector<std::int32_t>& tokens) {
  std::string s;
  for (auto t : tokens) {
    if (!s.empty()) s += ' ';
    s += token_word(t);
  }
  return s;
}

/**
 * Tokens of `text` (words separated by spaces). In phrase mode a class name's two words become
 * its phrase entry (longest match first); in words mode every word is its own entry.
 * @throws std::invalid_argument on a word outside the vocabulary or empty text.
 */
inline std::vector<std::int32_t> tokenize(std::string_view text, name_tokens mode) {
  std::vector<std::string> words;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && text[i] == ' ') ++i;
    const std::size_t j = text.find(' ', i);
    const std::size_t end = j == std::string_view::npos ? text.size() : j;
    if (end > i) words.emplace_back(text.substr(i, end - i));
    i = end;
  }
  require(!words.empty(), "clip::tokenize: no words in '" + std::string(text) + "'");
  std::vector<std::int32_t> out;
  for (std::size_t w = 0; w < words.size(); ++w) {
    if (mode == name_tokens::phrase && w + 1 < words.size()) {
      const std::string pair = words[w] + " " + words[w + 1];
      const auto& v = vocabulary_words();
      bool found = false;
      for (index_t k = 0; k < v.size() && !found; ++k)
        if (v[k] == pair) out.push_back(std::int32_t(k)), found = true;
      if (found) {
        ++w;
        continue;
      }
    }
    out.push_back(token_id(words[w]));
  }
  return out;
}

/// The zero-shot prompt of class `k`: "a photo of a {name}" (CLIP's default template).
inline std::vector<std::int32_t> class_prompt(std::int32_t k, name_tokens mode) {
  std::vector<std::int32_t> t = {token_id("a"), token_id("photo"), token_id("of"), token_id("a")};
  for (auto id : class_name_tokens(k, mode)) t.push_back(id);
  return t;
}

}  // namespace zss::clip
