// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/io/npy.hpp
 * NumPy `.npy` files in and out: CLIP tokens dumped from PyTorch, label maps, results.
 *
 * Supported: format versions 1.0, 2.0 and 3.0; dtypes bool, int8/16/32/64, uint8/16/32/64,
 * float32, float64; little-endian (`<`, or `|` for one-byte types); C (row-major) order.
 * Rejected with a message naming the file, the dtype and the shape: big-endian data, Fortran
 * order (rank ≥ 2; for rank ≤ 1 both orders are the same bytes and are accepted), any other dtype
 * (float16, complex, strings, objects, structured), a header that is not a valid dictionary, and
 * a file whose size does not match its header (truncated, or trailing bytes), and a shape whose
 * extents multiply (zeros left out) to more than 2^63 bytes. Nothing is allocated before the
 * header has been checked against the file's size. `bool` data is read as NumPy reads it: any
 * non-zero byte is `true`.
 *
 * Errors: a file zss cannot read (missing, malformed, unsupported) throws `std::runtime_error`;
 * a valid file that does not fit the request (wrong dtype for `load_npy`, wrong rank, values that
 * do not fit the requested type) throws `std::invalid_argument`.
 *
 * Reading uses zss's own small header parser, not `xt::load_npy`, because xtensor 0.24's reader
 * (a) cannot report the dtype and shape before loading (a tool must choose float/double and rank
 * 2/3 from the header), (b) does not check that the data was actually read (a truncated file
 * yields uninitialised values silently), (c) sign-extends the header-length bytes (a 1.0 header
 * of 128 bytes or more is misread), (d) requires the three keys in one order, and (e) allocates
 * whatever a corrupt shape asks for. Writing uses xtensor's `xt::dump_npy` (its header is what
 * NumPy writes), into memory first and then to disk through `write_file_atomically`: a failed
 * save never leaves a partial file (the price is one in-memory copy of the array).
 */
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <xtensor/xarray.hpp>
#include <xtensor/xnpy.hpp>

#include "zss/core/check.hpp"
#include "zss/core/tensor.hpp"
#include "zss/io/atomic_file.hpp"

namespace zss {

static_assert(std::endian::native == std::endian::little,
              "zss/io/npy.hpp reads and writes little-endian data in place");

/// The element types a `.npy` file may hold for zss.
enum class npy_dtype : std::uint8_t {
  bool8,
  int8,
  int16,
  int32,
  int64,
  uint8,
  uint16,
  uint32,
  uint64,
  float32,
  float64
};

/// "float32", "int64", "bool", …
inline const char* to_string(npy_dtype t) noexcept {
  switch (t) {
    case npy_dtype::bool8:
      return "bool";
    case npy_dtype::int8:
      return "int8";
    case npy_dtype::int16:
      return "int16";
    case npy_dtype::int32:
      return "int32";
    case npy_dtype::int64:
      return "int64";
    case npy_dtype::uint8:
      return "uint8";
    case npy_dtype::uint16:
      return "uint16";
    case npy_dtype::uint32:
      return "uint32";
    case npy_dtype::uint64:
      return "uint64";
    case npy_dtype::float32:
      return "float32";
    case npy_dtype::float64:
      return "float64";
  }
  return "?";
}

/// Bytes per element.
constexpr index_t npy_itemsize(npy_dtype t) noexcept {
  switch (t) {
    case npy_dtype::bool8:
    case npy_dtype::int8:
    case npy_dtype::uint8:
      return 1;
    case npy_dtype::int16:
    case npy_dtype::uint16:
      return 2;
    case npy_dtype::int32:
    case npy_dtype::uint32:
    case npy_dtype::float32:
      return 4;
    default:
      return 8;
  }
}

/// True for float32 and float64.
constexpr bool npy_is_floating(npy_dtype t) noexcept {
  return t == npy_dtype::float32 || t == npy_dtype::float64;
}

/// The C++ types with a `.npy` dtype (fixed-width integers, bool, float, double).
template <class T>
concept npy_scalar = std::same_as<T, bool> || std::same_as<T, std::int8_t> ||
    std::same_as<T, std::int16_t> || std::same_as<T, std::int32_t> ||
    std::same_as<T, std::int64_t> || std::same_as<T, std::uint8_t> ||
    std::same_as<T, std::uint16_t> || std::same_as<T, std::uint32_t> ||
    std::same_as<T, std::uint64_t> || std::same_as<T, float> || std::same_as<T, double>;

/// The dtype of `T`.
template <npy_scalar T>
constexpr npy_dtype npy_dtype_of() noexcept {
  if constexpr (std::same_as<T, bool>)
    return npy_dtype::bool8;
  else if constexpr (std::same_as<T, std::int8_t>)
    return npy_dtype::int8;
  else if constexpr (std::same_as<T, std::int16_t>)
    return npy_dtype::int16;
  else if constexpr (std::same_as<T, std::int32_t>)
    return npy_dtype::int32;
  else if constexpr (std::same_as<T, std::int64_t>)
    return npy_dtype::int64;
  else if constexpr (std::same_as<T, std::uint8_t>)
    return npy_dtype::uint8;
  else if constexpr (std::same_as<T, std::uint16_t>)
    return npy_dtype::uint16;
  else if constexpr (std::same_as<T, std::uint32_t>)
    return npy_dtype::uint32;
  else if constexpr (std::same_as<T, std::uint64_t>)
    return npy_dtype::uint64;
  else if constexpr (std::same_as<T, float>)
    return npy_dtype::float32;
  else
    return npy_dtype::float64;
}

/// What a `.npy` header says, validated against the file size.
struct npy_header {
  npy_dtype dtype = npy_dtype::float32;  ///< element type
  std::vector<index_t> shape;            ///< extents, C order (empty for a 0-d array)
  index_t data_offset = 0;               ///< bytes before the first element
  bool fortran_order = false;            ///< only ever true for rank ≤ 1 (same bytes as C order)

  index_t rank() const noexcept { return shape.size(); }
  /// Number of elements (1 for a 0-d array).
  index_t size() const noexcept {
    index_t n = 1;
    for (auto e : shape) n *= e;
    return n;
  }
  index_t data_bytes() const noexcept { return size() * npy_itemsize(dtype); }
  /// "float32 (2, 3)".
  std::string describe() const { return std::string(to_string(dtype)) + " " + shape_string(shape); }
};

namespace detail {

[[noreturn]] inline void npy_fail(const std::filesystem::path& file, const std::string& what) {
  throw std::runtime_error("'" + file.string() + "': " + what);
}

/// A strict reader of the header's Python dict literal: {'descr': …, 'fortran_order': …, 'shape':
/// (…)}.
class npy_dict_parser {
 public:
  npy_dict_parser(std::string_view s, const std::filesystem::path& file) : s_(s), file_(file) {}

  void parse(std::string& descr, bool& fortran, std::vector<index_t>& shape) {
    bool has_descr = false, has_fortran = false, has_shape = false;
    ws();
    expect('{');
    for (;;) {
      ws();
      if (peek() == '}') {
        ++pos_;
        break;
      }
      const std::string key = quoted();
      ws();
      expect(':');
      ws();
      if (key == "descr") {
        if (peek() == '[') fail("structured dtypes (descr is a list) are not supported");
        descr = quoted();
        has_descr = true;
      } else if (key == "fortran_order") {
        if (s_.substr(pos_, 4) == "True")
          fortran = true, pos_ += 4;
        else if (s_.substr(pos_, 5) == "False")
          fortran = false, pos_ += 5;
        else
          fail("fortran_order is neither True nor False");
        has_fortran = true;
      } else if (key == "shape") {
        tuple(shape);
        has_shape = true;
      } else {
        fail("unexpected header key '" + key + "'");
      }
      ws();
      if (peek() == ',')
        ++pos_;
      else if (peek() != '}')
        fail("expected ',' or '}' in the header dictionary");
    }
    ws();
    if (pos_ != s_.size()) fail("unexpected characters after the header dictionary");
    if (!has_descr || !has_fortran || !has_shape)
      fail("header lacks one of 'descr', 'fortran_order', 'shape'");
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    npy_fail(file_, "malformed .npy header (" + what + "): " + std::string(s_));
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void ws() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t' || s_[pos_] == '\r'))
      ++pos_;
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string quoted() {
    const char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string");
    const auto end = s_.find(q, pos_ + 1);
    if (end == std::string_view::npos) fail("unterminated string");
    std::string out(s_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return out;
  }
  void tuple(std::vector<index_t>& shape) {
    shape.clear();
    expect('(');
    for (;;) {
      ws();
      if (peek() == ')') {
        ++pos_;
        return;
      }
      if (peek() < '0' || peek() > '9') fail("shape entries must be non-negative integers");
      index_t v = 0;
      while (peek() >= '0' && peek() <= '9') {
        const index_t digit = static_cast<index_t>(peek() - '0');
        if (v > (std::numeric_limits<index_t>::max() - digit) / 10) fail("shape entry overflows");
        v = v * 10 + digit;
        ++pos_;
      }
      if (peek() == 'L') ++pos_;  // Python 2 long literal
      shape.push_back(v);
      ws();
      if (peek() == ',')
        ++pos_;
      else if (peek() != ')')
        fail("expected ',' or ')' in the shape");
    }
  }

  std::string_view s_;
  const std::filesystem::path& file_;
  std::size_t pos_ = 0;
};

/// Maps a descr such as "<f4" to a dtype, or throws naming it.
inline npy_dtype npy_parse_descr(const std::string& descr, const std::filesystem::path& file) {
  static constexpr const char* supported =
      "supported: bool, int8, int16, int32, int64, uint8, uint16, uint32, uint64, float32, float64";
  if (descr.size() < 2) npy_fail(file, "unsupported dtype '" + descr + "' (" + supported + ")");
  const char order = descr[0];
  const std::string code = descr.substr(1);
  struct entry {
    const char* code;
    npy_dtype type;
  };
  static constexpr entry table[] = {
      {"b1", npy_dtype::bool8},  {"?", npy_dtype::bool8},    {"i1", npy_dtype::int8},
      {"i2", npy_dtype::int16},  {"i4", npy_dtype::int32},   {"i8", npy_dtype::int64},
      {"u1", npy_dtype::uint8},  {"u2", npy_dtype::uint16},  {"u4", npy_dtype::uint32},
      {"u8", npy_dtype::uint64}, {"f4", npy_dtype::float32}, {"f8", npy_dtype::float64}};
  const entry* found = nullptr;
  for (const auto& e : table)
    if (code == e.code) found = &e;
  if (order != '<' && order != '>' && order != '|' && order != '=')
    npy_fail(file, "unsupported dtype '" + descr + "' (" + supported + ")");
  if (!found) npy_fail(file, "unsupported dtype '" + descr + "' (" + supported + ")");
  const index_t size = npy_itemsize(found->type);
  if (order == '>' && size > 1)
    npy_fail(file, "big-endian dtype '" + descr + "' (" + to_string(found->type) +
                       ") is not supported; save it little-endian, e.g. a.astype('<" + code + "')");
  if (order == '|' && size > 1)
    npy_fail(file,
             "dtype '" + descr + "' has no byte order but " + std::to_string(size) + " bytes");
  return found->type;
}

/// Reads and validates the header from `in` (positioned at byte 0); `file_size` checks the data.
inline npy_header npy_read_header(std::istream& in, std::uintmax_t file_size,
                                  const std::filesystem::path& file) {
  unsigned char pre[8];
  if (!in.read(reinterpret_cast<char*>(pre), 8))
    npy_fail(file, "not a .npy file (shorter than the 8-byte preamble)");
  if (std::memcmp(pre, "\x93NUMPY", 6) != 0) npy_fail(file, "not a .npy file (bad magic string)");
  const unsigned major = pre[6], minor = pre[7];
  index_t header_len = 0, len_bytes = 0;
  if (major == 1 && minor == 0) {
    unsigned char b[2];
    if (!in.read(reinterpret_cast<char*>(b), 2)) npy_fail(file, "truncated .npy header");
    header_len = index_t(b[0]) | (index_t(b[1]) << 8);
    len_bytes = 2;
  } else if ((major == 2 || major == 3) && minor == 0) {
    unsigned char b[4];
    if (!in.read(reinterpret_cast<char*>(b), 4)) npy_fail(file, "truncated .npy header");
    header_len =
        index_t(b[0]) | (index_t(b[1]) << 8) | (index_t(b[2]) << 16) | (index_t(b[3]) << 24);
    len_bytes = 4;
  } else {
    npy_fail(file, "unsupported .npy format version " + std::to_string(major) + "." +
                       std::to_string(minor));
  }
  constexpr index_t max_header = index_t(1)
                                 << 20;  // a real header is < 1 KiB; refuse to allocate for garbage
  if (header_len > max_header || 8 + len_bytes + header_len > file_size)
    npy_fail(file, "truncated .npy header (declares " + std::to_string(header_len) +
                       " bytes, file has " + std::to_string(file_size) + ")");
  std::string text(header_len, '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(header_len)))
    npy_fail(file, "truncated .npy header");

  std::string descr;
  npy_header h;
  npy_dict_parser(text, file).parse(descr, h.fortran_order, h.shape);
  h.dtype = npy_parse_descr(descr, file);
  h.data_offset = 8 + len_bytes + header_len;

  // Every extent and the product of the non-zero ones must fit a signed byte offset (xtensor's
  // strides are signed, and an empty array's strides are still products of the other extents),
  // so (0, 2^63) is refused as well as (2^62, 4).
  const index_t max_elements =
      index_t(std::numeric_limits<std::ptrdiff_t>::max()) / npy_itemsize(h.dtype);
  index_t nonzero = 1;
  for (auto e : h.shape) {
    if (e == 0) continue;
    if (nonzero > max_elements / e)
      npy_fail(file, "shape " + shape_string(h.shape) + " of " + to_string(h.dtype) +
                         " is too large (more than 2^63 bytes)");
    nonzero *= e;
  }
  if (h.fortran_order && h.rank() >= 2)
    npy_fail(file, h.describe() +
                       " is stored in Fortran (column-major) order, which is not supported; "
                       "save a C-ordered array (np.ascontiguousarray)");
  // data_offset <= file_size was checked with the header; compare without adding (no overflow).
  const std::uintmax_t have = file_size - std::uintmax_t(h.data_offset);
  const std::uintmax_t need = std::uintmax_t(h.data_bytes());
  if (have < need)
    npy_fail(file, "truncated: " + h.describe() + " needs " + std::to_string(need) +
                       " data bytes, the file has " + std::to_string(have));
  if (have > need)
    npy_fail(file, "corrupt: " + std::to_string(have - need) + " unexpected bytes after the " +
                       h.describe() + " data");
  return h;
}

inline std::ifstream npy_open(const std::filesystem::path& file, std::uintmax_t& size) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) npy_fail(file, "no such file");
  if (std::filesystem::is_directory(file, ec)) npy_fail(file, "is a directory, not a .npy file");
  size = std::filesystem::file_size(file, ec);
  if (ec) npy_fail(file, "cannot read its size: " + ec.message());
  std::ifstream in(file, std::ios::binary);
  if (!in) npy_fail(file, "cannot open for reading");
  return in;
}

template <class T, std::size_t N>
tensor<T, N> npy_allocate(const npy_header& h) {
  std::array<index_t, N> shape{};
  for (std::size_t i = 0; i < N; ++i) shape[i] = h.shape[i];
  return tensor<T, N>::from_shape(shape);
}

inline void npy_read_data(std::istream& in, const npy_header& h, void* out,
                          const std::filesystem::path& file) {
  in.seekg(static_cast<std::streamoff>(h.data_offset));
  if (h.data_bytes() == 0) return;
  if (!in.read(static_cast<char*>(out), static_cast<std::streamsize>(h.data_bytes())))
    npy_fail(file, "read error in the " + h.describe() + " data");
}

/// Reads `bool` data as NumPy does: any non-zero byte is true (a byte other than 0 or 1 read
/// straight into a `bool` would be undefined behaviour).
inline void npy_read_bools(std::istream& in, const npy_header& h, bool* out,
                           const std::filesystem::path& file) {
  std::unique_ptr<unsigned char[]> bytes(new unsigned char[h.size()]);
  npy_read_data(in, h, bytes.get(), file);
  for (index_t i = 0; i < h.size(); ++i) out[i] = bytes[i] != 0;
}

template <std::size_t N>
void npy_check_rank(const npy_header& h, const std::filesystem::path& file,
                    std::string_view where) {
  if (h.rank() != N)
    throw std::invalid_argument(std::string(where) + ": '" + file.string() + "' holds " +
                                h.describe() + ", expected rank " + std::to_string(N));
}

/// Converts one value of source type S to T, throwing when it does not fit.
template <class T, class S>
T npy_convert(S v, index_t i, const std::filesystem::path& file, npy_dtype from) {
  if constexpr (std::is_floating_point_v<T>) {
    if constexpr (std::is_same_v<S, double> && std::is_same_v<T, float>) {
      if (std::isfinite(v) && std::abs(v) > double(std::numeric_limits<float>::max())) {
        std::ostringstream os;
        os << "load_npy_as: '" << file.string() << "': value " << v << " at flat index " << i
           << " overflows float32";
        throw std::invalid_argument(os.str());
      }
    }
    return static_cast<T>(v);
  } else if constexpr (std::is_same_v<T, bool> || std::is_same_v<S, bool>) {
    return static_cast<T>(v);  // bool → any integer always fits; T = bool only from bool
  } else {
    if (!std::in_range<T>(v)) {
      std::ostringstream os;
      os << "load_npy_as: '" << file.string() << "': value " << +v << " (" << to_string(from)
         << ") at flat index " << i << " does not fit " << to_string(npy_dtype_of<T>());
      throw std::invalid_argument(os.str());
    }
    return static_cast<T>(v);
  }
}

template <class T, class S, std::size_t N>
void npy_read_converted(std::istream& in, const npy_header& h, tensor<T, N>& out,
                        const std::filesystem::path& file) {
  const index_t n = h.size();
  std::unique_ptr<S[]> buf(new S[n]);  // not std::vector: vector<bool> has no data()
  if constexpr (std::is_same_v<S, bool>)
    npy_read_bools(in, h, buf.get(), file);
  else
    npy_read_data(in, h, buf.get(), file);
  T* o = out.data();
  for (index_t i = 0; i < n; ++i) o[i] = npy_convert<T>(buf[i], i, file, h.dtype);
}

/// The element data of a validated header into `out` (same dtype), bools normalised.
template <class T, std::size_t N>
void npy_read_same(std::istream& in, const npy_header& h, tensor<T, N>& out,
                   const std::filesystem::path& file) {
  if constexpr (std::is_same_v<T, bool>)
    npy_read_bools(in, h, out.data(), file);
  else
    npy_read_data(in, h, out.data(), file);
}

}  // namespace detail

/**
 * Reads and validates a `.npy` header (including that the file size matches it) without
 * reading the data.
 * @throws std::runtime_error naming the file when it is missing, not a `.npy` file, malformed,
 *         truncated, big-endian, Fortran-ordered (rank ≥ 2) or of an unsupported dtype.
 */
inline npy_header read_npy_header(const std::filesystem::path& file) {
  std::uintmax_t size = 0;
  std::ifstream in = detail::npy_open(file, size);
  return detail::npy_read_header(in, size, file);
}

/**
 * `load_npy` from a stream positioned at the file's first byte, of `size` bytes in all (what
 * the fuzz tests call); `file` names it in messages.
 */
template <npy_scalar T, std::size_t N>
tensor<T, N> load_npy(std::istream& in, std::uintmax_t size, const std::filesystem::path& file) {
  const npy_header h = detail::npy_read_header(in, size, file);
  if (h.dtype != npy_dtype_of<T>())
    throw std::invalid_argument("load_npy: '" + file.string() + "' holds " + h.describe() +
                                ", expected " + to_string(npy_dtype_of<T>()) + " data");
  detail::npy_check_rank<N>(h, file, "load_npy");
  tensor<T, N> out = detail::npy_allocate<T, N>(h);
  detail::npy_read_same(in, h, out, file);
  return out;
}

/**
 * Loads a `.npy` file whose dtype is exactly `T`'s and whose rank is `N`.
 * @tparam T the element type (see `npy_scalar`); N the rank.
 * @throws std::runtime_error as `read_npy_header`;
 *         std::invalid_argument when the dtype or rank differs (the message names file, dtype,
 * shape).
 */
template <npy_scalar T, std::size_t N>
tensor<T, N> load_npy(const std::filesystem::path& file) {
  std::uintmax_t size = 0;
  std::ifstream in = detail::npy_open(file, size);
  return load_npy<T, N>(in, size, file);
}

/// `load_npy_as` from a stream of `size` bytes (see the stream overload of `load_npy`).
template <npy_scalar T, std::size_t N>
tensor<T, N> load_npy_as(std::istream& in, std::uintmax_t size, const std::filesystem::path& file) {
  const npy_header h = detail::npy_read_header(in, size, file);
  detail::npy_check_rank<N>(h, file, "load_npy_as");
  constexpr bool want_float = std::is_floating_point_v<T>;
  constexpr bool want_bool = std::is_same_v<T, bool>;
  if (npy_is_floating(h.dtype) != want_float || (want_bool && h.dtype != npy_dtype::bool8))
    throw std::invalid_argument("load_npy_as: '" + file.string() + "' holds " + h.describe() +
                                ", which does not convert to " + to_string(npy_dtype_of<T>()));
  tensor<T, N> out = detail::npy_allocate<T, N>(h);
  if (h.dtype == npy_dtype_of<T>()) {
    detail::npy_read_same(in, h, out, file);
    return out;
  }
  if constexpr (want_float) {
    if (h.dtype == npy_dtype::float32)
      detail::npy_read_converted<T, float>(in, h, out, file);
    else
      detail::npy_read_converted<T, double>(in, h, out, file);
  } else {
    switch (h.dtype) {
      case npy_dtype::bool8:
        detail::npy_read_converted<T, bool>(in, h, out, file);
        break;
      case npy_dtype::int8:
        detail::npy_read_converted<T, std::int8_t>(in, h, out, file);
        break;
      case npy_dtype::int16:
        detail::npy_read_converted<T, std::int16_t>(in, h, out, file);
        break;
      case npy_dtype::int32:
        detail::npy_read_converted<T, std::int32_t>(in, h, out, file);
        break;
      case npy_dtype::int64:
        detail::npy_read_converted<T, std::int64_t>(in, h, out, file);
        break;
      case npy_dtype::uint8:
        detail::npy_read_converted<T, std::uint8_t>(in, h, out, file);
        break;
      case npy_dtype::uint16:
        detail::npy_read_converted<T, std::uint16_t>(in, h, out, file);
        break;
      case npy_dtype::uint32:
        detail::npy_read_converted<T, std::uint32_t>(in, h, out, file);
        break;
      case npy_dtype::uint64:
        detail::npy_read_converted<T, std::uint64_t>(in, h, out, file);
        break;
      default:
        break;  // floating handled above
    }
  }
  return out;
}

/**
 * Loads a rank-`N` `.npy` file, converting its elements to `T` where that is value-preserving in
 * kind: float32/float64 → float/double (a float64 value beyond float32's range throws; rounding
 * is accepted); bool/any integer → any integer type (each value range-checked) or bool. Integer
 * data is never converted to floating point or back.
 * @throws std::runtime_error as `read_npy_header`; std::invalid_argument for a wrong rank, a
 *         conversion across kinds, or a value that does not fit `T`.
 */
template <npy_scalar T, std::size_t N>
tensor<T, N> load_npy_as(const std::filesystem::path& file) {
  std::uintmax_t size = 0;
  std::ifstream in = detail::npy_open(file, size);
  return load_npy_as<T, N>(in, size, file);
}

namespace detail {
template <class C>
void npy_write_bytes(const std::filesystem::path& file, const C& evaluated) {
  write_bytes_atomically(file, xt::dump_npy(evaluated));
}
}  // namespace detail

/**
 * Saves an xtensor expression (container, view or adaptor) as a C-ordered `.npy` file,
 * atomically: the file appears complete or not at all (an existing file is replaced only on
 * success). The element type must be an `npy_scalar`.
 * @throws std::runtime_error when the file cannot be written (nothing is left behind).
 */
template <class E>
void save_npy(const std::filesystem::path& file, const xt::xexpression<E>& e) {
  using value_type = std::remove_cv_t<typename E::value_type>;
  static_assert(npy_scalar<value_type>,
                "save_npy: the element type has no .npy dtype supported by zss");
  const auto& ex = e.derived_cast();
  auto&& ev = xt::eval(ex);
  if (ev.dimension() > 1 && ev.layout() != xt::layout_type::row_major) {
    const xt::xarray<value_type, xt::layout_type::row_major> c = ev;
    detail::npy_write_bytes(file, c);
  } else {
    detail::npy_write_bytes(file, ev);
  }
}

/**
 * Saves a contiguous row-major buffer of `shape` as `.npy`, atomically (see above).
 * @param data  ∏shape elements, row-major.
 */
template <npy_scalar T, std::size_t N>
void save_npy(const std::filesystem::path& file, const T* data,
              const std::array<index_t, N>& shape) {
  index_t n = 1;
  for (auto x : shape) n *= x;
  const auto view = xt::adapt(data, n, xt::no_ownership(), shape);
  detail::npy_write_bytes(file, view);
}

}  // namespace zss
