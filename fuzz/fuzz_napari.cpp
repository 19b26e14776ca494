// Fuzzes the napari points CSV reader (io/napari_csv.hpp).
#include "fuzz_annotation_support.hpp"
#include "microcount/io/napari_csv.hpp"

MICROCOUNT_FUZZ_TARGET(napari) {
  using namespace microcount;
  const std::string text = fuzz::as_text(data, size);
  fuzz::guarded([&] {
    const io::annotations ann = io::parse_napari_csv(text, "fuzz.csv", "fuzz.tif");
    fuzz::use_accepted(ann, [](const io::annotations& a) {
      std::string out;
      for (const auto& im : a.images) out += io::napari_csv_text(a, im);
      return out;
    });
  });
  return 0;
}
