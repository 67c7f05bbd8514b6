// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/toy/classes.hpp
 * The toy world's 21 classes and the seen/unseen split (DESIGN.md §4).
 *
 * Class 0 is background; object class `k ≥ 1` has colour family `(k−1)/4` (red, green, blue,
 * yellow, purple) and texture `(k−1)%4` (solid, stripes, dots, checker), like PASCAL VOC's 20
 * object classes plus background. Default split: the unseen classes are one per colour family,
 * colour c taking texture (c mod 4) — classes 1 (red solid), 6 (green stripes), 11 (blue dots),
 * 16 (yellow checker) and 17 (purple solid) — so every unseen class's colour and texture each
 * appear in seen classes, and all 4 textures and 5 colours are seen.
 */
#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "zss/core/check.hpp"
#include "zss/core/config.hpp"

namespace zss::toy {

inline constexpr index_t colour_count = 5;
inline constexpr index_t texture_count = 4;
inline constexpr index_t class_count = 1 + colour_count * texture_count;  ///< 21
inline constexpr std::int32_t background = 0;

enum class texture : int { solid = 0, stripes = 1, dots = 2, checker = 3 };

inline constexpr std::array<const char*, colour_count> colour_names = {"red", "green", "blue",
                                                                       "yellow", "purple"};
inline constexpr std::array<const char*, texture_count> texture_names = {"solid", "stripes", "dots",
                                                                         "checker"};

/// Colour family of object class k (1..20).
constexpr index_t colour_of(std::int32_t k) noexcept {
  return index_t(k - 1) / texture_count;
}
/// Texture of object class k (1..20).
constexpr texture texture_of(std::int32_t k) noexcept {
  return static_cast<texture>(index_t(k - 1) % texture_count);
}
/// Object class of (colour, texture).
constexpr std::int32_t class_of(index_t colour, texture t) noexcept {
  return std::int32_t(1 + colour * texture_count + index_t(t));
}

/// "background", "red solid", "green stripes", ...
inline std::string class_name(std::int32_t k) {
  require(k >= 0 && index_t(k) < class_count,
          "toy::class_name: class " + std::to_string(k) + " is outside [0, 21)");
  if (k == background) return "background";
  return std::string(colour_names[colour_of(k)]) + " " + texture_names[index_t(texture_of(k))];
}

/// Which classes are seen (labelled in training). Background is always seen.
struct class_split {
  std::vector<std::int32_t> unseen;  ///< sorted ids of unseen classes

  /// The default split (see the file comment).
  static class_split standard() {
    class_split s;
    for (index_t c = 0; c < colour_count; ++c)
      s.unseen.push_back(class_of(c, static_cast<texture>(c % texture_count)));
    std::sort(s.unseen.begin(), s.unseen.end());
    return s;
  }

  bool is_seen(std::int32_t k) const {
    return std::find(unseen.begin(), unseen.end(), k) == unseen.end();
  }
  /// Seen class ids in increasing order (background first).
  std::vector<std::int32_t> seen() const {
    std::vector<std::int32_t> out;
    for (std::int32_t k = 0; k < std::int32_t(class_count); ++k)
      if (is_seen(k)) out.push_back(k);
    return out;
  }
  /// Checks ids are object classes, distinct, and not all.
  void validate() const {
    for (auto k : unseen)
      require(k >= 1 && index_t(k) < class_count, "toy::class_split: unseen class " +
                                                      std::to_string(k) +
                                                      " must be an object class in [1, 21)");
    auto u = unseen;
    std::sort(u.begin(), u.end());
    require(std::adjacent_find(u.begin(), u.end()) == u.end(),
            "toy::class_split: duplicate unseen class");
    require(u.size() < class_count - 1, "toy::class_split: at least one object class must be seen");
  }
};

}  // namespace zss::toy
