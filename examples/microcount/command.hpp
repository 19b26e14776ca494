#pragma once
// The sub-command registry and the small argument parser the `microcount` program shares.
// Each cmd_<name>.cpp defines `static const register_command reg{{"name", "summary", usage, run}};`.
#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "microcount/core/error.hpp"

namespace microcount::cli {

struct command {
  std::string name;
  std::string summary;  // one line for `microcount --help`
  std::string usage;    // full usage text for `microcount NAME --help`
  int (*run)(const std::vector<std::string>& args);  // args after the sub-command name
};

inline std::vector<command>& commands() {
  static std::vector<command> all;
  return all;
}

struct register_command {
  explicit register_command(command c) { commands().push_back(std::move(c)); }
};

// Parsed arguments: `--key value` options, `--flag` switches and positional words.
// `flags` lists the options that take no value.
struct arguments {
  std::vector<std::string> positional;
  std::map<std::string, std::string> options;

  arguments(const std::vector<std::string>& args, const std::vector<std::string>& flags = {}) {
    for (std::size_t i = 0; i < args.size(); ++i) {
      const std::string& a = args[i];
      if (a.size() > 2 && a.rfind("--", 0) == 0) {
        std::string key = a.substr(2), value;
        if (auto eq = key.find('='); eq != std::string::npos) {
          value = key.substr(eq + 1);
          key = key.substr(0, eq);
        } else if (std::find(flags.begin(), flags.end(), key) != flags.end()) {
          value = "1";
        } else {
          if (i + 1 >= args.size()) throw error("microcount", "option --" + key + " needs a value");
          value = args[++i];
        }
        options[key] = value;
      } else {
        positional.push_back(a);
      }
    }
  }

  [[nodiscard]] bool has(const std::string& key) const { return options.count(key) != 0; }
  [[nodiscard]] std::string get(const std::string& key, const std::string& fallback = "") const {
    auto it = options.find(key);
    return it == options.end() ? fallback : it->second;
  }
  [[nodiscard]] double number(const std::string& key, double fallback) const {
    auto it = options.find(key);
    if (it == options.end()) return fallback;
    try {
      std::size_t used = 0;
      double v = std::stod(it->second, &used);
      if (used != it->second.size()) throw std::invalid_argument("trailing");
      return v;
    } catch (const std::exception&) {
      throw error("microcount", "option --" + key + " expects a number, got '" + it->second + "'");
    }
  }
  [[nodiscard]] long long integer(const std::string& key, long long fallback) const {
    const double v = number(key, static_cast<double>(fallback));
    if (v != static_cast<double>(static_cast<long long>(v)))
      throw error("microcount", "option --" + key + " expects a whole number");
    return static_cast<long long>(v);
  }
  // Rejects options the command does not know, naming them.
  void allow_only(const std::vector<std::string>& known) const {
    for (const auto& [k, v] : options)
      if (std::find(known.begin(), known.end(), k) == known.end())
        throw error("microcount", "unknown option --" + k);
  }
};

}  // namespace microcount::cli
