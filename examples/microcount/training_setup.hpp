#pragma once
// What train, tune and evaluate share: hyperparameters from --config / --set / options, and the
// train / validation / test split of a data folder.
#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "command.hpp"
#include "microcount/core/error.hpp"
#include "microcount/data/dataset.hpp"
#include "microcount/data/split.hpp"
#include "microcount/io/atomic_file.hpp"
#include "microcount/train/hyperparameters.hpp"

namespace microcount::cli {

// "1-32", "1-32,40,45-50": 1-based positions in name order -> 0-based indices (sorted, unique).
inline std::vector<std::size_t> parse_positions(const std::string& text, std::size_t n, const std::string& option) {
  std::vector<std::size_t> out;
  std::size_t at = 0;
  const auto fail = [&](const std::string& why) { throw error("microcount", "--" + option + " '" + text + "': " + why); };
  while (at <= text.size()) {
    const std::size_t comma = std::min(text.find(',', at), text.size());
    const std::string part = text.substr(at, comma - at);
    const std::size_t dash = part.find('-');
    std::size_t lo = 0, hi = 0;
    try {
      std::size_t used = 0;
      if (dash == std::string::npos) {
        lo = hi = std::stoul(part, &used);
        if (used != part.size()) fail("not a number: " + part);
      } else {
        lo = std::stoul(part.substr(0, dash), &used);
        if (used != dash) fail("not a range: " + part);
        hi = std::stoul(part.substr(dash + 1), &used);
        if (used != part.size() - dash - 1) fail("not a range: " + part);
      }
    } catch (const std::logic_error&) {
      fail("not a list of positions like 1-32,40");
    }
    if (lo < 1 || hi < lo) fail("positions start at 1 and ranges go up: " + part);
    if (hi > n) fail("position " + std::to_string(hi) + " but the data set has " + std::to_string(n) + " images");
    for (std::size_t i = lo; i <= hi; ++i) out.push_back(i - 1);
    at = comma + 1;
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// Hyperparameters: defaults, then --config FILE, then --set k=v,k=v, then the named options.
inline train::hyperparameters hyperparameters_from(const arguments& a, train::hyperparameters hp = {}) {
  if (a.has("config")) {
    const std::string file = a.get("config");
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(io::read_text(file));
    } catch (const nlohmann::json::exception& e) {
      throw error(file, std::string("not valid JSON: ") + e.what());
    }
    if (j.contains("hyperparameters") && j.at("hyperparameters").is_object()) j = j.at("hyperparameters");
    hp = train::from_json(j, hp, file);
  }
  nlohmann::json overrides = nlohmann::json::object();
  if (a.has("set")) {
    const std::string text = a.get("set");
    std::size_t at = 0;
    while (at < text.size()) {
      const std::size_t comma = std::min(text.find(',', at), text.size());
      const std::string kv = text.substr(at, comma - at);
      const std::size_t eq = kv.find('=');
      if (eq == std::string::npos) throw error("microcount", "--set expects key=value[,key=value…], got '" + kv + "'");
      const std::string key = kv.substr(0, eq), value = kv.substr(eq + 1);
      try {
        overrides[key] = nlohmann::json::parse(value);
      } catch (const nlohmann::json::exception&) {
        overrides[key] = value;  // a bare word is a string
      }
      at = comma + 1;
    }
  }
  for (const char* key : {"epochs", "seed", "threads", "batch", "patch"})
    if (a.has(key)) overrides[key] = a.integer(key, 0);
  if (a.has("head")) overrides["head"] = a.get("head");
  if (a.has("lr")) overrides["lr"] = a.number("lr", 0);
  return train::from_json(overrides, hp, "options");
}

// --train / --val / --test positions, or a seeded 60/20/20 split; validation carved from --train
// (hp.val_fraction, seeded) when --val is not given.
inline data::split_indices split_from(const arguments& a, const data::dataset& ds, const train::hyperparameters& hp) {
  const std::size_t n = ds.size();
  if (!a.has("train")) {
    require(!a.has("val") && !a.has("test"), "microcount", "--val and --test need --train too");
    return data::split(ds, {0.6, 0.2, 0.2}, hp.seed);
  }
  data::split_indices s;
  s.train = parse_positions(a.get("train"), n, "train");
  if (a.has("test")) s.test = parse_positions(a.get("test"), n, "test");
  if (a.has("val")) {
    s.validation = parse_positions(a.get("val"), n, "val");
  } else if (hp.val_fraction > 0 && s.train.size() >= 2) {
    const auto inner = data::split(s.train.size(), {1 - hp.val_fraction, hp.val_fraction, 0}, hp.seed);
    std::vector<std::size_t> tr, va;
    for (auto i : inner.train) tr.push_back(s.train[i]);
    for (auto i : inner.validation) va.push_back(s.train[i]);
    for (auto i : inner.test) tr.push_back(s.train[i]);
    std::sort(tr.begin(), tr.end());
    s.train = tr;
    s.validation = va;
  }
  for (auto i : s.test)
    require(std::find(s.train.begin(), s.train.end(), i) == s.train.end() &&
                std::find(s.validation.begin(), s.validation.end(), i) == s.validation.end(),
            "microcount", "image " + ds.name(i) + " is both in the test set and in training or validation");
  return s;
}

}  // namespace microcount::cli
