// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/clip/teacher.hpp
 * mini-CLIP as the toy world's teacher (DESIGN.md §4, the learned teacher): its CLS embedding
 * and MaskCLIP dense tokens of every scene, its class embeddings from the prompts, and a cache
 * of trained teachers.
 *
 * Legend: Q = h·w tokens on the image encoder's grid (16 × 16 on 64 × 64 scenes), D width.
 *
 * `use_learned_teacher(world, model, names)` replaces what the simulated teacher put into a
 * `toy::world`: `text` becomes the 21 prompt embeddings ("a photo of a {name}"), and
 * `train_teacher` / `test_teacher` the model's outputs (unit CLS, unit dense tokens), so every
 * consumer of the world (targets, GLM, evaluation) runs unchanged on the learned teacher. The
 * world's `params.teacher` knobs no longer describe it.
 *
 * Cache: `cache_file(dir, key)` names `dir/mini-clip-<16 hex digits of FNV-1a(key)>.zss`, where
 * `key` (`cache_key`) is the text of everything the trained weights depend on: the options, the
 * world's scene options and the seed (and the thread count, which changes the gradients' last
 * bits). `load_cached` accepts a file only when its stored key equals `key` exactly.
 */
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "zss/clip/config.hpp"
#include "zss/clip/model.hpp"
#include "zss/clip/trainer.hpp"
#include "zss/core/parallel.hpp"
#include "zss/io/checkpoint.hpp"
#include "zss/toy/dataset.hpp"

namespace zss::clip {

/**
 * The teacher's view of `scenes`: unit CLS and unit dense tokens on the image encoder's grid,
 * in batches of `batch` images.
 */
template <real_scalar T>
std::vector<toy::teacher_output<T>> teacher_outputs(const model<T>& net,
                                                    const std::vector<toy::scene>& scenes,
                                                    int threads = 0, index_t batch = 64) {
  std::vector<toy::teacher_output<T>> out(scenes.size());
  if (scenes.empty()) return out;
  const index_t H = scenes[0].image.shape()[0], W = scenes[0].image.shape()[1], D = net.dim();
  const auto [h, w] = net.image().grid(H, W);
  const index_t Q = h * w;
  image_encoder_cache<T> cache;
  aligned_vector<T> tokens, cls;
  for (index_t b0 = 0; b0 < scenes.size(); b0 += batch) {
    const index_t B = std::min(batch, scenes.size() - b0);
    std::vector<const toy::scene*> ptr(B);
    for (index_t i = 0; i < B; ++i) ptr[i] = &scenes[b0 + i];
    const auto images = scene_images<T>(std::span<const toy::scene* const>(ptr));
    tokens.resize(B * Q * D), cls.resize(B * D);
    image_encoder_dense(matrix_ref<T>(tokens.data(), B * Q, D), matrix_ref<T>(cls.data(), B, D),
                        cache, images, net.image(), threads);
    for (index_t i = 0; i < B; ++i) {
      auto& o = out[b0 + i];
      o.grid_h = h, o.grid_w = w;
      o.tokens = tensor<T, 2>::from_shape({Q, D});
      std::copy_n(tokens.data() + i * Q * D, Q * D, o.tokens.data());
      o.cls = tensor<T, 1>::from_shape({D});
      std::copy_n(cls.data() + i * D, D, o.cls.data());
    }
  }
  return out;
}

/// Replaces the world's text embeddings and teacher outputs by the learned teacher's (see the
/// file comment).
template <real_scalar T>
void use_learned_teacher(toy::world<T>& world, const model<T>& net, name_tokens names,
                         int threads = 0) {
  require(world.params.text.dim == net.dim(),
          "clip::use_learned_teacher: the world's text width (" +
              std::to_string(world.params.text.dim) + ") differs from the model's D (" +
              std::to_string(net.dim()) + ")");
  world.text = net.class_embeddings(names, threads);
  world.train_teacher = teacher_outputs(net, world.train, threads);
  world.test_teacher = teacher_outputs(net, world.test, threads);
}

/// The text the trained weights depend on (see the file comment).
inline std::string cache_key(const options& o, const toy::scene_options& scenes, std::uint64_t seed,
                             int threads) {
  auto copy = o;
  std::string s = option_fields(copy).to_text();
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "scenes = %zu x %zu, objects %zu..%zu, size %.17g..%.17g, jitter %.17g, "
                "noise %.17g, clutter %zu, unseen_frequency %.17g\n",
                scenes.height, scenes.width, scenes.min_objects, scenes.max_objects,
                scenes.min_size, scenes.max_size, scenes.colour_jitter, scenes.pixel_noise,
                scenes.clutter_objects, scenes.unseen_frequency);
  s += buf;
  s += "seed = " + std::to_string(seed) +
       "\nthreads = " + std::to_string(resolve_threads(threads)) + "\n";
  return s;
}

/// `dir/mini-clip-<hash of key>.zss`.
inline std::filesystem::path cache_file(const std::filesystem::path& dir, const std::string& key) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx",
                (unsigned long long)zss::detail::fnv1a64(
                    reinterpret_cast<const unsigned char*>(key.data()), key.size()));
  return dir / ("mini-clip-" + std::string(hex) + ".zss");
}

/// The checkpoint section holding the cache key.
inline constexpr const char* cache_key_section = "clip.key";

/**
 * Loads the cached teacher for `key` from `file` into `t` when the file exists and holds exactly
 * this key; returns whether it did. A file with another key or an unreadable file is left alone
 * (false); `t` is then unchanged.
 */
template <real_scalar T>
bool load_cached(trainer<T>& t, const std::filesystem::path& file, const std::string& key) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) return false;
  try {
    trainer<T> probe(t.config(), 0, 1);
    const auto sections = probe.load(file);
    bool match = false;
    for (const auto& s : sections)
      if (s.name == cache_key_section && std::string(s.bytes.begin(), s.bytes.end()) == key)
        match = true;
    if (!match) return false;
    t.load(file);
    return true;
  } catch (const std::invalid_argument&) {
    return false;
  }
}

/// Saves the trained teacher with its key, atomically.
template <real_scalar T>
void save_cached(const trainer<T>& t, const std::filesystem::path& file, const std::string& key) {
  std::filesystem::create_directories(file.parent_path());
  const checkpoint_section sec{cache_key_section, {key.begin(), key.end()}};
  t.save(file, std::span<const checkpoint_section>(&sec, 1));
}

}  // namespace zss::clip
