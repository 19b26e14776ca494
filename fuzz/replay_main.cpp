// Replays saved fuzz inputs through the harnesses as an ordinary test (built with any compiler):
//   fuzz_replay <regressions folder>   runs every file of <folder>/<reader>/ through the harness <reader>
// A harness that meets anything but microcount::error ends the program (uncaught exception, abort or a
// sanitizer report), after the input's path has been printed.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <vector>

#include "fuzz_support.hpp"

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  if (argc != 2) {
    std::cerr << "usage: fuzz_replay <regressions folder>\n";
    return 2;
  }
  std::size_t replayed = 0;
  for (const auto& [reader, run] : microcount::fuzz::targets()) {
    const fs::path folder = fs::path(argv[1]) / reader;
    if (!fs::is_directory(folder)) continue;
    std::vector<fs::path> inputs;
    for (const auto& e : fs::directory_iterator(folder))
      if (e.is_regular_file() && e.path().filename().string()[0] != '.') inputs.push_back(e.path());
    std::sort(inputs.begin(), inputs.end());
    for (const auto& input : inputs) {
      std::cout << reader << ": " << input.filename().string() << std::endl;
      std::ifstream in(input, std::ios::binary);
      const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      run(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
      ++replayed;
    }
  }
  std::cout << "fuzz_replay: " << replayed << " inputs of " << microcount::fuzz::targets().size()
            << " readers replayed without a finding\n";
  return 0;
}
