// SPDX-License-Identifier: Apache-2.0
#pragma once
// The examples' bindings of described option fields (zss/core/option_fields.hpp) to CLI11 and
// nlohmann-json: one command-line option per field with a flag, one JSON value per field.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "zss/core/option_fields.hpp"

namespace zss::examples {

/// Adds `--flag` for every field of `fields` that has one (booleans: `--flag` / `--no-flag`).
/// Values are parsed and checked by the field itself: "--steps: must be >= 1, got 0".
inline void add_options(CLI::App& app, option_fields& fields,
                        const std::string& group = "Options") {
  for (auto& f : fields.all()) {
    if (f.flag.empty()) continue;
    const std::string name = "--" + f.flag;
    auto apply = [&f, name](const std::string& text) {
      try {
        f.set(text);
      } catch (const std::invalid_argument& e) {
        const std::string msg = e.what();
        throw CLI::ValidationError(
            name, msg.substr(msg.find(": ") == std::string::npos ? 0 : msg.find(": ") + 2));
      }
      const auto p = f.problem();
      if (!p.empty()) throw CLI::ValidationError(name, p);
    };
    CLI::Option* opt = nullptr;
    switch (f.kind) {
      case field_kind::boolean:
        opt = app.add_flag_function(
            name + ",!--no-" + f.flag,
            [apply](std::int64_t count) { apply(count > 0 ? "true" : "false"); }, f.help);
        break;
      case field_kind::list:
        opt = app.add_option_function<std::vector<std::string>>(
                     name,
                     [apply](const std::vector<std::string>& items) {
                       std::string joined;
                       for (const auto& s : items) joined += (joined.empty() ? "" : ",") + s;
                       apply(joined);
                     },
                     f.help)
                  ->delimiter(',')
                  ->expected(1, 64);
        break;
      default:
        opt = app.add_option_function<std::string>(name, apply, f.help);
        if (f.kind == field_kind::choice) opt->check(CLI::IsMember(f.choices));
        break;
    }
    opt->default_str(f.default_text)->group(group);
  }
}

/// True when any field's flag (or its `--no-` form) was given on the command line.
inline bool given(const CLI::App& app, const option_field& f) {
  if (f.flag.empty()) return false;
  return app.count("--" + f.flag) > 0 ||
         (f.kind == field_kind::boolean && app.count("--no-" + f.flag) > 0);
}

/// The field's value as JSON (numbers as numbers, lists as arrays).
inline nlohmann::json json_value(const option_field& f) {
  const std::string t = f.get();
  switch (f.kind) {
    case field_kind::boolean:
      return t == "true";
    case field_kind::integer:
      return std::stoll(t);
    case field_kind::count:
      return std::stoull(t);
    case field_kind::real:
      return std::stod(t);
    case field_kind::list: {
      nlohmann::json a = nlohmann::json::array();
      std::size_t pos = 0;
      while (pos < t.size()) {
        const auto comma = t.find(',', pos);
        a.push_back(std::stoull(t.substr(pos, comma - pos)));
        if (comma == std::string::npos) break;
        pos = comma + 1;
      }
      return a;
    }
    case field_kind::choice:
      return t;
  }
  return t;
}

/// All fields as one JSON object, nested by the paths' sections ("glm.tau" → {"glm": {"tau": …}}).
inline nlohmann::json to_json(const option_fields& fields) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& f : fields.all()) {
    nlohmann::json* node = &j;
    std::size_t start = 0;
    for (auto dot = f.path.find('.'); dot != std::string::npos; dot = f.path.find('.', start)) {
      node = &(*node)[f.path.substr(start, dot - start)];
      start = dot + 1;
    }
    (*node)[f.path.substr(start)] = json_value(f);
  }
  return j;
}

}  // namespace zss::examples
