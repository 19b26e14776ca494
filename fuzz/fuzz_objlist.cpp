// Fuzzes the ExoDeepFinder / DeepFinder object-list readers (io/objlist.hpp), XML and CSV, on the same bytes.
#include "fuzz_annotation_support.hpp"
#include "microcount/io/objlist.hpp"

MICROCOUNT_FUZZ_TARGET(objlist) {
  using namespace microcount;
  const std::string text = fuzz::as_text(data, size);
  const io::tomo_names names{{0, "movie0.tif"}, {1, "movie1.tif"}};
  fuzz::guarded([&] {
    const io::annotations ann = io::parse_objlist_xml(text, "fuzz.xml", names);
    fuzz::use_accepted(ann, [](const io::annotations& a) { return io::objlist_xml_text(a); });
  });
  fuzz::guarded([&] {
    const io::annotations ann = io::parse_objlist_csv(text, "fuzz.csv");
    fuzz::use_accepted(ann, [](const io::annotations& a) { return io::objlist_csv_text(a); });
  });
  return 0;
}
