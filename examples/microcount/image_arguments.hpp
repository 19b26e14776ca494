#pragma once
// IMAGE or DIR command-line arguments -> image files, shared by the commands that take images (count, denoise).
#include <algorithm>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "microcount/core/error.hpp"
#include "microcount/io/annotation_files.hpp"

namespace microcount::cli {

// A folder gives its images (.tif, .tiff, .png; no hidden files) in name order; a file is taken as it is.
inline std::vector<std::filesystem::path> image_files(const std::vector<std::string>& args) {
  namespace fs = std::filesystem;
  std::vector<fs::path> out;
  for (const auto& a : args) {
    std::error_code ec;
    if (fs::is_directory(a, ec)) {
      std::vector<fs::path> in;
      for (const auto& e : fs::directory_iterator(a, ec))
        if (e.is_regular_file(ec) && io::files_detail::is_image_extension(e.path().extension().string()) &&
            e.path().filename().string()[0] != '.')
          in.push_back(e.path());
      std::sort(in.begin(), in.end());
      require(!in.empty(), a, "folder holds no images (.tif, .tiff, .png)");
      out.insert(out.end(), in.begin(), in.end());
    } else {
      require(fs::is_regular_file(a, ec), a, "no such image or folder");
      out.emplace_back(a);
    }
  }
  return out;
}

}  // namespace microcount::cli
