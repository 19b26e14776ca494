// Writes the seed corpora of the fuzz harnesses: small files made with the library's own writers, plus
// links to the real fixtures of <data>/formats (read in place, never copied).
//   make_seeds <out folder> <data folder>     -> <out>/<reader>/...
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "fuzz_checkpoint_state.hpp"
#include "microcount/io/atomic_file.hpp"
#include "microcount/io/cvat_xml.hpp"
#include "microcount/io/napari_csv.hpp"
#include "microcount/io/objlist.hpp"
#include "microcount/io/png.hpp"
#include "microcount/io/points_csv.hpp"
#include "microcount/io/tiff.hpp"
#include "microcount/train/hyperparameters.hpp"

namespace fs = std::filesystem;
using namespace microcount;

namespace {

void link(const fs::path& target, const fs::path& folder) {
  if (!fs::exists(target)) return;  // the fixtures are optional: the generated seeds suffice
  std::error_code ec;
  fs::remove(folder / target.filename(), ec);
  fs::create_symlink(fs::absolute(target), folder / target.filename(), ec);
}

io::image small_image(std::size_t frames, std::size_t channels, std::size_t h, std::size_t w) {
  io::image img;
  img.pixels = xt::xtensor<float, 4>::from_shape({frames, channels, h, w});  // [F, C, H, W]
  for (std::size_t i = 0; i < img.pixels.size(); ++i) img.pixels.data()[i] = static_cast<float>((i * 37) % 251);
  return img;
}

io::annotations small_annotations(bool movie) {
  io::annotations ann;
  ann.labels = {"cell", "spot"};
  io::image_points im{"a.tif", 16, 12, movie ? 3 : 0, {}};
  im.points = {{1.5, 2, 0, movie ? 0 : -1, -1}, {10, 11, 1, movie ? 2 : -1, -1}, {0, 0, 0, movie ? 1 : -1, -1}};
  ann.images.push_back(im);
  return ann;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: make_seeds <out folder> <data folder>\n";
    return 2;
  }
  const fs::path out = argv[1], data = fs::path(argv[2]) / "formats";
  for (const char* r : {"tiff", "cvat", "napari", "objlist", "points_csv", "dot_image", "checkpoint", "hyperparameters"})
    fs::create_directories(out / r);

  // TIFF: each sample type and layout the writer makes, one movie, one deflate file, real float16 stacks.
  io::write_tiff(out / "tiff/u8.tif", small_image(1, 1, 8, 8), io::dtype::uint8);
  io::write_tiff(out / "tiff/u16_rgb.tif", small_image(1, 3, 5, 7), io::dtype::uint16);
  io::write_tiff(out / "tiff/f32_movie.tif", small_image(3, 2, 4, 4), io::dtype::float32);
  io::write_tiff(out / "tiff/u8_deflate.tif", small_image(2, 1, 16, 16), io::dtype::uint8, io::tiff_compression::deflate);
  link(data / "deep-events/event1_ground_truth.tif", out / "tiff");

  // Dot images: TIFF and PNG, grey with two values, and three channels.
  io::image dots = small_image(1, 1, 9, 9);
  dots.pixels.fill(0);
  dots.pixels(0, 0, 2, 3) = 1;
  dots.pixels(0, 0, 6, 7) = 2;
  io::write_tiff(out / "dot_image/grey.tif", dots, io::dtype::uint8);
  io::image rgb_dots = small_image(1, 3, 6, 6);
  io::write_tiff(out / "dot_image/rgb.tif", rgb_dots, io::dtype::uint8);
  xt::xtensor<std::uint8_t, 3> png = xt::zeros<std::uint8_t>({std::size_t{6}, std::size_t{5}, std::size_t{3}});  // [H, W, C]
  png(1, 2, 0) = 255;
  png(4, 1, 2) = 255;
  io::write_png(out / "dot_image/rgb.png", png);

  // Annotations: the library's own writers and the real exports.
  io::write_text_atomically(out / "cvat/images.xml", io::cvat_images_xml(small_annotations(false)));
  io::write_text_atomically(out / "cvat/video.xml", io::cvat_video_xml(small_annotations(true)));
  for (const char* f : {"cvat/datumaro_export_task.xml", "cvat/datumaro_export_project.xml", "cvat/datumaro_video.xml"})
    link(data / f, out / "cvat");
  const io::annotations still = small_annotations(false), movie = small_annotations(true);
  io::write_text_atomically(out / "napari/2d.csv", io::napari_csv_text(still, still.images[0]));
  io::write_text_atomically(out / "napari/3d.csv", io::napari_csv_text(movie, movie.images[0]));
  link(data / "deep-events/labels_1_f.csv", out / "napari");
  io::write_text_atomically(out / "objlist/small.xml", io::objlist_xml_text(movie));
  io::write_text_atomically(out / "objlist/small.csv", io::objlist_csv_text(movie));
  link(data / "exodeepfinder/objl_cell6.xml", out / "objlist");
  io::write_text_atomically(out / "points_csv/small.csv", io::points_csv_text(still));
  io::write_text_atomically(out / "points_csv/quoted.csv", "image,x,y,label\n\"a, b.tif\",1.5,2,\"cell \"\"x\"\"\"\nc.tif,-0.5,nan,\n");

  // A checkpoint of the harness' own model, with and without optimizer state.
  fuzz::checkpoint_model m;
  io::checkpoint_header head;
  head.architecture = fuzz::checkpoint_architecture;
  head.metadata = {{"hyperparameters", train::to_json(train::hyperparameters{})}};
  head.position.epoch = 3;
  head.position.step = 42;
  head.has_optimizer = true;
  io::save_checkpoint(out / "checkpoint/with_optimizer.mcm", m.state, head);
  m.state.entries.pop_back();
  head.has_optimizer = false;
  io::save_checkpoint(out / "checkpoint/weights_only.mcm", m.state, head);

  // Configurations: the defaults, the program's wrapped form, a few edited values.
  const nlohmann::json defaults = train::to_json(train::hyperparameters{});
  io::write_text_atomically(out / "hyperparameters/defaults.json", defaults.dump(2));
  io::write_text_atomically(out / "hyperparameters/wrapped.json", nlohmann::json{{"hyperparameters", defaults}}.dump());
  io::write_text_atomically(out / "hyperparameters/edited.json", R"({"epochs": 3, "sigma": 2.5, "threads": 1})");
  std::cout << "seeds written to " << out << "\n";
  return 0;
}
