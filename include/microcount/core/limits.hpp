#pragma once
// Upper bounds on what a file header may ask for, so a broken or hostile file fails with a clear
// microcount::error instead of a multi-gigabyte allocation. Readers check against these before they
// allocate. They are run-time values so an application with bigger data can raise them.
#include <cstddef>
#include <cstdint>

namespace microcount {

struct input_limits {
  std::uint64_t max_image_side = 1u << 17;            // pixels along x or y
  std::uint64_t max_pages = 1u << 20;                 // pages (frames × planes) in one TIFF
  std::uint64_t max_total_bytes = std::uint64_t{8} << 30;  // decoded bytes of one image or stack
  std::uint64_t max_points = std::uint64_t{50} << 20;     // annotations in one file
};

// The process-wide limits every reader consults.
inline input_limits& limits() {
  static input_limits l;
  return l;
}

}  // namespace microcount
