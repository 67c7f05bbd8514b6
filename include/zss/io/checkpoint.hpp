// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/io/checkpoint.hpp
 * Checkpoints: parameters, optimiser state, step and any named sections of the caller (a
 * trainer's configuration text and CLS bank, an application's state), one file written
 * atomically and loaded back exactly (DESIGN.md §3).
 *
 * Writing: the whole file is serialised in memory and written with `write_bytes_atomically`
 * (io/atomic_file.hpp: a temporary in the same directory, fsync, rename, fsync of the directory).
 * A crash or error at any point leaves either the previous checkpoint or the new one at `<path>`,
 * never a mix; on error the temporary file is removed.
 *
 * Loading: the file is read and fully validated (size, magic, version, checksum, scalar type,
 * optimiser kind, the parameter name/shape table) *before* anything is written to the caller's
 * buffers, so a failed load changes nothing (strong guarantee). A mismatching architecture names
 * the first mismatching entry ("entry 3: file has 'conv2.weight' (3, 3, 32, 64), expected
 * 'conv2.weight' (3, 3, 32, 48)").
 *
 * Format (version 2, native little-endian; all integers fixed width):
 *   "ZSSCKPT\0" | u32 version | u32 endian tag 0x01020304 | u8 scalar ('f'/'d') | u8 sizeof(T)
 *   | u16 0 | u64 training step | u32 len + optimiser name ("adamw", "sgd") | u64 optimiser step
 *   | u32 number of state buffers | u64 number of entries | per entry: u32 len + name, u32 rank,
 *   rank × u64 extents | u64 N (flat buffer size, alignment gaps included) | N values
 *   | per state buffer N values | u32 number of sections | per section: u32 len + name,
 *   u64 size, size bytes | u64 FNV-1a-64 checksum of every preceding byte.
 * Version 1 (no sections) is refused with a message naming both versions.
 */
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "zss/core/check.hpp"
#include "zss/core/param_buffer.hpp"
#include "zss/io/atomic_file.hpp"
#include "zss/optim/adamw.hpp"
#include "zss/optim/sgd.hpp"

namespace zss {

inline constexpr std::uint32_t checkpoint_version = 2;

/// A named block of bytes stored in a checkpoint beside the parameters (names are unique).
struct checkpoint_section {
  std::string name;                  ///< e.g. "trainer.config"
  std::vector<unsigned char> bytes;  ///< the caller's encoding
};

namespace detail {

inline constexpr char checkpoint_magic[8] = {'Z', 'S', 'S', 'C', 'K', 'P', 'T', '\0'};

/// FNV-1a 64 over bytes.
inline std::uint64_t fnv1a64(const unsigned char* p, std::size_t n) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (std::size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

struct byte_writer {
  std::vector<unsigned char> bytes;
  template <class U>
  void put(const U& x) {
    const auto* p = reinterpret_cast<const unsigned char*>(&x);
    bytes.insert(bytes.end(), p, p + sizeof(U));
  }
  void put_string(const std::string& s) {
    put(static_cast<std::uint32_t>(s.size()));
    bytes.insert(bytes.end(), s.begin(), s.end());
  }
  template <class T>
  void put_array(const T* p, std::size_t n) {
    const auto* b = reinterpret_cast<const unsigned char*>(p);
    bytes.insert(bytes.end(), b, b + n * sizeof(T));
  }
};

struct byte_reader {
  const unsigned char* data;
  std::size_t size, pos = 0;
  std::string where;
  void need(std::size_t n) const {
    if (n > size - pos)
      throw std::invalid_argument(where + ": file is truncated (needs " + std::to_string(n) +
                                  " more bytes at offset " + std::to_string(pos) + " of " +
                                  std::to_string(size) + ")");
  }
  template <class U>
  U get() {
    need(sizeof(U));
    U x;
    std::memcpy(&x, data + pos, sizeof(U));
    pos += sizeof(U);
    return x;
  }
  std::string get_string(std::size_t max_len = 4096) {
    const auto n = get<std::uint32_t>();
    if (n > max_len)
      throw std::invalid_argument(where + ": corrupt string length " + std::to_string(n));
    need(n);
    std::string s(reinterpret_cast<const char*>(data + pos), n);
    pos += n;
    return s;
  }
  const unsigned char* skip(std::size_t n) {
    need(n);
    const unsigned char* p = data + pos;
    pos += n;
    return p;
  }
};

inline std::string entry_string(const std::string& name, const std::vector<index_t>& shape) {
  return "'" + name + "' " + shape_string(shape);
}

template <real_scalar T>
std::vector<unsigned char> serialize_checkpoint(const param_buffer<T>& params,
                                                const std::string& opt_name, std::uint64_t opt_step,
                                                const std::vector<const aligned_vector<T>*>& state,
                                                std::uint64_t step,
                                                std::span<const checkpoint_section> sections) {
  require(params.allocated(), "save_checkpoint: parameter buffer is not allocated");
  const index_t n = params.size();
  for (std::size_t i = 0; i < state.size(); ++i)
    check_extent("save_checkpoint", opt_name + " state buffer " + std::to_string(i) + " size",
                 state[i]->size(), "parameter buffer size", n);
  byte_writer w;
  w.bytes.reserve(256 + (1 + state.size()) * n * sizeof(T) + params.entries().size() * 64);
  w.put_array(checkpoint_magic, 8);
  w.put(checkpoint_version);
  w.put(std::uint32_t(0x01020304));
  w.put(static_cast<std::uint8_t>(std::same_as<T, float> ? 'f' : 'd'));
  w.put(static_cast<std::uint8_t>(sizeof(T)));
  w.put(std::uint16_t(0));
  w.put(step);
  w.put_string(opt_name);
  w.put(opt_step);
  w.put(static_cast<std::uint32_t>(state.size()));
  w.put(static_cast<std::uint64_t>(params.entries().size()));
  for (const auto& e : params.entries()) {
    w.put_string(e.name);
    w.put(static_cast<std::uint32_t>(e.shape.size()));
    for (auto s : e.shape) w.put(static_cast<std::uint64_t>(s));
  }
  w.put(static_cast<std::uint64_t>(n));
  w.put_array(params.values(), n);
  for (const auto* s : state) w.put_array(s->data(), n);
  w.put(static_cast<std::uint32_t>(sections.size()));
  for (std::size_t i = 0; i < sections.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j)
      require(sections[j].name != sections[i].name,
              "save_checkpoint: duplicate section '" + sections[i].name + "'");
    w.put_string(sections[i].name);
    w.put(static_cast<std::uint64_t>(sections[i].bytes.size()));
    w.put_array(sections[i].bytes.data(), sections[i].bytes.size());
  }
  w.put(fnv1a64(w.bytes.data(), w.bytes.size()));
  return std::move(w.bytes);
}

/// The bytes of a checkpoint file (regular files only: the size bounds what is read).
inline std::vector<unsigned char> read_checkpoint_file(const std::filesystem::path& path) {
  const std::string where = "load_checkpoint(" + path.string() + ")";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    throw std::invalid_argument(where + ": cannot open the file (no such file)");
  if (!std::filesystem::is_regular_file(path, ec))
    throw std::invalid_argument(where + ": cannot open the file (not a regular file)");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::invalid_argument(where + ": cannot open the file");
  return std::vector<unsigned char>((std::istreambuf_iterator<char>(f)),
                                    std::istreambuf_iterator<char>());
}

/// Validates `bytes` completely, then loads them (see `load_checkpoint`); `where` prefixes
/// every message.
template <real_scalar T>
std::uint64_t parse_checkpoint(std::span<const unsigned char> bytes, const std::string& where,
                               param_buffer<T>& params, const std::string& opt_name,
                               std::uint64_t& opt_step,
                               const std::vector<aligned_vector<T>*>& state,
                               std::vector<checkpoint_section>* sections_out) {
  require(params.allocated(), where + ": parameter buffer is not allocated");
  if (bytes.size() < 8 + 8 || std::memcmp(bytes.data(), checkpoint_magic, 8) != 0)
    throw std::invalid_argument(where +
                                ": not a zss checkpoint (bad magic or shorter than its header, " +
                                std::to_string(bytes.size()) + " bytes)");
  std::uint64_t stored = 0;
  std::memcpy(&stored, bytes.data() + bytes.size() - 8, 8);
  if (stored != fnv1a64(bytes.data(), bytes.size() - 8))
    throw std::invalid_argument(where + ": checksum mismatch (the file is truncated or corrupt)");
  byte_reader r{bytes.data(), bytes.size() - 8, 8, where};
  const auto version = r.get<std::uint32_t>();
  if (version != checkpoint_version)
    throw std::invalid_argument(where + ": unsupported checkpoint version " +
                                std::to_string(version) + " (this build reads version " +
                                std::to_string(checkpoint_version) + ")");
  if (r.get<std::uint32_t>() != 0x01020304u)
    throw std::invalid_argument(where + ": written on a machine of the other byte order");
  const auto code = r.get<std::uint8_t>(), size = r.get<std::uint8_t>();
  (void)r.get<std::uint16_t>();
  const char want = std::same_as<T, float> ? 'f' : 'd';
  if (code != want || size != sizeof(T))
    throw std::invalid_argument(where + ": scalar type mismatch: file has '" +
                                std::string(1, char(code)) + "' (" + std::to_string(size) +
                                " bytes), expected '" + std::string(1, want) + "' (" +
                                std::to_string(sizeof(T)) + " bytes)");
  const auto step = r.get<std::uint64_t>();
  const std::string file_opt = r.get_string();
  if (file_opt != opt_name)
    throw std::invalid_argument(where + ": optimiser mismatch: file has '" + file_opt +
                                "' state, expected '" + opt_name + "'");
  const auto file_opt_step = r.get<std::uint64_t>();
  const auto n_state = r.get<std::uint32_t>();
  if (n_state != state.size())
    throw std::invalid_argument(where + ": file has " + std::to_string(n_state) +
                                " optimiser state buffers, expected " +
                                std::to_string(state.size()));
  const auto n_entries = r.get<std::uint64_t>();
  const auto& entries = params.entries();
  for (std::uint64_t i = 0; i < n_entries; ++i) {
    const std::string name = r.get_string();
    const auto rank = r.get<std::uint32_t>();
    if (rank > 16) throw std::invalid_argument(where + ": corrupt rank " + std::to_string(rank));
    std::vector<index_t> shape(rank);
    for (auto& s : shape) s = index_t(r.get<std::uint64_t>());
    if (i >= entries.size())
      throw std::invalid_argument(where + ": architecture mismatch: file has " +
                                  std::to_string(n_entries) + " parameter entries, expected " +
                                  std::to_string(entries.size()) + "; extra entry " +
                                  std::to_string(i) + " is " + entry_string(name, shape));
    if (name != entries[i].name || shape != entries[i].shape)
      throw std::invalid_argument(where + ": architecture mismatch at entry " + std::to_string(i) +
                                  ": file has " + entry_string(name, shape) + ", expected " +
                                  entry_string(entries[i].name, entries[i].shape));
  }
  if (n_entries < entries.size())
    throw std::invalid_argument(where + ": architecture mismatch: file has " +
                                std::to_string(n_entries) + " parameter entries, expected " +
                                std::to_string(entries.size()) + "; missing entry " +
                                std::to_string(n_entries) + " " +
                                entry_string(entries[n_entries].name, entries[n_entries].shape));
  const auto n = r.get<std::uint64_t>();
  if (n != params.size())
    throw std::invalid_argument(where + ": flat buffer size " + std::to_string(n) +
                                " differs from " + std::to_string(params.size()));
  const unsigned char* values = r.skip(n * sizeof(T));
  std::vector<const unsigned char*> blocks;
  for (std::uint32_t s = 0; s < n_state; ++s) blocks.push_back(r.skip(n * sizeof(T)));
  const auto n_sections = r.get<std::uint32_t>();
  if (n_sections > 1024)
    throw std::invalid_argument(where + ": corrupt section count " + std::to_string(n_sections));
  std::vector<checkpoint_section> sections;
  for (std::uint32_t i = 0; i < n_sections; ++i) {
    checkpoint_section sec;
    sec.name = r.get_string();
    const auto len = r.get<std::uint64_t>();
    if (len > r.size - r.pos)
      throw std::invalid_argument(where + ": section '" + sec.name + "' claims " +
                                  std::to_string(len) + " bytes, the file holds " +
                                  std::to_string(r.size - r.pos) + " more");
    const unsigned char* p = r.skip(std::size_t(len));
    sec.bytes.assign(p, p + len);
    sections.push_back(std::move(sec));
  }
  if (r.pos != r.size)
    throw std::invalid_argument(where + ": " + std::to_string(r.size - r.pos) +
                                " unexpected trailing bytes");
  // Everything is valid: commit (the only step that may throw, resize, comes first).
  for (std::uint32_t s = 0; s < n_state; ++s) state[s]->resize(n);
  std::memcpy(params.values(), values, n * sizeof(T));
  for (std::uint32_t s = 0; s < n_state; ++s)
    std::memcpy(state[s]->data(), blocks[s], n * sizeof(T));
  opt_step = file_opt_step;
  if (sections_out) *sections_out = std::move(sections);
  return step;
}

template <real_scalar T>
std::uint64_t load_checkpoint_impl(const std::filesystem::path& path, param_buffer<T>& params,
                                   const std::string& opt_name, std::uint64_t& opt_step,
                                   const std::vector<aligned_vector<T>*>& state,
                                   std::vector<checkpoint_section>* sections_out) {
  const auto bytes = read_checkpoint_file(path);
  return parse_checkpoint<T>(bytes, "load_checkpoint(" + path.string() + ")", params, opt_name,
                             opt_step, state, sections_out);
}

}  // namespace detail

/**
 * The bytes `save_checkpoint` writes (for an `output_set` that commits a checkpoint together
 * with other outputs).
 * @throws std::invalid_argument when the state does not match the buffer.
 */
template <real_scalar T>
std::vector<unsigned char> checkpoint_bytes(const param_buffer<T>& params,
                                            const adamw_state<T>& opt, std::uint64_t step,
                                            std::span<const checkpoint_section> sections = {}) {
  return detail::serialize_checkpoint<T>(params, "adamw", opt.step, {&opt.m, &opt.v}, step,
                                         sections);
}

/// The bytes of a checkpoint with SGD state (see the AdamW overload).
template <real_scalar T>
std::vector<unsigned char> checkpoint_bytes(const param_buffer<T>& params, const sgd_state<T>& opt,
                                            std::uint64_t step,
                                            std::span<const checkpoint_section> sections = {}) {
  return detail::serialize_checkpoint<T>(params, "sgd", opt.step, {&opt.momentum_buffer}, step,
                                         sections);
}

/**
 * Saves parameters, AdamW state and the training `step` to `path`, atomically.
 * @throws std::invalid_argument when the state does not match the buffer,
 *         std::system_error on I/O failure (the previous file at `path` is then untouched).
 */
template <real_scalar T>
void save_checkpoint(const std::filesystem::path& path, const param_buffer<T>& params,
                     const adamw_state<T>& opt, std::uint64_t step,
                     std::span<const checkpoint_section> sections = {}) {
  write_bytes_atomically(path, checkpoint_bytes(params, opt, step, sections));
}

/// Saves parameters, SGD state, `step` and `sections` (see the AdamW overload).
template <real_scalar T>
void save_checkpoint(const std::filesystem::path& path, const param_buffer<T>& params,
                     const sgd_state<T>& opt, std::uint64_t step,
                     std::span<const checkpoint_section> sections = {}) {
  write_bytes_atomically(path, checkpoint_bytes(params, opt, step, sections));
}

/**
 * Loads a checkpoint written by `save_checkpoint` into `params` (same architecture: names and
 * shapes must match in order) and `opt`; returns the training step. Bitwise exact. The file's
 * sections go to `*sections` when given.
 * @throws std::invalid_argument when the file is missing, truncated, corrupt, of another
 *         version, scalar type, optimiser or architecture (naming the mismatching entry);
 *         `params` and `opt` are then unchanged.
 */
template <real_scalar T>
std::uint64_t load_checkpoint(const std::filesystem::path& path, param_buffer<T>& params,
                              adamw_state<T>& opt,
                              std::vector<checkpoint_section>* sections = nullptr) {
  std::uint64_t opt_step = 0;
  const auto step =
      detail::load_checkpoint_impl<T>(path, params, "adamw", opt_step, {&opt.m, &opt.v}, sections);
  opt.step = opt_step;
  return step;
}

/**
 * `load_checkpoint` from the bytes of a checkpoint file (what the fuzz tests call); `name`
 * stands for the file in messages.
 */
template <real_scalar T>
std::uint64_t load_checkpoint(std::span<const unsigned char> bytes, const std::string& name,
                              param_buffer<T>& params, adamw_state<T>& opt,
                              std::vector<checkpoint_section>* sections = nullptr) {
  std::uint64_t opt_step = 0;
  const auto step = detail::parse_checkpoint<T>(bytes, "load_checkpoint(" + name + ")", params,
                                                "adamw", opt_step, {&opt.m, &opt.v}, sections);
  opt.step = opt_step;
  return step;
}

/// Loads parameters and SGD state; returns the training step (see the AdamW overload).
template <real_scalar T>
std::uint64_t load_checkpoint(const std::filesystem::path& path, param_buffer<T>& params,
                              sgd_state<T>& opt,
                              std::vector<checkpoint_section>* sections = nullptr) {
  std::uint64_t opt_step = 0;
  const auto step = detail::load_checkpoint_impl<T>(path, params, "sgd", opt_step,
                                                    {&opt.momentum_buffer}, sections);
  opt.step = opt_step;
  return step;
}

}  // namespace zss
