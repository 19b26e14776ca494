#pragma once
// Shared pieces of the fuzz harnesses (docs/reliability.md).
//
// Each harness feeds bytes through one reader's public API and catches only microcount::error: any other
// exception, a crash, a sanitizer report or a leak is a finding. The same harness source builds two ways:
//   - a libFuzzer target (clang, -fsanitize=fuzzer,address,undefined): MICROCOUNT_FUZZ_TARGET expands to
//     LLVMFuzzerTestOneInput;
//   - with MICROCOUNT_FUZZ_REPLAY (any compiler): a named entry of one replay program that runs the saved
//     inputs under fuzz/regressions/<reader>/ as an ordinary ctest test.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include <unistd.h>

#include "microcount/core/error.hpp"
#include "microcount/core/limits.hpp"

namespace microcount::fuzz {

using target_fn = int (*)(const std::uint8_t*, std::size_t);

inline std::map<std::string, target_fn>& targets() {
  static std::map<std::string, target_fn> t;
  return t;
}
inline bool register_target(const char* reader, target_fn f) {
  targets()[reader] = f;
  return true;
}

// Smaller limits than the defaults, so an input that asks for the most a header may ask for stays inside
// libFuzzer's 2 GiB memory limit: what is tested is that the limits are consulted, not their value.
inline void use_fuzzing_limits() {
  input_limits& l = limits();
  l.max_image_side = 1u << 14;
  l.max_pages = 1u << 12;
  l.max_total_bytes = std::uint64_t{64} << 20;
  l.max_points = std::uint64_t{1} << 20;
}

// The bytes as a string (for the in-memory parsers).
inline std::string as_text(const std::uint8_t* data, std::size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

// Writes the bytes to a per-process temporary file (for readers that take a path) and returns its path.
inline std::filesystem::path as_file(const std::uint8_t* data, std::size_t size, std::string_view suffix) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("microcount-fuzz-" + std::to_string(::getpid()) + std::string(suffix));
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();  // the harness' own failure, not the reader's
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return path;
}

// Runs `read`; a microcount::error is the expected way to reject bad bytes, everything else propagates.
template <class F>
int guarded(F&& read) {
  use_fuzzing_limits();
  try {
    read();
  } catch (const microcount::error&) {
  }
  return 0;
}

}  // namespace microcount::fuzz

#ifdef MICROCOUNT_FUZZ_REPLAY
#define MICROCOUNT_FUZZ_TARGET(reader)                                                                        \
  static int fuzz_one_##reader(const std::uint8_t* data, std::size_t size);                                  \
  [[maybe_unused]] static const bool fuzz_registered_##reader =                                              \
      microcount::fuzz::register_target(#reader, fuzz_one_##reader);                                        \
  static int fuzz_one_##reader(const std::uint8_t* data, std::size_t size)
#else
#define MICROCOUNT_FUZZ_TARGET(reader) extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
#endif
