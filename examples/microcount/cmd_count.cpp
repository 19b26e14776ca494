// microcount count --model RUN_DIR|CKPT IMAGE|DIR… --out DIR
#include <chrono>
#include <filesystem>
#include <iostream>
#include <unistd.h>

#include "command.hpp"
#include "image_arguments.hpp"
#include "microcount/data/dataset.hpp"
#include "microcount/io/annotation_files.hpp"
#include "microcount/io/atomic_file.hpp"
#include "microcount/io/picture.hpp"
#include "microcount/io/png.hpp"
#include "microcount/io/points_csv.hpp"
#include "microcount/train/trainer.hpp"
#include "pipelines.hpp"

namespace microcount::cli {
namespace {

namespace fs = std::filesystem;

using cli::image_files;

int run_count(const std::vector<std::string>& args) {
  const arguments a(args, {"quiet"});
  a.allow_only({"model", "out", "threads", "quiet"});
  require(a.has("model"), "microcount", "count needs --model RUN_DIR|CKPT");
  require(a.has("out"), "microcount", "count needs --out DIR");
  require(!a.positional.empty(), "microcount", "count needs at least one IMAGE or DIR");
  set_threads(static_cast<int>(a.integer("threads", 0)));
  const auto files = image_files(a.positional);
  fs::path checkpoint;
  auto p = load_pipeline(a.get("model"), &checkpoint);
  const fs::path out = a.get("out");
  std::error_code ec;
  fs::create_directories(out / "points", ec);
  fs::create_directories(out / "overlays", ec);
  require(!ec, out.string(), "cannot create the output folder: " + ec.message());

  const auto& labels = p->labels();
  nlohmann::json counts = nlohmann::json::object();
  const bool tty = isatty(2) && !a.has("quiet");
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < files.size(); ++i) {
    const fs::path& f = files[i];
    const io::image im = data::detail::load_image(f);
    const auto r = p->predict(im);
    nlohmann::json per_class = nlohmann::json::object();
    double total = 0;
    for (std::size_t c = 0; c < labels.size(); ++c) {
      per_class[labels[c]] = r.counts[c];
      total += r.counts[c];
    }
    counts[f.filename().string()] = {{"total", total}, {"per_class", per_class}, {"points", r.points.size()}};
    if (p->has_points()) {
      io::annotations ann;
      ann.format = "points_csv";
      ann.labels = labels;
      ann.images.push_back({f.filename().string(), static_cast<std::int64_t>(im.width()), static_cast<std::int64_t>(im.height()), 0, r.points});
      io::write_points_csv(out / "points" / (f.stem().string() + ".csv"), ann);
    }
    auto picture = io::image_to_rgb(im.pixels);  // [H, W, 3]
    for (const auto& q : r.points) io::draw_circle(picture, q.x, q.y, 3.0, io::class_colour(q.label));
    io::write_png(out / "overlays" / (f.stem().string() + ".png"), picture);
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (tty || !a.has("quiet")) {
      char line[256];
      std::snprintf(line, sizeof line, "[%zu/%zu] %s: %.1f  (%s left)", i + 1, files.size(), f.filename().string().c_str(), total,
                    train::format_duration(elapsed / static_cast<double>(i + 1) * static_cast<double>(files.size() - i - 1)).c_str());
      std::cerr << (tty ? "\r\033[K" : "") << line << (tty ? "" : "\n") << std::flush;
    }
  }
  if (tty) std::cerr << "\n";
  const nlohmann::json doc = {{"model", checkpoint.string()}, {"architecture", p->architecture()}, {"labels", labels}, {"images", counts}};
  io::write_text_atomically(out / "counts.json", doc.dump(2) + "\n");
  std::cout << "counted " << files.size() << " image(s): " << (out / "counts.json").string() << ", points/, overlays/\n";
  return 0;
}

const register_command reg{{"count", "count (and locate) objects in images with a trained model",
                            "usage: microcount count --model RUN_DIR|CKPT IMAGE|DIR… --out DIR [--threads N] [--quiet]\n"
                            "writes DIR/counts.json (per image, per class), DIR/points/<image>.csv and DIR/overlays/<image>.png\n",
                            run_count}};

}  // namespace
}  // namespace microcount::cli
