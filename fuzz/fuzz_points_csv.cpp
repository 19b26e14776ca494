// Fuzzes the points CSV reader (io/points_csv.hpp).
#include "fuzz_annotation_support.hpp"
#include "microcount/io/points_csv.hpp"

MICROCOUNT_FUZZ_TARGET(points_csv) {
  using namespace microcount;
  const std::string text = fuzz::as_text(data, size);
  fuzz::guarded([&] {
    const io::annotations ann = io::parse_points_csv(text, "fuzz.csv");
    fuzz::use_accepted(ann, [](const io::annotations& a) { return io::points_csv_text(a); });
  });
  return 0;
}
