// Checkpoints whose tensor table lies (docs/reliability.md, found by fuzz/fuzz_checkpoint): every one is a
// microcount::error naming the file, never a crash, an out-of-bounds write or a huge allocation. The CRC
// is recomputed after each edit, as a deliberate forger (or a bug in another writer) would.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>

#include "microcount/backends/reference.hpp"
#include "microcount/io/checkpoint.hpp"
#include "test_support.hpp"

using namespace microcount;
using B = backend::reference;

namespace {

struct small_state {
  tensor<float, B> weight{2, 3}, moment{2, 3};
  std::int64_t step = 5;
  io::checkpoint_state<B> state;
  small_state() {
    for (index_t i = 0; i < weight.size(); ++i) weight[i] = static_cast<float>(i) + 0.5f;
    for (index_t i = 0; i < moment.size(); ++i) moment[i] = -static_cast<float>(i);
    state.entries = {{"parameter", "w", &weight}, {"optimizer", "m.w", &moment}};
    state.counters = {{"step", &step}};
  }
};

// The file `path` with its JSON header replaced by edit(header) and a correct CRC.
template <class Edit>
std::filesystem::path forged(const std::filesystem::path& path, const std::string& name, Edit&& edit) {
  const io::checkpoint_file original(path);
  nlohmann::json header = original.header;
  edit(header);
  const std::string text = header.dump();
  std::string bytes(io::checkpoint_magic, 8);
  io::detail::append_pod(bytes, io::checkpoint_version);
  io::detail::append_pod(bytes, static_cast<std::uint64_t>(text.size()));
  bytes += text;
  bytes.resize((bytes.size() + 63) / 64 * 64, '\0');
  bytes += original.bytes.substr(original.payload_start, original.bytes.size() - 4 - original.payload_start);
  io::detail::append_pod(bytes, io::detail::crc32_update(0, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()));
  const auto out = path.parent_path() / name;
  io::write_text_atomically(out, bytes);
  return out;
}

}  // namespace

TEST_CASE("checkpoint: a lying tensor table is a clear error, not a crash or a huge allocation") {
  const auto dir = test::scratch("checkpoint_reliability");
  small_state saved;
  io::checkpoint_header head;
  head.architecture = "small";
  head.has_optimizer = true;
  const auto file = dir / "good.mcm";
  io::save_checkpoint(file, saved.state, head);
  {
    small_state loaded;
    io::checkpoint_file(file).load_into(loaded.state, "small");
    CHECK(loaded.weight[5] == 5.5f);
    CHECK(loaded.moment[5] == -5.0f);
    CHECK(loaded.step == 5);
  }
  const auto table_entry = [](nlohmann::json& h, const char* name) -> nlohmann::json& {
    for (auto& t : h["tensors"])
      if (t["name"] == name) return t;
    FAIL("no entry " << name);
    return h;
  };
  const auto rejects = [&](const std::filesystem::path& f, const char* problem) {
    small_state loaded;
    test::throws_naming([&] { (void)io::checkpoint_file(f).load_into(loaded.state, "small"); },
                  {f.filename().string().c_str(), problem});
  };

  // fuzz/regressions/checkpoint/crash-85442c03…: an entry without "name" threw nlohmann's out_of_range.
  rejects(forged(file, "no_name.mcm", [](nlohmann::json& h) { h["tensors"][0].erase("name"); }), "malformed");
  rejects(forged(file, "shape_text.mcm", [&](nlohmann::json& h) { table_entry(h, "w")["shape"] = "2x3"; }), "malformed");
  rejects(forged(file, "counter_text.mcm", [](nlohmann::json& h) { h["counters"]["step"] = "five"; }), "malformed");
  // Seven dimensions overflowed shape's five-element array before the shapes were compared.
  rejects(forged(file, "rank7.mcm", [&](nlohmann::json& h) { table_entry(h, "m.w")["shape"] = {1, 1, 1, 1, 1, 2, 3}; }),
          "7 dimensions");
  rejects(forged(file, "negative.mcm", [&](nlohmann::json& h) { table_entry(h, "m.w")["shape"] = {-2, -3}; }),
          "negative dimension");
  // An optimizer entry is resized to the saved shape: 2^40 floats were allocated before the payload was checked.
  rejects(forged(file, "huge.mcm", [&](nlohmann::json& h) { table_entry(h, "m.w")["shape"] = {1 << 20, 1 << 20}; }),
          "lies outside the file");
  // An offset near 2^64 wrapped `payload_start + offset` around: the bounds check passed and the copy read
  // from before the payload (or, for other offsets, far outside the buffer).
  rejects(forged(file, "offset_wraps.mcm",
                 [&](nlohmann::json& h) { table_entry(h, "w")["offset"] = std::numeric_limits<std::uint64_t>::max() - 8; }),
          "lies outside the file");
  rejects(forged(file, "offset_past_end.mcm", [&](nlohmann::json& h) { table_entry(h, "w")["offset"] = 4096; }),
          "lies outside the file");
}
