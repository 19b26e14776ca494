// Fuzzes the CVAT for Images / Video 1.1 XML reader (io/cvat_xml.hpp) and the format detection.
#include "fuzz_annotation_support.hpp"
#include "microcount/io/annotation_files.hpp"
#include "microcount/io/cvat_xml.hpp"

MICROCOUNT_FUZZ_TARGET(cvat) {
  using namespace microcount;
  const std::string text = fuzz::as_text(data, size);
  fuzz::guarded([&] { (void)io::files_detail::detect(text, "fuzz.xml"); });
  fuzz::guarded([&] {
    const io::annotations ann = io::parse_cvat_xml(text, "fuzz.xml", "fuzz.tif");
    fuzz::use_accepted(ann, [](const io::annotations& a) {
      return a.format == "cvat_video" ? io::cvat_video_xml(a) : io::cvat_images_xml(a);
    });
  });
  return 0;
}
