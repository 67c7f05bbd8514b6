// SPDX-License-Identifier: Apache-2.0
#pragma once
/**
 * @file zss/core/option_fields.hpp
 * Named, checked, documented fields of option structs: one description per field, from which
 * validation, text (checkpoints), command-line options and JSON are all produced.
 *
 * An option struct opts in with a free function found by argument-dependent lookup:
 *
 *     template <class V> void describe(V& v, glm_knobs& o) {
 *       v.field("glm.tau", o.tau, "InfoNCE temperature τ_g", checks::positive(), "glm-tau");
 *       v.choice("glm.pool", o.pool, glm_pool_names, "pooling of the dense features", "pool");
 *     }
 *
 * `option_fields f(obj)` calls `describe(f, obj)` and keeps one type-erased `option_field` per
 * declared field, bound to `obj` (so `obj` must outlive `f`): its path (sections joined by '.'),
 * command-line flag (without dashes; empty = not on the command line), help, kind, the text of
 * its value (`get`, exact: reals as %.17g), a parser (`set`, strict: "-1" is not a count, "1e3x"
 * not a number) and its check (`problem`, "" when the value passes). Applications bind these to
 * CLI11 and nlohmann-json (examples/common/); the library uses them for `validate`, for the text
 * stored in checkpoints and to name the first field in which two configurations differ.
 *
 * Field kinds and their text: `boolean` true/false; `integer` (int) and `count` (unsigned,
 * 64-bit) in decimal; `real` as %.17g; `list` of counts joined by ','; `choice` one of the
 * names given for an enum.
 */
#include <array>
#include <charconv>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "zss/core/config.hpp"

namespace zss {

/// How a field's value reads as text (see the file comment).
enum class field_kind { boolean, integer, count, real, list, choice };

/// A check of one number: "" when it passes, else what is wrong ("must be > 0").
using number_check = std::function<std::string(double)>;

/// Readable number: integers without a fraction, others with up to 6 significant digits,
/// huge magnitudes in exponent form (never 309 digits).
inline std::string readable_number(double v) {
  char buf[64];
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15)
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else
    std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

/// Factories of the common checks.
namespace checks {
/// Finite (any sign).
inline number_check finite() {
  return [](double v) { return std::isfinite(v) ? std::string() : std::string("must be finite"); };
}
/// Finite and > 0.
inline number_check positive() {
  return [](double v) {
    return std::isfinite(v) && v > 0 ? std::string() : std::string("must be > 0");
  };
}
/// Finite and >= 0.
inline number_check non_negative() {
  return [](double v) {
    return std::isfinite(v) && v >= 0 ? std::string() : std::string("must be >= 0");
  };
}
/// >= lo.
inline number_check at_least(double lo) {
  return [lo](double v) {
    return v >= lo ? std::string() : std::string("must be >= ").append(readable_number(lo));
  };
}
/// In the interval with the given ends: `interval(0, 1, true, false)` is (0, 1].
inline number_check interval(double lo, double hi, bool lo_open, bool hi_open) {
  return [=](double v) {
    const bool ok = (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
    if (ok) return std::string();
    return std::string("must be in ") + (lo_open ? "(" : "[") + readable_number(lo) + ", " +
           readable_number(hi) + (hi_open ? ")" : "]");
  };
}
}  // namespace checks

/// The names of an enum's values, for `option_fields::choice`.
template <class E, std::size_t N>
using enum_names = std::array<std::pair<E, const char*>, N>;

/// Name of `e` in `names` ("?" when absent).
template <class E, std::size_t N>
const char* name_of(E e, const enum_names<E, N>& names) noexcept {
  for (const auto& [v, n] : names)
    if (v == e) return n;
  return "?";
}

/// One described field, bound to its object (see the file comment).
struct option_field {
  std::string path;  ///< "glm.tau"
  std::string flag;  ///< "glm-tau" (no dashes); empty = not a command-line option
  std::string help;  ///< one line
  field_kind kind = field_kind::real;
  std::vector<std::string> choices;  ///< `choice`: the accepted names
  std::string default_text;          ///< the value when described
  std::function<std::string()> get;  ///< the value as text
  /// Parses `text` into the field; throws `std::invalid_argument` ("glm.tau: 'x' is not a number").
  std::function<void(const std::string&)> set;
  /// "" when the value passes its check, else "must be > 0, got 0".
  std::function<std::string()> problem;
};

namespace detail {

[[noreturn]] inline void bad_text(const std::string& path, const std::string& text,
                                  const char* what) {
  throw std::invalid_argument(path + ": '" + text + "' is not " + what);
}

inline std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

inline double parse_real(const std::string& path, const std::string& text) {
  const std::string t = trim(text);
  double v = 0;
  std::size_t used = 0;
  try {
    v = std::stod(t, &used);
  } catch (...) {
    bad_text(path, text, "a number");
  }
  if (used != t.size() || t.empty()) bad_text(path, text, "a number");
  return v;
}

template <std::integral I>
I parse_integer(const std::string& path, const std::string& text) {
  const std::string t = trim(text);
  if constexpr (std::is_unsigned_v<I>) {
    if (!t.empty() && t[0] == '-') throw std::invalid_argument(path + ": must be >= 0, got " + t);
  }
  I v{};
  const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec == std::errc::result_out_of_range)
    throw std::invalid_argument(path + ": " + t + " is out of range [" +
                                std::to_string(std::numeric_limits<I>::min()) + ", " +
                                std::to_string(std::numeric_limits<I>::max()) + "]");
  if (ec != std::errc() || end != t.data() + t.size() || t.empty())
    bad_text(path, text, std::is_unsigned_v<I> ? "a whole number >= 0" : "a whole number");
  return v;
}

inline std::string real_text(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

}  // namespace detail

/**
 * The fields an object declares through `describe(v, obj)`, bound to it.
 * The object must outlive this list; copying the list keeps the binding.
 */
class option_fields {
 public:
  option_fields() = default;
  /// Describes `obj` (calls `describe(*this, obj)`, found by argument-dependent lookup).
  template <class Obj>
  explicit option_fields(Obj& obj) {
    describe(*this, obj);
  }

  /// Describes `obj` with every path behind `prefix` (e.g. "world.") and every flag behind
  /// `flag_prefix`.
  template <class Obj>
  void nested(const std::string& prefix, Obj& obj, const std::string& flag_prefix = "") {
    const auto saved = std::pair{prefix_, flag_prefix_};
    prefix_ += prefix, flag_prefix_ += flag_prefix;
    describe(*this, obj);
    std::tie(prefix_, flag_prefix_) = saved;
  }

  /// A boolean (command line: `--flag` / `--no-flag`).
  void field(const std::string& path, bool& ref, const std::string& help,
             const std::string& flag = "") {
    option_field f = make(path, help, flag, field_kind::boolean);
    f.get = [&ref] { return std::string(ref ? "true" : "false"); };
    f.set = [&ref, p = f.path](const std::string& text) {
      const std::string t = detail::trim(text);
      if (t == "true" || t == "1" || t == "on")
        ref = true;
      else if (t == "false" || t == "0" || t == "off")
        ref = false;
      else
        detail::bad_text(p, text, "true or false");
    };
    f.problem = [] { return std::string(); };
    add(std::move(f));
  }

  /// A real number, checked by `check` (none when empty).
  void field(const std::string& path, double& ref, const std::string& help, number_check check = {},
             const std::string& flag = "") {
    option_field f = make(path, help, flag, field_kind::real);
    f.get = [&ref] { return detail::real_text(ref); };
    f.set = [&ref, p = f.path](const std::string& text) { ref = detail::parse_real(p, text); };
    f.problem = [&ref, check] { return check_number(check, double(ref), detail::real_text(ref)); };
    add(std::move(f));
  }

  /// A signed or unsigned integer, checked by `check`. Unsigned fields refuse negative text.
  template <std::integral I>
  requires(!std::same_as<I, bool>) void field(const std::string& path, I& ref,
                                              const std::string& help, number_check check = {},
                                              const std::string& flag = "") {
    option_field f =
        make(path, help, flag, std::is_unsigned_v<I> ? field_kind::count : field_kind::integer);
    f.get = [&ref] { return std::to_string(ref); };
    f.set = [&ref, p = f.path](const std::string& text) {
      ref = detail::parse_integer<I>(p, text);
    };
    f.problem = [&ref, check] { return check_number(check, double(ref), std::to_string(ref)); };
    add(std::move(f));
  }

  /// A list of counts (text "2,4"), each checked by `check`; `non_empty` refuses an empty list.
  void field(const std::string& path, std::vector<index_t>& ref, const std::string& help,
             number_check check = {}, const std::string& flag = "", bool non_empty = true) {
    option_field f = make(path, help, flag, field_kind::list);
    f.get = [&ref] {
      std::string s;
      for (std::size_t i = 0; i < ref.size(); ++i) {
        if (i) s += ',';
        s += std::to_string(ref[i]);
      }
      return s;
    };
    f.set = [&ref, p = f.path](const std::string& text) {
      std::vector<index_t> out;
      std::string_view rest = text;
      while (!rest.empty()) {
        const auto comma = rest.find(',');
        const std::string item(rest.substr(0, comma));
        if (!detail::trim(item).empty()) out.push_back(detail::parse_integer<index_t>(p, item));
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
      ref = std::move(out);
    };
    f.problem = [&ref, check, non_empty] {
      if (non_empty && ref.empty()) return std::string("must not be empty");
      for (auto v : ref) {
        const auto p = check_number(check, double(v), std::to_string(v));
        if (!p.empty()) return std::string("every entry ").append(p);
      }
      return std::string();
    };
    add(std::move(f));
  }

  /// An enum, written as one of `names`.
  template <class E, std::size_t N>
  requires std::is_enum_v<E>
  void choice(const std::string& path, E& ref, const enum_names<E, N>& names,
              const std::string& help, const std::string& flag = "") {
    option_field f = make(path, help, flag, field_kind::choice);
    for (const auto& [v, n] : names) f.choices.push_back(n);
    f.get = [&ref, names] { return std::string(name_of(ref, names)); };
    f.set = [&ref, names, p = f.path](const std::string& text) {
      const std::string t = detail::trim(text);
      for (const auto& [v, n] : names)
        if (t == n) {
          ref = v;
          return;
        }
      std::string list;
      for (const auto& [v, n] : names) list += (list.empty() ? "" : ", ") + std::string(n);
      throw std::invalid_argument(p + ": '" + text + "' is not one of " + list);
    };
    f.problem = [] { return std::string(); };
    add(std::move(f));
  }

  const std::vector<option_field>& all() const noexcept { return fields_; }
  std::vector<option_field>& all() noexcept { return fields_; }
  std::size_t size() const noexcept { return fields_.size(); }

  /// The field at `path`, or nullptr.
  const option_field* find(std::string_view path) const noexcept {
    for (const auto& f : fields_)
      if (f.path == path) return &f;
    return nullptr;
  }
  option_field* find(std::string_view path) noexcept {
    for (auto& f : fields_)
      if (f.path == path) return &f;
    return nullptr;
  }

  /// Throws `std::invalid_argument("<where>: <path> must be …, got …")` for the first field whose
  /// check fails.
  void validate(const std::string& where) const {
    for (const auto& f : fields_) {
      const auto p = f.problem();
      if (!p.empty()) throw std::invalid_argument(where + ": " + f.path + " " + p);
    }
  }

  /// "path = value" lines in declaration order (what a checkpoint stores).
  std::string to_text() const {
    std::string s;
    for (const auto& f : fields_) s += f.path + " = " + f.get() + "\n";
    return s;
  }

 private:
  static std::string check_number(const number_check& check, double v, const std::string& text) {
    if (!check) return {};
    const auto p = check(v);
    return p.empty() ? p : p + ", got " + (std::fabs(v) < 1e15 ? text : readable_number(v));
  }

  option_field make(const std::string& path, const std::string& help, const std::string& flag,
                    field_kind kind) const {
    option_field f;
    f.path = prefix_ + path;
    f.flag = flag.empty() ? std::string() : flag_prefix_ + flag;
    f.help = help;
    f.kind = kind;
    return f;
  }

  void add(option_field f) {
    for (const auto& g : fields_) {
      if (g.path == f.path)
        throw std::invalid_argument("option_fields: duplicate path '" + f.path + "'");
      if (!f.flag.empty() && g.flag == f.flag)
        throw std::invalid_argument("option_fields: duplicate flag '" + f.flag + "' (" + g.path +
                                    ", " + f.path + ")");
    }
    f.default_text = f.get();
    fields_.push_back(std::move(f));
  }

  std::vector<option_field> fields_;
  std::string prefix_, flag_prefix_;
};

/// Parses "path = value" lines (`option_fields::to_text`) into (path, value) pairs in order.
/// @throws std::invalid_argument on a line without " = ".
inline std::vector<std::pair<std::string, std::string>> parse_option_text(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    if (!line.empty()) {
      const auto eq = line.find(" = ");
      if (eq == std::string_view::npos)
        throw std::invalid_argument("parse_option_text: line '" + std::string(line) +
                                    "' has no ' = '");
      out.emplace_back(std::string(line.substr(0, eq)), std::string(line.substr(eq + 3)));
    }
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return out;
}

/**
 * The first difference between stored "path = value" text and `current`: "" when they agree,
 * else e.g. "glm.tau is 0.10000000000000001 in the checkpoint, 0.070000000000000007 now".
 * A field present on one side only is a difference too.
 */
inline std::string first_difference(std::string_view stored, const option_fields& current) {
  const auto pairs = parse_option_text(stored);
  for (const auto& f : current.all()) {
    const std::string now = f.get();
    bool found = false;
    for (const auto& [p, v] : pairs)
      if (p == f.path) {
        found = true;
        if (v != now) return f.path + " is " + v + " in the checkpoint, " + now + " now";
        break;
      }
    if (!found) return f.path + " is missing from the checkpoint (now " + now + ")";
  }
  for (const auto& [p, v] : pairs)
    if (!current.find(p))
      return p + " = " + v + " is in the checkpoint but not an option of this build";
  return {};
}

}  // namespace zss
