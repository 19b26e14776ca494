// Fuzzes the ExoDeepFinder / DeepFinder object-list readers (io/objlist.hpp), XML and CSV, on the same bytes:
// as point annotations, and as event lists (fractional frames, cluster_size) whose written text must read back
// to the same objects.
#include "fuzz_annotation_support.hpp"
#include "microcount/io/objlist.hpp"

#include <cstdlib>

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
  const auto same = [](const std::vector<post::event_object>& a, const std::vector<post::event_object>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (a[i].label != b[i].label || a[i].frame != b[i].frame || a[i].y != b[i].y || a[i].x != b[i].x || a[i].size != b[i].size)
        return false;
    return true;
  };
  fuzz::guarded([&] {
    const auto objects = io::parse_event_list_xml(text, "fuzz.xml");
    if (!same(objects, io::parse_event_list_xml(io::event_list_xml_text(objects), "written.xml"))) std::abort();
  });
  fuzz::guarded([&] {
    const auto objects = io::parse_event_list_csv(text, "fuzz.csv");
    if (!same(objects, io::parse_event_list_csv(io::event_list_csv_text(objects), "written.csv"))) std::abort();
  });
  return 0;
}
