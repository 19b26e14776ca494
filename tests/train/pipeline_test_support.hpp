#pragma once
// Shared setup of the pipeline tests (tests/train, and tests/cuda, which nvcc compiles too: host code only):
// the small density U-Net they train and the synthetic data sets they train it on.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <type_traits>

#include "microcount/data/synth.hpp"
#include "microcount/train/hyperparameters.hpp"
#include "test_support.hpp"

namespace microcount::test {

// Name → folder of the synthetic data sets this test run has written (synthetic_folder).
inline std::map<std::string, std::filesystem::path>& written_synthetic_folders() {
  static std::map<std::string, std::filesystem::path> written;
  return written;
}

// A density U-Net that trains in seconds: width 4, depth 2, 32² patches, 4 per batch, 2 per image, lr 3e-3.
inline train::hyperparameters small_unet_hyperparameters(std::int64_t epochs, std::uint64_t seed) {
  return {.base_width = 4, .depth = 2, .patch = 32, .batch = 4, .patches_per_image = 2,
          .lr = 3e-3, .epochs = epochs, .seed = seed};
}

// The synthetic data set of the default synth_options as choose(options) changes them, written to
// scratch(name) on the first call and reused by every later call with that name (one name, one data set):
// the suites train on it in several test cases.
template <class Choose>
const std::filesystem::path& synthetic_folder(const std::string& name, Choose&& choose) {
  static_assert(std::is_invocable_v<Choose&, data::synth_options&>, "choose(options) sets the data set's options");
  auto& written = written_synthetic_folders();
  auto it = written.find(name);
  if (it == written.end()) {
    data::synth_options options;
    choose(options);
    const auto dir = scratch(name);
    data::write_synthetic_dataset(dir, options);
    it = written.emplace(name, dir).first;
  }
  return it->second;
}

}  // namespace microcount::test
