// Fuzzes the TIFF reader (io/tiff.hpp): header and metadata, every page, one frame range.
#include "fuzz_support.hpp"
#include "microcount/io/tiff.hpp"

MICROCOUNT_FUZZ_TARGET(tiff) {
  const auto file = microcount::fuzz::as_file(data, size, ".tif");
  microcount::fuzz::guarded([&] { (void)microcount::io::read_tiff_info(file); });
  microcount::fuzz::guarded([&] { (void)microcount::io::read_tiff(file); });
  microcount::fuzz::guarded([&] { (void)microcount::io::read_tiff_frames(file, 1, 1); });
  return 0;
}
