#pragma once
// Versioned, portable checkpoint files (.mcm).
//
//   bytes 0..7    magic "MCOUNT\r\n"
//   bytes 8..11   format version (uint32, little endian)
//   bytes 12..19  header length H (uint64)
//   H bytes       header: JSON — architecture name, signature, tensor table (section, name, shape,
//                 byte offset), training position, free metadata (hyperparameters…)
//   payload       float32 little-endian tensors, each 64-byte aligned
//   last 4 bytes  CRC-32 of everything before
// The architecture signature lists every saved tensor's name and shape, so loading a checkpoint into a
// model of another architecture fails with the first difference named. Files are written atomically.
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "microcount/core/error.hpp"
#include "microcount/core/rng.hpp"
#include "microcount/core/tensor.hpp"
#include "microcount/io/atomic_file.hpp"

namespace microcount::io {

static_assert(std::endian::native == std::endian::little, "microcount: checkpoints assume a little-endian host");

inline constexpr std::uint32_t checkpoint_version = 1;
inline constexpr char checkpoint_magic[8] = {'M', 'C', 'O', 'U', 'N', 'T', '\r', '\n'};

// Where training stands; enough to resume and reproduce an uninterrupted run.
struct training_position {
  std::int64_t epoch = 0;          // epochs completed
  std::int64_t step = 0;           // optimizer steps taken
  double best_metric = std::numeric_limits<double>::infinity();
  std::int64_t best_epoch = -1;
  rng::state_type rng_state{};     // the trainer's generator
  nlohmann::json extra = nlohmann::json::object();  // scheduler state, history…
};

namespace detail {

inline std::uint32_t crc32_update(std::uint32_t crc, const unsigned char* p, std::size_t n) {
  static const auto table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (std::size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

inline nlohmann::json rng_to_json(const rng::state_type& s) {
  return {{"s", {s.s[0], s.s[1], s.s[2], s.s[3]}}, {"spare", s.spare}, {"has_spare", s.has_spare}};
}
inline rng::state_type rng_from_json(const nlohmann::json& j) {
  rng::state_type s{};
  for (int i = 0; i < 4; ++i) s.s[i] = j.at("s").at(i).get<std::uint64_t>();
  s.spare = j.at("spare").get<double>();
  s.has_spare = j.at("has_spare").get<bool>();
  return s;
}

template <class T>
void append_pod(std::string& out, const T& v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

}  // namespace detail

// A named tensor of a checkpoint section: "parameter", "buffer" or "optimizer".
template <class B>
struct checkpoint_entry {
  std::string section;
  std::string name;
  tensor<float, B>* value;
};

// Collects what a model (and optionally an optimizer) holds, in a fixed order.
template <class B>
struct checkpoint_state {
  std::vector<checkpoint_entry<B>> entries;
  std::vector<std::pair<std::string, std::int64_t*>> counters;  // optimizer step counts and the like
  std::vector<std::pair<std::string, double*>> reals;           // schedule state (learning rate, best…)

  template <class Model>
  void add_model(Model& m) {
    m.for_each_parameter([&](const auto& p) { entries.push_back({"parameter", p.name, p.value}); });
    m.for_each_buffer([&](std::string_view name, tensor<float, B>& t) { entries.push_back({"buffer", std::string(name), &t}); });
  }
  // Optimizers and schedules visit (name, tensor&) for moments, (name, std::int64_t&) for counters and
  // (name, double&) for real-valued state. `prefix` keeps several of them apart ("opt.", "sched.").
  template <class Stateful>
  void add_optimizer(Stateful& o, const std::string& prefix = "") {
    o.for_each_state([&](std::string_view name, auto& v) {
      using V = std::remove_cvref_t<decltype(v)>;
      if constexpr (std::is_same_v<V, std::int64_t>)
        counters.emplace_back(prefix + std::string(name), &v);
      else if constexpr (std::is_same_v<V, double>)
        reals.emplace_back(prefix + std::string(name), &v);
      else
        entries.push_back({"optimizer", prefix + std::string(name), &v});
    });
  }

  [[nodiscard]] nlohmann::json signature(std::string_view section) const {
    nlohmann::json sig = nlohmann::json::array();
    for (const auto& e : entries)
      if (e.section == section) {
        std::vector<index_t> dims(e.value->shape().dims.begin(), e.value->shape().dims.begin() + e.value->rank());
        sig.push_back({{"name", e.name}, {"shape", dims}});
      }
    return sig;
  }
};

struct checkpoint_header {
  std::string architecture;          // e.g. "unet2d<batch,transposed,3>"
  nlohmann::json metadata;           // hyperparameters and anything else the caller keeps
  training_position position;
  bool has_optimizer = false;
};

template <class B>
nlohmann::json counters_json(const checkpoint_state<B>& state) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, v] : state.counters) j[name] = *v;
  for (const auto& [name, v] : state.reals) j[name] = *v;
  return j;
}

// Writes `state` under `path` atomically.
template <class B>
void save_checkpoint(const std::filesystem::path& path, const checkpoint_state<B>& state, const checkpoint_header& head) {
  nlohmann::json table = nlohmann::json::array();
  std::uint64_t offset = 0;
  for (const auto& e : state.entries) {
    std::vector<index_t> dims(e.value->shape().dims.begin(), e.value->shape().dims.begin() + e.value->rank());
    table.push_back({{"section", e.section}, {"name", e.name}, {"shape", dims}, {"offset", offset}});
    offset += (static_cast<std::uint64_t>(e.value->size()) * 4 + 63) / 64 * 64;
  }
  nlohmann::json header = {
      {"architecture", head.architecture},
      {"signature", state.signature("parameter")},
      {"buffers", state.signature("buffer")},
      {"has_optimizer", head.has_optimizer},
      {"tensors", table},
      {"counters", counters_json(state)},
      {"position",
       {{"epoch", head.position.epoch}, {"step", head.position.step},
        {"best_metric", std::isfinite(head.position.best_metric) ? nlohmann::json(head.position.best_metric) : nlohmann::json()},
        {"best_epoch", head.position.best_epoch}, {"rng", detail::rng_to_json(head.position.rng_state)},
        {"extra", head.position.extra}}},
      {"metadata", head.metadata.is_null() ? nlohmann::json::object() : head.metadata}};
  const std::string header_text = header.dump();

  std::string bytes(checkpoint_magic, 8);
  detail::append_pod(bytes, checkpoint_version);
  detail::append_pod(bytes, static_cast<std::uint64_t>(header_text.size()));
  bytes += header_text;
  const std::size_t payload_start = (bytes.size() + 63) / 64 * 64;
  bytes.resize(payload_start + offset, '\0');
  for (std::size_t i = 0; i < state.entries.size(); ++i) {
    const auto& t = *state.entries[i].value;
    t.download(reinterpret_cast<float*>(bytes.data() + payload_start + table[i]["offset"].get<std::uint64_t>()));
  }
  const std::uint32_t crc = detail::crc32_update(0, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  detail::append_pod(bytes, crc);
  write_text_atomically(path, bytes);
}

// Reads only the header of a checkpoint (architecture, metadata, position) after verifying the file.
struct checkpoint_file {
  std::filesystem::path path;
  std::string bytes;
  nlohmann::json header;
  std::size_t payload_start = 0;

  explicit checkpoint_file(const std::filesystem::path& p) : path(p), bytes(read_text(p)) {
    const std::string where = p.string();
    require(bytes.size() >= 24 && std::memcmp(bytes.data(), checkpoint_magic, 8) == 0, where,
            "not a microcount checkpoint (bad magic)");
    std::uint32_t version = 0;
    std::memcpy(&version, bytes.data() + 8, 4);
    require(version == checkpoint_version, where,
            "checkpoint format version " + std::to_string(version) + " (this build reads version " +
                std::to_string(checkpoint_version) + ")");
    std::uint32_t stored_crc = 0;
    std::memcpy(&stored_crc, bytes.data() + bytes.size() - 4, 4);
    const std::uint32_t crc = detail::crc32_update(0, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size() - 4);
    require(crc == stored_crc, where, "checkpoint is corrupt or truncated (checksum mismatch)");
    std::uint64_t header_len = 0;
    std::memcpy(&header_len, bytes.data() + 12, 8);
    require(header_len <= bytes.size() - 24, where, "checkpoint header length is out of range");
    try {
      header = nlohmann::json::parse(bytes.substr(20, header_len));
    } catch (const nlohmann::json::exception& e) {
      throw error(where, std::string("checkpoint header is not valid JSON: ") + e.what());
    }
    payload_start = (20 + header_len + 63) / 64 * 64;
  }

  [[nodiscard]] checkpoint_header read_header() const {
    checkpoint_header h;
    try {
      h.architecture = header.at("architecture").get<std::string>();
      h.metadata = header.at("metadata");
      h.has_optimizer = header.at("has_optimizer").get<bool>();
      const auto& pos = header.at("position");
      h.position.epoch = pos.at("epoch").get<std::int64_t>();
      h.position.step = pos.at("step").get<std::int64_t>();
      h.position.best_metric = pos.at("best_metric").is_null() ? std::numeric_limits<double>::infinity()
                                                                : pos.at("best_metric").get<double>();
      h.position.best_epoch = pos.at("best_epoch").get<std::int64_t>();
      h.position.rng_state = detail::rng_from_json(pos.at("rng"));
      h.position.extra = pos.at("extra");
    } catch (const nlohmann::json::exception& e) {
      throw error(path.string(), std::string("checkpoint header is incomplete: ") + e.what());
    }
    return h;
  }

  // Copies the saved tensors into `state`, after checking that the architecture matches: the same
  // architecture name and the same tensor names and shapes. Optimizer entries are loaded when present
  // in both. Returns the header.
  template <class B>
  checkpoint_header load_into(checkpoint_state<B>& state, std::string_view architecture) const {
    const std::string where = path.string();
    checkpoint_header h = read_header();
    require(h.architecture == architecture, where,
            "checkpoint is of architecture '" + h.architecture + "', the model is '" + std::string(architecture) + "'");
    // The signature and table are JSON from the file: a missing key or a wrong type is a corrupt
    // checkpoint, not a crash.
    try {
      for (const char* section : {"parameter", "buffer"}) {
        const nlohmann::json expected = state.signature(section);
        const nlohmann::json& saved = header.at(std::string(section) == "parameter" ? "signature" : "buffers");
        if (expected == saved) continue;
        std::string diff = std::string(section) + " count " + std::to_string(saved.size()) + " saved vs " +
                           std::to_string(expected.size()) + " in the model";
        for (std::size_t i = 0; i < std::min(saved.size(), expected.size()); ++i)
          if (saved[i] != expected[i]) {
            diff = "tensor " + std::to_string(i) + " is " + saved[i].dump() + " in the checkpoint but " + expected[i].dump() +
                   " in the model";
            break;
          }
        throw error(where, "checkpoint does not fit this model (" + diff + ")");
      }
      const auto& table = header.at("tensors");
      for (auto& e : state.entries) {
        const nlohmann::json* found = nullptr;
        for (const auto& t : table)
          if (t.at("section") == e.section && t.at("name") == e.name) {
            found = &t;
            break;
          }
        if (!found) {
          require(e.section == "optimizer", where, "checkpoint lacks " + e.section + " '" + e.name + "'");
          continue;  // an optimizer without saved state starts fresh
        }
        const std::vector<index_t> dims = found->at("shape").get<std::vector<index_t>>();
        // Checked before the shape is built or an optimizer tensor resized: rank, signs, and that the
        // tensor fits in the payload (so a lying table can neither overflow `shape` nor ask for a huge allocation).
        const std::uint64_t payload = bytes.size() - 4 > payload_start ? bytes.size() - 4 - payload_start : 0;
        require(dims.size() <= static_cast<std::size_t>(shape::max_rank), where,
                "tensor '" + e.name + "' has " + std::to_string(dims.size()) + " dimensions in the checkpoint");
        std::uint64_t count = 1;
        for (index_t d : dims) {
          require(d >= 0, where, "tensor '" + e.name + "' has a negative dimension in the checkpoint");
          const auto ud = static_cast<std::uint64_t>(d);
          count = ud == 0 || count <= payload / 4 / ud ? count * ud : payload / 4 + 1;  // saturates, no overflow
        }
        require(count <= payload / 4, where, "tensor '" + e.name + "' lies outside the file");
        shape s;
        for (index_t d : dims) s[s.rank++] = d;
        if (e.section == "optimizer" && !(s == e.value->shape())) e.value->resize(s);
        require(s == e.value->shape(), where, e.name + " has shape " + s.str() + " in the checkpoint, " +
                                                  e.value->shape().str() + " in the model");
        const std::uint64_t offset = found->at("offset").get<std::uint64_t>();  // from the file: may be anything
        const std::uint64_t n = count * 4;
        require(offset <= payload && n <= payload - offset, where, "tensor '" + e.name + "' lies outside the file");
        const std::uint64_t off = payload_start + offset;
        e.value->upload(reinterpret_cast<const float*>(bytes.data() + off));  // device backends: a copy to the device
      }
      const auto counters = header.value("counters", nlohmann::json::object());
      for (auto& [name, v] : state.counters)
        if (counters.contains(name)) *v = counters.at(name).template get<std::int64_t>();
      for (auto& [name, v] : state.reals)
        if (counters.contains(name) && counters.at(name).is_number()) *v = counters.at(name).template get<double>();
    } catch (const nlohmann::json::exception& e) {
      throw error(where, std::string("checkpoint tensor table is malformed: ") + e.what());
    }
    return h;
  }
};

}  // namespace microcount::io
