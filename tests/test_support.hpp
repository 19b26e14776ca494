#pragma once
// Shared test helpers: where the real data is, a scratch folder per test, brute-force oracles.
#include <filesystem>
#include <initializer_list>
#include <string>

#include <doctest/doctest.h>

#include "microcount/core/error.hpp"

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

// Runs `read`, which must throw microcount::error whose message holds every needle (the file, the problem).
template <class F>
void throws_naming(F&& read, std::initializer_list<const char*> needles) {
  try {
    read();
    FAIL("no error thrown");
  } catch (const microcount::error& e) {
    for (const char* n : needles) CHECK_MESSAGE(std::string(e.what()).find(n) != std::string::npos, e.what());
  }
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
