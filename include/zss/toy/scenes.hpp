// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/toy/scenes.hpp
 * The toy world's seeded scene generator (DESIGN.md §4).
 *
 * A scene is an `H × W` RGB image in [0, 1] with a noisy, slowly varying background and
 * `min_objects..max_objects` objects (disc, rectangle, triangle, ellipse) of random size and
 * position. An object's class fixes its colour family and texture; colour jitter, texture
 * period, orientation and phase are random. Objects are drawn in order; the top-most one owns a
 * pixel, so objects may hide each other partly or wholly. Optional clutter objects (grey,
 * textured, no class) are labelled −1 in both label maps.
 *
 * Scene `i` of a world is a pure function of `(seed, i)`: it draws from `rng(seed, i)` only, so
 * scenes can be generated in any order and on any thread. By convention the trainer uses indices
 * `[0, n)` for training and `test_index_base + [0, n)` for testing.
 */
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

#include "zss/core/check.hpp"
#include "zss/core/random.hpp"
#include "zss/core/tensor.hpp"
#include "zss/toy/classes.hpp"

namespace zss::toy {

/// First scene index of the test set (disjoint from any training index below it).
inline constexpr std::uint64_t test_index_base = std::uint64_t(1) << 40;

enum class shape_kind : int { disc = 0, rectangle = 1, triangle = 2, ellipse = 3 };

/// Knobs of the scene generator, with defaults.
struct scene_options {
  index_t height = 64;      ///< H
  index_t width = 64;       ///< W
  index_t min_objects = 1;  ///< objects per scene, inclusive range
  index_t max_objects = 3;
  double min_size = 0.18;  ///< object radius as a fraction of min(H, W)
  double max_size = 0.38;
  double colour_jitter = 0.06;    ///< uniform ± per channel of an object's base colour
  double pixel_noise = 0.03;      ///< Gaussian σ per pixel and channel
  index_t clutter_objects = 0;    ///< extra unlabelled grey objects (label −1)
  double unseen_frequency = 0.0;  ///< if > 0, probability that an object's class is drawn from the
                                  ///< unseen classes (else classes are uniform over all 20)
  class_split split = class_split::standard();

  void validate() const {
    require(height >= 4 && width >= 4, "toy::scene_options: image must be at least 4 x 4, got " +
                                           std::to_string(height) + " x " + std::to_string(width));
    require(min_objects >= 1 && min_objects <= max_objects,
            "toy::scene_options: need 1 <= min_objects (" + std::to_string(min_objects) +
                ") <= max_objects (" + std::to_string(max_objects) + ")");
    require(min_size > 0 && min_size <= max_size && max_size <= 1,
            "toy::scene_options: need 0 < min_size <= max_size <= 1");
    require(colour_jitter >= 0 && pixel_noise >= 0,
            "toy::scene_options: noise levels must be >= 0");
    require(unseen_frequency >= 0 && unseen_frequency <= 1,
            "toy::scene_options: unseen_frequency must be in [0, 1]");
    split.validate();
  }
};

/// What was drawn (in drawing order; later objects are on top).
struct object_info {
  std::int32_t class_id = -1;  ///< −1 for clutter
  shape_kind shape = shape_kind::disc;
  double cy = 0, cx = 0, radius = 0;
  index_t visible_pixels = 0;  ///< pixels it owns after occlusion
};

/// One scene.
struct scene {
  tensor<float, 3> image;                ///< H × W × 3, RGB in [0, 1]
  tensor<std::int32_t, 2> labels;        ///< H × W, all classes (test labels); −1 = clutter
  tensor<std::int32_t, 2> train_labels;  ///< H × W, unseen classes → −1
  tensor<std::int32_t, 2>
      owner;  ///< H × W, index into `objects` of the top-most object, −1 = background
  std::vector<object_info> objects;
};

namespace detail {
inline constexpr std::array<std::array<double, 3>, colour_count> family_rgb = {{
    {0.85, 0.16, 0.14},  // red
    {0.18, 0.68, 0.22},  // green
    {0.16, 0.30, 0.86},  // blue
    {0.90, 0.82, 0.16},  // yellow
    {0.60, 0.22, 0.74},  // purple
}};

/// Shape membership test in object-local terms.
struct shape_geometry {
  shape_kind kind;
  double cy, cx, r, aspect, angle;
  std::array<double, 6> tri;  // triangle vertices (y0, x0, y1, x1, y2, x2)

  bool contains(double y, double x) const noexcept {
    const double dy = y - cy, dx = x - cx;
    switch (kind) {
      case shape_kind::disc:
        return dy * dy + dx * dx <= r * r;
      case shape_kind::rectangle: {
        const double u = std::cos(angle) * dx + std::sin(angle) * dy;
        const double v = -std::sin(angle) * dx + std::cos(angle) * dy;
        return std::abs(u) <= r && std::abs(v) <= r * aspect;
      }
      case shape_kind::ellipse: {
        const double u = std::cos(angle) * dx + std::sin(angle) * dy;
        const double v = -std::sin(angle) * dx + std::cos(angle) * dy;
        return (u * u) / (r * r) + (v * v) / (r * r * aspect * aspect) <= 1.0;
      }
      case shape_kind::triangle: {
        auto side = [&](int a, int b) {
          return (tri[2 * b + 1] - tri[2 * a + 1]) * (y - tri[2 * a]) -
                 (tri[2 * b] - tri[2 * a]) * (x - tri[2 * a + 1]);
        };
        const double s0 = side(0, 1), s1 = side(1, 2), s2 = side(2, 0);
        return (s0 >= 0 && s1 >= 0 && s2 >= 0) || (s0 <= 0 && s1 <= 0 && s2 <= 0);
      }
    }
    return false;
  }
};

/// Texture pattern value in {0, 1} at (y, x).
struct pattern {
  texture kind;
  double period, angle, phase_u, phase_v;
  bool on(double y, double x) const noexcept {
    const double u = std::cos(angle) * x + std::sin(angle) * y + phase_u;
    const double v = -std::sin(angle) * x + std::cos(angle) * y + phase_v;
    switch (kind) {
      case texture::solid:
        return true;
      case texture::stripes:
        return std::fmod(std::fmod(u, period) + period, period) < period / 2;
      case texture::dots: {
        const double fu = std::fmod(std::fmod(u, period) + period, period) - period / 2;
        const double fv = std::fmod(std::fmod(v, period) + period, period) - period / 2;
        return fu * fu + fv * fv <= (0.3 * period) * (0.3 * period);
      }
      case texture::checker: {
        const auto a = static_cast<long>(std::floor(u / (period / 2)));
        const auto b = static_cast<long>(std::floor(v / (period / 2)));
        return ((a + b) % 2 + 2) % 2 == 0;
      }
    }
    return true;
  }
};
}  // namespace detail

/**
 * Scene number `index` of the world with seed `seed`.
 * @throws std::invalid_argument when `p` is invalid.
 */
inline scene make_scene(const scene_options& p, std::uint64_t seed, std::uint64_t index) {
  p.validate();
  rng g(seed, index);
  const index_t H = p.height, W = p.width;
  scene s;
  s.image = tensor<float, 3>::from_shape({H, W, 3});
  s.labels = tensor<std::int32_t, 2>::from_shape({H, W});
  s.labels.fill(background);
  s.owner = tensor<std::int32_t, 2>::from_shape({H, W});
  s.owner.fill(-1);

  // Background: a smooth colour gradient plus pixel noise.
  const double base = g.uniform(0.35, 0.55);
  const double gy = g.uniform(-0.12, 0.12), gx = g.uniform(-0.12, 0.12);
  const std::array<double, 3> tint = {g.uniform(-0.05, 0.05), g.uniform(-0.05, 0.05),
                                      g.uniform(-0.05, 0.05)};
  for (index_t y = 0; y < H; ++y)
    for (index_t x = 0; x < W; ++x)
      for (index_t c = 0; c < 3; ++c)
        s.image(y, x, c) =
            float(base + tint[c] + gy * (double(y) / H - 0.5) + gx * (double(x) / W - 0.5));

  const auto seen = p.split.seen();
  const index_t n_obj = p.min_objects + index_t(g.below(p.max_objects - p.min_objects + 1));
  const index_t n_total = n_obj + p.clutter_objects;
  const double side = double(std::min(H, W));
  for (index_t o = 0; o < n_total; ++o) {
    const bool clutter = o >= n_obj;
    object_info info;
    if (!clutter) {
      if (p.unseen_frequency > 0 && !p.split.unseen.empty() && g.uniform() < p.unseen_frequency)
        info.class_id = p.split.unseen[g.below(p.split.unseen.size())];
      else
        info.class_id = std::int32_t(1 + g.below(class_count - 1));
    }
    info.shape = static_cast<shape_kind>(g.below(4));
    info.radius = side * g.uniform(p.min_size, p.max_size);
    info.cy = g.uniform(0.15, 0.85) * double(H);
    info.cx = g.uniform(0.15, 0.85) * double(W);
    detail::shape_geometry geo{info.shape,
                               info.cy,
                               info.cx,
                               info.radius,
                               g.uniform(0.55, 1.0),
                               g.uniform(0.0, std::numbers::pi),
                               {}};
    for (int v = 0; v < 3; ++v) {
      const double a = g.uniform(0.0, 2 * std::numbers::pi);
      const double rr = info.radius * g.uniform(0.8, 1.25);
      geo.tri[2 * v] = info.cy + rr * std::sin(a + v * 2 * std::numbers::pi / 3);
      geo.tri[2 * v + 1] = info.cx + rr * std::cos(a + v * 2 * std::numbers::pi / 3);
    }
    std::array<double, 3> rgb;
    texture tex;
    if (clutter) {
      const double grey = g.uniform(0.2, 0.8);
      rgb = {grey, grey, grey};
      tex = static_cast<texture>(g.below(texture_count));
    } else {
      rgb = detail::family_rgb[colour_of(info.class_id)];
      tex = texture_of(info.class_id);
    }
    for (auto& c : rgb) c = std::clamp(c + g.uniform(-p.colour_jitter, p.colour_jitter), 0.0, 1.0);
    const detail::pattern pat{tex, g.uniform(5.0, 9.0), g.uniform(0.0, std::numbers::pi),
                              g.uniform(0.0, 10.0), g.uniform(0.0, 10.0)};
    for (index_t y = 0; y < H; ++y)
      for (index_t x = 0; x < W; ++x) {
        const double py = double(y) + 0.5, px = double(x) + 0.5;
        if (!geo.contains(py, px)) continue;
        const double shade = pat.on(py, px) ? 1.0 : 0.35;
        for (index_t c = 0; c < 3; ++c) s.image(y, x, c) = float(rgb[c] * shade);
        s.labels(y, x) = info.class_id;
        s.owner(y, x) = std::int32_t(o);
      }
    s.objects.push_back(info);
  }
  for (auto& v : s.image)
    v = std::clamp(v + g.normal<float>(0.0f, float(p.pixel_noise)), 0.0f, 1.0f);

  s.train_labels = s.labels;
  for (auto& l : s.train_labels)
    if (l >= 0 && !p.split.is_seen(l)) l = -1;
  for (auto o : s.owner)
    if (o >= 0) s.objects[index_t(o)].visible_pixels++;
  return s;
}

}  // namespace zss::toy
