// SPDX-License-Identifier: Apache-2.0
// Tests for zss/io/checkpoint.hpp: bitwise round trip, exact resume, rejection of truncated,
// corrupt and mismatched files, and an interrupted save that leaves the previous file intact.
#include <doctest/doctest.h>

#include <sys/resource.h>

#include <unistd.h>
#include <csignal>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "support/random_data.hpp"
#include "zss/io/checkpoint.hpp"
#include "zss/loss/cosine_ce.hpp"
#include "zss/nn/encoder.hpp"
#include "zss/optim/adamw.hpp"
#include "zss/optim/schedule.hpp"
#include "zss/optim/sgd.hpp"

namespace test_io_checkpoint {

using namespace zss;
namespace fs = std::filesystem;

namespace {
struct temp_dir {
  fs::path path;
  temp_dir() {
    path = fs::temp_directory_path() / ("zss_ckpt_test_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~temp_dir() { fs::remove_all(path); }
};

std::vector<char> read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
void write_bytes(const fs::path& p, const std::vector<char>& b) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(b.data(), std::streamsize(b.size()));
}

encoder_options small_config(index_t d = 6) {
  encoder_options c;
  c.widths = {4, 8};
  c.strides = {1, 2};
  c.embed_dim = d;
  return c;
}

// A little training problem: 3 images 8×8, 3 classes, AdamW with a cosine schedule.
template <class T>
struct trainer {
  encoder<T> net;
  adamw_state<T> opt;
  tensor<T, 4> img;
  tensor<T, 3> F, dF;
  aligned_vector<T> cls;
  std::vector<int> y;
  std::vector<index_t> offsets;
  encoder_cache<T> cache;
  cosine_ce_cache<T> ce;
  cosine_schedule sched{1e-2, 1e-4, 2, 8};
  std::uint64_t step = 0;

  trainer() : net(small_config()) {
    encoder_init(net, 11);
    img = tensor<T, 4>::from_shape({3, 8, 8, 3});
    auto v = test::uniform_vector<T>(img.size(), 12);
    std::copy(v.begin(), v.end(), img.begin());
    const auto [h, w] = net.output_grid(8, 8);
    F = tensor<T, 3>::from_shape({3, h * w, 6});
    dF = F;
    cls = test::uniform_vector<T>(3 * 6, 13);
    rng g(14);
    for (index_t i = 0; i < 3 * h * w; ++i) y.push_back(int(g.below(3)));
    for (index_t b = 0; b <= 3; ++b) offsets.push_back(b * h * w);
  }
  void train(int steps) {
    const class_sets<T> sets{offsets, matrix_ref<const T>(cls.data(), 3, 6), {}, {}};
    cosine_ce_options cp;
    cp.threads = 2;
    for (int s = 0; s < steps; ++s, ++step) {
      net.params.zero_grad();
      dF.fill(T(0));
      encoder_forward(F, cache, img, net, 2);
      T loss = 0;
      cosine_ce_forward_backward(loss, matrix_ref<T>(dF.data(), F.shape()[0] * F.shape()[1], 6),
                                 class_set_grads<T>{}, ce,
                                 matrix_ref<const T>(F.data(), F.shape()[0] * F.shape()[1], 6),
                                 std::span<const int>(y), std::span<const T>{}, sets, cp);
      encoder_backward(net, dF, cache, img, 2);
      adamw_options o;
      o.lr = T(sched(step));
      adamw_step(std::span<T>(net.params.values(), net.params.size()),
                 std::span<const T>(net.params.grads(), net.params.size()), opt, o);
    }
  }
};

template <class T>
bool same_bits(const T* a, const T* b, std::size_t n) {
  return std::memcmp(a, b, n * sizeof(T)) == 0;
}
}  // namespace

TEST_CASE_TEMPLATE("round trip restores weights, AdamW state and step bitwise", T, float, double) {
  temp_dir dir;
  trainer<T> a;
  a.train(3);
  const auto file = dir.path / "model.ckpt";
  save_checkpoint(file, a.net.params, a.opt, a.step);
  CHECK_FALSE(fs::exists(dir.path / "model.ckpt.tmp"));
  encoder<T> b(small_config());
  adamw_state<T> ob;
  CHECK(load_checkpoint(file, b.params, ob) == 3);
  CHECK(ob.step == a.opt.step);
  CHECK(same_bits(a.net.params.values(), b.params.values(), a.net.params.size()));
  CHECK(same_bits(a.opt.m.data(), ob.m.data(), a.opt.m.size()));
  CHECK(same_bits(a.opt.v.data(), ob.v.data(), a.opt.v.size()));
}

TEST_CASE_TEMPLATE(
    "training resumed from a checkpoint continues exactly like the uninterrupted run", T, float,
    double) {
  temp_dir dir;
  trainer<T> full;
  full.train(6);
  trainer<T> first;
  first.train(3);
  save_checkpoint(dir.path / "c.ckpt", first.net.params, first.opt, first.step);
  trainer<T> resumed;  // fresh process state: new net (re-initialised), new optimiser, new caches
  resumed.step = load_checkpoint(dir.path / "c.ckpt", resumed.net.params, resumed.opt);
  resumed.train(3);
  CHECK(resumed.step == 6);
  CHECK(same_bits(full.net.params.values(), resumed.net.params.values(), full.net.params.size()));
  CHECK(same_bits(full.opt.m.data(), resumed.opt.m.data(), full.opt.m.size()));
  CHECK(same_bits(full.opt.v.data(), resumed.opt.v.data(), full.opt.v.size()));
}

TEST_CASE("truncated or corrupt files are rejected and the destination is left unchanged") {
  temp_dir dir;
  trainer<float> a;
  a.train(1);
  const auto file = dir.path / "good.ckpt";
  save_checkpoint(file, a.net.params, a.opt, 1);
  const auto bytes = read_bytes(file);
  encoder<float> b(small_config());
  encoder_init(b, 99);
  adamw_state<float> ob;
  const std::vector<float> before(b.params.values(), b.params.values() + b.params.size());
  auto unchanged = [&] {
    return std::equal(before.begin(), before.end(), b.params.values()) && ob.m.empty() &&
           ob.step == 0;
  };
  for (std::size_t keep :
       {std::size_t(0), std::size_t(7), std::size_t(40), bytes.size() / 2, bytes.size() - 1}) {
    CAPTURE(keep);
    write_bytes(dir.path / "bad.ckpt",
                std::vector<char>(bytes.begin(), bytes.begin() + long(keep)));
    CHECK_THROWS_AS(load_checkpoint(dir.path / "bad.ckpt", b.params, ob), std::invalid_argument);
    CHECK(unchanged());
  }
  write_bytes(dir.path / "bad.ckpt", std::vector<char>(bytes.begin(), bytes.end() - 100));
  CHECK_THROWS_WITH_AS(load_checkpoint(dir.path / "bad.ckpt", b.params, ob),
                       doctest::Contains("truncated or corrupt"), std::invalid_argument);
  for (std::size_t at : {std::size_t(9), std::size_t(60), bytes.size() / 2, bytes.size() - 3}) {
    CAPTURE(at);
    auto corrupt = bytes;
    corrupt[at] = char(corrupt[at] ^ 0x10);
    write_bytes(dir.path / "bad.ckpt", corrupt);
    CHECK_THROWS_WITH_AS(load_checkpoint(dir.path / "bad.ckpt", b.params, ob),
                         doctest::Contains("checksum"), std::invalid_argument);
    CHECK(unchanged());
  }
  CHECK_THROWS_WITH_AS(load_checkpoint(dir.path / "missing.ckpt", b.params, ob),
                       doctest::Contains("cannot open"), std::invalid_argument);
  // The good file still loads.
  CHECK(load_checkpoint(file, b.params, ob) == 1);
}

TEST_CASE(
    "a checkpoint of another architecture, scalar type or optimiser is rejected naming the "
    "mismatch") {
  temp_dir dir;
  trainer<float> a;
  a.train(1);
  const auto file = dir.path / "a.ckpt";
  save_checkpoint(file, a.net.params, a.opt, 1);
  adamw_state<float> o;
  encoder<float> wider([] {
    auto c = small_config();
    c.widths = {4, 9};
    return c;
  }());
  CHECK_THROWS_WITH_AS(
      load_checkpoint(file, wider.params, o),
      doctest::Contains(
          "entry 2: file has 'conv2.weight' (3, 3, 4, 8), expected 'conv2.weight' (3, 3, 4, 9)"),
      std::invalid_argument);
  encoder<float> other_d(small_config(7));
  CHECK_THROWS_WITH_AS(load_checkpoint(file, other_d.params, o),
                       doctest::Contains("'proj.weight' (1, 1, 8, 6)"), std::invalid_argument);
  encoder<float> deeper([] {
    auto c = small_config();
    c.widths = {4, 8, 8};
    c.strides = {1, 2, 1};
    return c;
  }());
  CHECK_THROWS_WITH_AS(load_checkpoint(file, deeper.params, o),
                       doctest::Contains("architecture mismatch"), std::invalid_argument);
  encoder<double> dbl(small_config());
  adamw_state<double> od;
  CHECK_THROWS_WITH_AS(load_checkpoint(file, dbl.params, od),
                       doctest::Contains("scalar type mismatch"), std::invalid_argument);
  encoder<float> same(small_config());
  sgd_state<float> os;
  CHECK_THROWS_WITH_AS(load_checkpoint(file, same.params, os),
                       doctest::Contains("file has 'adamw' state, expected 'sgd'"),
                       std::invalid_argument);
  CHECK(o.m.empty());
  CHECK(os.momentum_buffer.empty());
}

TEST_CASE("a failed save leaves the previous checkpoint untouched; SGD state round trips") {
  temp_dir dir;
  trainer<double> a;
  a.train(2);
  const auto file = dir.path / "m.ckpt";
  save_checkpoint(file, a.net.params, a.opt, 2);
  const auto before = read_bytes(file);
  a.train(1);
  {
    // A full disk, root or not: the process may not write more than 512 bytes to any file.
    const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit old_limit{};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    rlimit small = old_limit;
    small.rlim_cur = 512;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    CHECK_THROWS_WITH_AS(save_checkpoint(file, a.net.params, a.opt, 3), doctest::Contains("m.ckpt"),
                         std::runtime_error);
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    std::signal(SIGXFSZ, old_handler);
  }
  CHECK(read_bytes(file) == before);
  std::size_t leftovers = 0;  // and no temporary file is left behind
  for (const auto& e : fs::directory_iterator(dir.path))
    leftovers += e.path().filename() != "m.ckpt";
  CHECK(leftovers == 0);
  save_checkpoint(file, a.net.params, a.opt, 3);  // now it works and replaces the file
  CHECK(read_bytes(file) != before);

  sgd_state<double> s;
  std::vector<double> g(a.net.params.size(), 0.5);
  sgd_options so;
  sgd_step(std::span<double>(a.net.params.values(), a.net.params.size()),
           std::span<const double>(g), s, so);
  sgd_step(std::span<double>(a.net.params.values(), a.net.params.size()),
           std::span<const double>(g), s, so);
  save_checkpoint(dir.path / "s.ckpt", a.net.params, s, 7);
  encoder<double> b(small_config());
  sgd_state<double> t;
  CHECK(load_checkpoint(dir.path / "s.ckpt", b.params, t) == 7);
  CHECK(t.step == 2);
  CHECK(same_bits(s.momentum_buffer.data(), t.momentum_buffer.data(), s.momentum_buffer.size()));
  CHECK(same_bits(a.net.params.values(), b.params.values(), b.params.size()));
}

TEST_CASE("named sections round-trip; a section longer than the file is refused") {
  temp_dir dir;
  trainer<double> a;
  a.train(1);
  const auto file = dir.path / "s.ckpt";
  const std::vector<checkpoint_section> sections = {{"trainer.config", {'a', ' ', '=', ' ', '1'}},
                                                    {"empty", {}}};
  save_checkpoint(file, a.net.params, a.opt, 1, sections);
  encoder<double> b(a.net.config);
  adamw_state<double> ob;
  std::vector<checkpoint_section> back;
  CHECK(load_checkpoint(file, b.params, ob, &back) == 1);
  REQUIRE(back.size() == 2);
  CHECK(back[0].name == "trainer.config");
  CHECK(back[0].bytes == sections[0].bytes);
  CHECK(back[1].name == "empty");
  CHECK(back[1].bytes.empty());
  // Duplicate names are refused when saving.
  const std::vector<checkpoint_section> twice = {{"x", {}}, {"x", {1}}};
  CHECK_THROWS_WITH_AS(save_checkpoint(file, a.net.params, a.opt, 1, twice),
                       doctest::Contains("duplicate section 'x'"), std::invalid_argument);
  // A corrupted section length (checksum fixed up) is refused before anything is allocated.
  auto bytes = read_bytes(file);
  const std::string name = "trainer.config";
  const auto it = std::search(bytes.begin(), bytes.end(), name.begin(), name.end());
  REQUIRE(it != bytes.end());
  const std::uint64_t huge = std::uint64_t(1) << 60;
  std::memcpy(&*(it + std::ptrdiff_t(name.size())), &huge, sizeof huge);
  const std::uint64_t sum =
      zss::detail::fnv1a64(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size() - 8);
  std::memcpy(bytes.data() + bytes.size() - 8, &sum, 8);
  write_bytes(dir.path / "bad.ckpt", bytes);
  CHECK_THROWS_WITH_AS(load_checkpoint(dir.path / "bad.ckpt", b.params, ob, &back),
                       doctest::Contains("section 'trainer.config' claims"), std::invalid_argument);
}

TEST_CASE("another format version or byte order is refused naming both (checksum intact)") {
  temp_dir dir;
  trainer<float> a;
  a.train(1);
  const auto file = dir.path / "v.ckpt";
  save_checkpoint(file, a.net.params, a.opt, 1);
  const auto bytes = read_bytes(file);
  encoder<float> b(small_config());
  adamw_state<float> ob;
  // u32 at byte 8 (version), u32 at byte 12 (endian tag); the checksum recomputed, so only the
  // field can be what is refused.
  auto with = [&](std::size_t at, std::uint32_t value) {
    auto v = bytes;
    std::memcpy(v.data() + at, &value, 4);
    const std::uint64_t sum =
        detail::fnv1a64(reinterpret_cast<const unsigned char*>(v.data()), v.size() - 8);
    std::memcpy(v.data() + v.size() - 8, &sum, 8);
    write_bytes(dir.path / "bad.ckpt", v);
  };
  const std::string v1 = "unsupported checkpoint version 1 (this build reads version " +
                         std::to_string(checkpoint_version) + ")";
  const std::string v3 = "unsupported checkpoint version " + std::to_string(checkpoint_version + 1);
  with(8, 1);
  CHECK_THROWS_WITH_AS(load_checkpoint(dir.path / "bad.ckpt", b.params, ob),
                       doctest::Contains(v1.c_str()), std::invalid_argument);
  with(8, checkpoint_version + 1);
  CHECK_THROWS_WITH_AS(load_checkpoint(dir.path / "bad.ckpt", b.params, ob),
                       doctest::Contains(v3.c_str()), std::invalid_argument);
  with(12, 0x04030201u);
  CHECK_THROWS_WITH_AS(load_checkpoint(dir.path / "bad.ckpt", b.params, ob),
                       doctest::Contains("other byte order"), std::invalid_argument);
  CHECK(ob.step == 0);
  with(8, checkpoint_version);  // the untouched version loads
  CHECK(load_checkpoint(dir.path / "bad.ckpt", b.params, ob) == 1);
}

}  // namespace test_io_checkpoint
