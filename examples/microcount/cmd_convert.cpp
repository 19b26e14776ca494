// microcount convert IN OUT [--to FORMAT] — annotations from one format to another.
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "command.hpp"
#include "microcount/io/annotation_files.hpp"

namespace {

using microcount::error;
namespace io = microcount::io;
namespace fs = std::filesystem;

// The output format when --to is not given: from OUT's extension, staying in the input's family.
std::string default_format(const std::string& out, const std::string& input_format) {
  const bool objlist = input_format == "objlist_xml" || input_format == "objlist_csv";
  std::string ext = fs::path(out).extension().string();
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const bool folder = (!out.empty() && out.back() == '/') || fs::is_directory(out);
  if (!folder && ext == ".xml") return objlist ? "objlist_xml" : input_format == "cvat_video" ? "cvat_video" : "cvat_images";
  if (!folder && ext == ".csv") return objlist ? "objlist_csv" : "points_csv";
  if (folder || ext.empty()) return "napari_csv";
  throw error(out, "cannot tell the output format from the extension '" + ext + "' (use --to FORMAT)");
}

int run(const std::vector<std::string>& args) {
  const microcount::cli::arguments a(args);
  a.allow_only({"to"});
  if (a.positional.size() != 2) throw error("expects IN and OUT (see microcount convert --help)");
  const std::string& in = a.positional[0];
  const std::string& out = a.positional[1];
  const io::annotations ann = io::read_annotations(in);
  const std::string format = a.has("to") ? a.get("to") : default_format(out, ann.format);
  io::write_annotations(out, ann, format);
  nlohmann::ordered_json j;
  j["input"] = in;
  j["input_format"] = ann.format;
  j["output"] = out;
  j["format"] = format;
  j["images"] = ann.images.size();
  j["points"] = ann.total_points();
  std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  return 0;
}

const microcount::cli::register_command reg{{
    "convert",
    "convert annotations between CVAT XML, napari CSV, ExoDeepFinder object lists and points CSV",
    "usage: microcount convert IN OUT [--to FORMAT]\n\n"
    "IN: any annotation file or folder `microcount annotations` reads.\n"
    "FORMAT: cvat_images, cvat_video, napari_csv, objlist_xml, objlist_csv, points_csv.\n"
    "Without --to, OUT decides: *.xml -> cvat_images (cvat_video for a video input, objlist_xml for an\n"
    "object-list input); *.csv -> points_csv (objlist_csv for an object-list input); a folder or a name\n"
    "without extension -> napari_csv, one <image stem>.csv per image. Files are written atomically.\n"
    "See docs/formats.md for what each format can hold (frames, labels, empty images).",
    run}};

}  // namespace
