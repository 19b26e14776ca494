#pragma once
// Shared test helpers: where the real data is, a scratch folder per test, brute-force oracles.
#include <filesystem>
#include <string>

#include <doctest/doctest.h>

namespace microcount::test {

// ../shared/data (MICROCOUNT_DATA_DIR); tests that need it skip with a message when it is absent.
inline std::filesystem::path data_dir() { return std::filesystem::path(MICROCOUNT_DATA_DIR); }
inline bool have_data() { return std::filesystem::exists(data_dir() / "README.md"); }

// A fresh, empty scratch folder named after `name` under the build tree.
inline std::filesystem::path scratch(const std::string& name) {
  auto p = std::filesystem::path(MICROCOUNT_TEST_TMP) / name;
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}

}  // namespace microcount::test

// Skip the rest of a test case when the real data set is missing, saying so.
#define MICROCOUNT_REQUIRE_DATA()                                                          \
  do {                                                                                      \
    if (!::microcount::test::have_data()) {                                                 \
      MESSAGE("skipped: real data not found at " << ::microcount::test::data_dir().string()); \
      return;                                                                               \
    }                                                                                       \
  } while (0)
