// Fuzzes the dot-image reader (io/dot_image.hpp): TIFF or PNG bytes, plain, with a value map and with
// channel labels.
#include "fuzz_annotation_support.hpp"
#include "microcount/io/dot_image.hpp"

MICROCOUNT_FUZZ_TARGET(dot_image) {
  using namespace microcount;
  const auto file = fuzz::as_file(data, size, ".dots");
  fuzz::guarded([&] { fuzz::use_accepted(io::read_dot_image(file), [](const io::annotations&) { return 0; }); });
  io::dot_image_options by_value;
  by_value.value_labels = {{1, "a"}, {2, "b"}, {255, "c"}};
  fuzz::guarded([&] { (void)io::read_dot_image(file, by_value); });
  io::dot_image_options by_channel;
  by_channel.channel_labels = {"red", "green", "blue"};
  fuzz::guarded([&] { (void)io::read_dot_image(file, by_channel); });
  return 0;
}
