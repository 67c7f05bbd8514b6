// SPDX-License-Identifier: Apache-2.0
// Tests for zss/io/npy.hpp and zss/io/atomic_file.hpp: round trips for every dtype, files
// written byte by byte as NumPy writes them, malformed files rejected with messages, atomic writes.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include "support/error_of.hpp"
#include "support/temp_dir.hpp"
#include "zss/io/npy.hpp"

namespace test_io_npy {

using namespace zss;
using zss::test::error_of;
using zss::test::temp_dir;
using zss::test::write_bytes;

namespace {

/// A .npy file as NumPy writes it: magic, version, little-endian header length, the dict text
/// padded with spaces and ended by '\n' so that the preamble + header is a multiple of `align`.
std::string npy_bytes(const std::string& dict, const std::string& data, int major = 1,
                      std::size_t align = 64) {
  const std::size_t len_bytes = major == 1 ? 2 : 4;
  std::string header = dict;
  const std::size_t pre = 8 + len_bytes;
  while ((pre + header.size() + 1) % align != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += char(major);
  out += char(0);
  const std::size_t n = header.size();
  for (std::size_t i = 0; i < len_bytes; ++i) out += char((n >> (8 * i)) & 0xff);
  return out + header + data;
}

template <class T>
std::string raw(std::initializer_list<T> values) {
  std::string s(values.size() * sizeof(T), '\0');
  std::size_t i = 0;
  for (T v : values) std::memcpy(s.data() + sizeof(T) * i++, &v, sizeof(T));
  return s;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE_TEMPLATE("npy round trip keeps dtype, shape and every value", T, bool, std::int8_t,
                   std::int16_t, std::int32_t, std::int64_t, std::uint8_t, std::uint16_t,
                   std::uint32_t, std::uint64_t, float, double) {
  temp_dir dir;
  const auto file = dir / "a.npy";
  tensor<T, 3> a = tensor<T, 3>::from_shape({2, 3, 5});
  for (index_t i = 0; i < a.size(); ++i) a.data()[i] = static_cast<T>(i * 7 % 11);
  a(0, 0, 0) = std::numeric_limits<T>::max();
  a(1, 2, 4) = std::numeric_limits<T>::lowest();
  save_npy(file, a);

  const npy_header h = read_npy_header(file);
  CHECK(h.dtype == npy_dtype_of<T>());
  CHECK(h.shape == std::vector<index_t>{2, 3, 5});
  CHECK(h.data_offset % 16 == 0);
  const auto b = load_npy<T, 3>(file);
  REQUIRE(b.shape() == a.shape());
  CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
  CHECK(dir.files() == std::vector<std::string>{"a.npy"});

  SUBCASE("rank 1 and rank 0") {
    tensor<T, 1> v = {T(1), T(0), T(1)};
    save_npy(file, v);
    CHECK(read_npy_header(file).shape == std::vector<index_t>{3});
    CHECK(load_npy<T, 1>(file) == v);
    tensor<T, 0> s = T(1);
    save_npy(file, s);
    CHECK(read_npy_header(file).rank() == 0);
    CHECK(load_npy<T, 0>(file)() == T(1));
  }
  SUBCASE("from a raw buffer and from a view") {
    const T buf[4] = {T(1), T(0), T(1), T(1)};
    save_npy(file, buf, std::array<index_t, 2>{2, 2});
    const auto m = load_npy<T, 2>(file);
    CHECK(m(1, 0) == T(1));
    CHECK(m(0, 1) == T(0));
  }
}

TEST_CASE("npy column-major tensors are saved in C order") {
  temp_dir dir;
  xt::xtensor<float, 2, xt::layout_type::column_major> a = {{1, 2, 3}, {4, 5, 6}};
  save_npy(dir / "c.npy", a);
  const auto b = load_npy<float, 2>(dir / "c.npy");
  CHECK(b == tensor<float, 2>{{1, 2, 3}, {4, 5, 6}});
}

TEST_CASE("npy reads files written byte by byte as NumPy writes them") {
  temp_dir dir;
  const auto file = dir / "np.npy";
  SUBCASE("float32 2 x 3, version 1.0") {
    write_bytes(file, npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                                raw<float>({1.5f, -2, 3, 4, 5, 6.25f})));
    const auto a = load_npy<float, 2>(file);
    CHECK(a == tensor<float, 2>{{1.5f, -2, 3}, {4, 5, 6.25f}});
  }
  SUBCASE("int64 vector, version 2.0, keys in another order, double quotes") {
    write_bytes(file, npy_bytes("{\"shape\": (4,), \"descr\": \"<i8\", \"fortran_order\": False}",
                                raw<std::int64_t>({-1, 255, 1ll << 40, 0}), 2));
    const auto a = load_npy<std::int64_t, 1>(file);
    CHECK(a == tensor<std::int64_t, 1>{-1, 255, 1ll << 40, 0});
  }
  SUBCASE("a header longer than 127 bytes (xtensor 0.24's reader sign-extends its length)") {
    write_bytes(file, npy_bytes("{'descr': '|u1', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, "
                                "1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2), }",
                                std::string("\x07\xff", 2), 1, 192));
    const auto h = read_npy_header(file);
    CHECK(h.data_offset == 192);
    CHECK(h.dtype == npy_dtype::uint8);
    CHECK(h.size() == 2);
  }
  SUBCASE("a 1-d array marked Fortran order is the same bytes and is accepted") {
    write_bytes(file, npy_bytes("{'descr': '<i4', 'fortran_order': True, 'shape': (2,), }",
                                raw<std::int32_t>({7, 8})));
    CHECK(load_npy<std::int32_t, 1>(file) == tensor<std::int32_t, 1>{7, 8});
  }
  SUBCASE("an empty array") {
    write_bytes(file, npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (0, 4), }", ""));
    CHECK(load_npy<double, 2>(file).shape()[1] == 4);
  }
}

TEST_CASE("npy rejects malformed and unsupported files with the file, dtype and shape named") {
  temp_dir dir;
  const auto file = dir / "bad.npy";
  const std::string name = "bad.npy";
  const std::string f4x6 = raw<float>({1, 2, 3, 4, 5, 6});
  auto runtime_message = [&] {
    std::string msg;
    CHECK_THROWS_AS(read_npy_header(file), std::runtime_error);
    msg = error_of([&] { (void)load_npy<float, 2>(file); });
    CHECK(contains(msg, name));
    return msg;
  };

  SUBCASE("missing file") {
    CHECK(contains(runtime_message(), "no such file"));
  }
  SUBCASE("not a .npy file") {
    write_bytes(file, "hello, this is not numpy at all");
    CHECK(contains(runtime_message(), "not a .npy file"));
  }
  SUBCASE("shorter than the preamble") {
    write_bytes(file, "\x93NUM");
    CHECK(contains(runtime_message(), "not a .npy file"));
  }
  SUBCASE("truncated data") {
    std::string b = npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f4x6);
    b.resize(b.size() - 5);
    write_bytes(file, b);
    const auto msg = runtime_message();
    CHECK(contains(msg, "truncated"));
    CHECK(contains(msg, "float32 (2, 3)"));
  }
  SUBCASE("truncated header") {
    std::string b = npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", "");
    b.resize(30);
    write_bytes(file, b);
    CHECK(contains(runtime_message(), "truncated"));
  }
  SUBCASE("trailing bytes") {
    write_bytes(file, npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                                f4x6 + "xyz"));
    CHECK(contains(runtime_message(), "3 unexpected bytes"));
  }
  SUBCASE("big-endian") {
    write_bytes(file,
                npy_bytes("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", f4x6));
    CHECK(contains(runtime_message(), "big-endian dtype '>f4'"));
  }
  SUBCASE("Fortran order") {
    write_bytes(file,
                npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", f4x6));
    const auto msg = runtime_message();
    CHECK(contains(msg, "Fortran"));
    CHECK(contains(msg, "float32 (2, 3)"));
  }
  SUBCASE("unsupported dtypes") {
    for (std::string d : {"<f2", "<c8", "<U3", "|O", "<M8[ns]"}) {
      write_bytes(
          file,
          npy_bytes("{'descr': '" + d + "', 'fortran_order': False, 'shape': (2, 3), }", f4x6));
      const auto msg = runtime_message();
      CHECK_MESSAGE(contains(msg, "unsupported dtype '" + d + "'"), msg);
    }
  }
  SUBCASE("structured dtype") {
    write_bytes(
        file,
        npy_bytes("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,), }", f4x6));
    CHECK(contains(runtime_message(), "structured"));
  }
  SUBCASE("broken dictionaries") {
    for (std::string d :
         {"{'descr': '<f4', 'shape': (6,), }",
          "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (6,), }",
          "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'extra': 1}",
          "{'descr': '<f4', 'fortran_order': False, 'shape': (-6,), }", "['descr', '<f4']",
          "{'descr': '<f4', 'fortran_order': False, 'shape': (6,) } junk",
          "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }"}) {
      write_bytes(file, npy_bytes(d, f4x6));
      const auto msg = runtime_message();
      CHECK_MESSAGE((contains(msg, "malformed") || contains(msg, "overflow")), msg);
    }
  }
  SUBCASE("unknown format version") {
    std::string b = npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f4x6);
    b[6] = 4;
    write_bytes(file, b);
    CHECK(contains(runtime_message(), "version 4.0"));
  }
  SUBCASE("a shape whose byte count overflows") {
    write_bytes(
        file,
        npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }",
                  f4x6));
    CHECK(contains(runtime_message(), "(4294967296, 4294967296) of float64 is too large"));
  }
}

TEST_CASE("npy: a valid file that does not fit the request is an invalid_argument") {
  temp_dir dir;
  const auto file = dir / "x.npy";
  save_npy(file, tensor<float, 2>{{1, 2, 3}, {4, 5, 6}});
  SUBCASE("wrong dtype") {
    CHECK_THROWS_AS((load_npy<double, 2>(file)), std::invalid_argument);
    const auto msg = error_of([&] { (void)load_npy<double, 2>(file); });
    CHECK(contains(msg, "x.npy"));
    CHECK(contains(msg, "float32 (2, 3)"));
    CHECK(contains(msg, "expected float64"));
  }
  SUBCASE("wrong rank") {
    CHECK_THROWS_AS((load_npy<float, 3>(file)), std::invalid_argument);
    const auto msg = error_of([&] { (void)load_npy<float, 3>(file); });
    CHECK(contains(msg, "float32 (2, 3)"));
    CHECK(contains(msg, "expected rank 3"));
  }
}

TEST_CASE("load_npy_as converts within a kind and checks every value") {
  temp_dir dir;
  const auto file = dir / "v.npy";
  SUBCASE("int64 and uint8 labels to int32") {
    save_npy(file, tensor<std::int64_t, 2>{{-1, 3}, {255, 0}});
    CHECK(load_npy_as<std::int32_t, 2>(file) == tensor<std::int32_t, 2>{{-1, 3}, {255, 0}});
    save_npy(file, tensor<std::uint8_t, 1>{0, 7, 255});
    CHECK(load_npy_as<std::int32_t, 1>(file) == tensor<std::int32_t, 1>{0, 7, 255});
    save_npy(file, tensor<bool, 1>{true, false});
    CHECK(load_npy_as<std::int32_t, 1>(file) == tensor<std::int32_t, 1>{1, 0});
  }
  SUBCASE("an integer that does not fit") {
    save_npy(file, tensor<std::int64_t, 1>{1, std::int64_t(1) << 40});
    const auto msg = error_of([&] { (void)load_npy_as<std::int32_t, 1>(file); });
    CHECK(contains(msg, "1099511627776"));
    CHECK(contains(msg, "flat index 1"));
    CHECK_THROWS_AS((load_npy_as<std::int32_t, 1>(file)), std::invalid_argument);
    save_npy(file, tensor<std::int32_t, 1>{-1});
    CHECK_THROWS_AS((load_npy_as<std::uint8_t, 1>(file)), std::invalid_argument);
  }
  SUBCASE("float64 to float32 and back") {
    save_npy(file, tensor<double, 1>{0.5, -3.25});
    CHECK(load_npy_as<float, 1>(file) == tensor<float, 1>{0.5f, -3.25f});
    save_npy(file, tensor<float, 1>{0.5f});
    CHECK(load_npy_as<double, 1>(file)(0) == 0.5);
    save_npy(file, tensor<double, 1>{1e300});
    CHECK_THROWS_AS((load_npy_as<float, 1>(file)), std::invalid_argument);
  }
  SUBCASE("no conversion across kinds") {
    save_npy(file, tensor<std::int32_t, 1>{1, 2});
    const auto msg = error_of([&] { (void)load_npy_as<float, 1>(file); });
    CHECK(contains(msg, "int32 (2)"));
    CHECK(contains(msg, "does not convert to float32"));
    save_npy(file, tensor<float, 1>{1, 2});
    CHECK_THROWS_AS((load_npy_as<std::int32_t, 1>(file)), std::invalid_argument);
  }
}

TEST_CASE("npy: the corners fuzzing found (issue #17) are refused or read as NumPy reads them") {
  temp_dir dir;
  const auto file = dir / "h.npy";
  SUBCASE("bool bytes other than 0 and 1 are true, as in NumPy (no undefined behaviour)") {
    write_bytes(file, npy_bytes("{'descr': '|b1', 'fortran_order': False, 'shape': (4,), }",
                                std::string("\x02\x00\x01\xff", 4)));
    const auto b = load_npy<bool, 1>(file);
    // Compare the bytes: a bool holding 2 would compare unequal to true.
    unsigned char bytes[4];
    std::memcpy(bytes, b.data(), 4);
    CHECK(bytes[0] == 1);
    CHECK(bytes[1] == 0);
    CHECK(bytes[2] == 1);
    CHECK(bytes[3] == 1);
    CHECK(load_npy_as<std::int32_t, 1>(file) == tensor<std::int32_t, 1>{1, 0, 1, 1});
    CHECK(load_npy_as<std::uint8_t, 1>(file) == tensor<std::uint8_t, 1>{1, 0, 1, 1});
    const auto c = load_npy_as<bool, 1>(file);
    std::memcpy(bytes, c.data(), 4);
    CHECK(bytes[0] == 1);
    CHECK(bytes[3] == 1);
  }
  SUBCASE("an empty array whose other extents overflow signed strides") {
    write_bytes(file, npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (0, "
                                "9223372036854775808), }",
                                ""));
    const auto msg = error_of([&] { (void)load_npy<float, 2>(file); });
    CHECK(contains(msg, "h.npy"));
    CHECK(contains(msg, "(0, 9223372036854775808)"));
    CHECK(contains(msg, "too large"));
    CHECK_THROWS_AS(read_npy_header(file), std::runtime_error);
    write_bytes(file, npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (0, "
                                "4294967296, 4294967296), }",
                                ""));
    CHECK(contains(error_of([&] { (void)load_npy<float, 3>(file); }), "too large"));
  }
  SUBCASE("a byte size past 2^63 (whose sum with the header offset wraps) names file and shape") {
    write_bytes(file, npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': "
                                "(2305843009213693944,), }",
                                ""));
    const auto msg = error_of([&] { (void)load_npy<double, 1>(file); });
    CHECK(contains(msg, "h.npy"));
    CHECK(contains(msg, "(2305843009213693944)"));
    CHECK(contains(msg, "too large"));
  }
  SUBCASE("a shape beyond the file's bytes is refused before anything is allocated") {
    write_bytes(file, npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': "
                                "(1000000000, 1000), }",
                                raw<float>({1, 2})));
    const auto msg = error_of([&] { (void)load_npy<float, 2>(file); });
    CHECK(contains(msg, "h.npy"));
    CHECK(contains(msg, "truncated: float32 (1000000000, 1000) needs 4000000000000 data bytes"));
  }
}

TEST_CASE("atomic writes never leave a partial file") {
  temp_dir dir;
  const auto file = dir / "out.npy";
  save_npy(file, tensor<float, 1>{1, 2, 3});
  const std::string before = zss::test::read_bytes(file);

  SUBCASE("a writer that fails half way leaves the old file and no temporary") {
    CHECK_THROWS_WITH(write_file_atomically(file,
                                            [](std::ostream& out) {
                                              out << "partial";
                                              throw std::runtime_error("boom");
                                            }),
                      "boom");
    CHECK(zss::test::read_bytes(file) == before);
    CHECK(dir.files() == std::vector<std::string>{"out.npy"});
  }
  SUBCASE("a missing directory is an error naming the file, and nothing is created") {
    const auto missing = dir / "no-such-dir" / "x.npy";
    const auto msg = error_of([&] { save_npy(missing, tensor<float, 1>{1}); });
    CHECK(contains(msg, "no-such-dir"));
    CHECK_FALSE(std::filesystem::exists(missing));
    CHECK(dir.files() == std::vector<std::string>{"out.npy"});
  }
  SUBCASE("a directory as the target") {
    std::filesystem::create_directory(dir / "sub");
    CHECK_THROWS_AS(save_npy(dir / "sub", tensor<float, 1>{1}), std::runtime_error);
    CHECK(std::filesystem::is_directory(dir / "sub"));
  }
  SUBCASE("a successful write replaces the old content") {
    save_npy(file, tensor<float, 1>{4, 5});
    CHECK(load_npy<float, 1>(file) == tensor<float, 1>{4, 5});
    CHECK(dir.files() == std::vector<std::string>{"out.npy"});
  }
}

}  // namespace test_io_npy
