// detector — find objects as points: a U-Net outputs a heat map per class (1 at each object centre,
// falling off as a Gaussian), trained with the sigmoid focal loss (objects are a tiny share of the
// pixels; the focal loss keeps the easy background from drowning them). Points = local maxima of the
// probability above a threshold; the count is the number of points.
//
//   detector [DATA_DIR] [epochs]
//
// DATA_DIR: images with point annotations (CVAT `annotations.xml` or napari CSVs); without it a
// synthetic set is written first. Split 60/20/20. For every test image: precision / recall / F1 of the
// points matched one-to-one within a radius, a points CSV and an overlay PNG (truth = green rings,
// detections = crosses in the class colour). Run folder: runs/<data>-<time>/TrainingRun/.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include "microcount/backends/cpu.hpp"
#include "microcount/data/synth.hpp"
#include "microcount/eval/matching.hpp"
#include "microcount/io/picture.hpp"
#include "microcount/io/png.hpp"
#include "microcount/io/points_csv.hpp"
#include "microcount/train/curves.hpp"
#include "microcount/train/run_folder.hpp"
#include "microcount/train/test_results.hpp"
#include "microcount/train/trainer.hpp"

using namespace microcount;
namespace fs = std::filesystem;

// ---- the compile-time composition ---------------------------------------------------------------
// head:    detection — target = peak-1 Gaussians per class, sigmoid focal loss on the logits;
//          points = maxima of σ(logits) ≥ peak_threshold, at least min_distance apart.
// model:   2D U-Net, batch norm, transposed-convolution upsampling, 3 pooling steps.
// backend: the CPU.
using point_detector = train::pipeline<train::heads::detection,
                                       nn::unet2d<nn::norm::batch, nn::up::transposed, 3>,
                                       backend::cpu>;

fs::path synthesise(const fs::path& dir) {
  data::synth_options o;
  o.images = 20;  // 12 train / 4 validation / 4 test
  o.height = o.width = 128;
  o.min_cells = 15;
  o.max_cells = 40;
  o.seed = 4242;
  data::write_synthetic_dataset(dir, o);
  return dir;
}

int main(int argc, char** argv) try {
  if (argc > 3 || (argc > 1 && (std::string(argv[1]) == "-h" || std::string(argv[1]) == "--help"))) {
    std::cerr << "usage: detector [DATA_DIR] [epochs]\n";
    return 2;
  }
  const bool synthetic = argc < 2;
  const fs::path data_dir = synthetic ? synthesise("detector-data") : fs::path(argv[1]);
  if (synthetic) std::cout << "no DATA_DIR given: wrote a synthetic set to " << data_dir.string() << "/\n";

  train::hyperparameters hp;
  hp.head = "detection";
  hp.sigma = 2.0;            // heat-map width: about an object's radius, so neighbours stay apart
  hp.peak_threshold = 0.5;   // a point where the network is at least 50 % sure
  hp.match_radius = 5.0;     // a detection this close to a truth point counts as found
  if (synthetic) {
    hp.patch = 64;
    hp.base_width = 8;
    hp.epochs = 25;
    hp.lr = 3e-3;
  }
  if (argc > 2) hp.epochs = std::atoi(argv[2]);
  train::validate(hp);

  const data::dataset ds = data::open_dataset(data_dir);
  const data::split_indices split = data::split(ds, {0.6, 0.2, 0.2}, hp.seed);
  std::cout << ds.size() << " images, " << ds.total_points() << " points; split " << split.train.size() << " / "
            << split.validation.size() << " / " << split.test.size() << "\n";

  const auto run = train::run_folder::create("runs", train::data_name_of(data_dir));
  const train::run_layout out = run.training();
  out.create_directories();
  train::write_json_atomically(out.hyperparameters_json(), train::to_json(hp));
  train::run_log log(out.log_txt(), &std::cout);
  log << "run folder " + out.dir.string();

  point_detector detector(hp, ds.labels(), static_cast<index_t>(ds.image(0)->channels()));
  train::training_options o;
  o.checkpoints = out.checkpoints_dir();
  o.log = [&](const std::string& line) { log << line; };
  o.on_epoch = [&](const train::epoch_record&, const train::history& h) { train::write_training_curves(h, out.training_curves()); };
  const train::training_result result = train::fit(detector, ds, split, o);
  detector.load(result.best_checkpoint);
  log << "best epoch " + std::to_string(result.best_epoch);

  // ---- detect on the test images: points CSV + overlay per image, P / R / F1 ------------------------
  const fs::path points_dir = out.dir / "points", overlay_dir = out.dir / "overlays";
  fs::create_directories(points_dir);
  fs::create_directories(overlay_dir);
  std::vector<train::image_result> rows;
  for (const std::size_t i : split.test) {
    const auto image = ds.image(i);
    const train::image_prediction r = detector.predict(*image);
    rows.push_back({ds.name(i), {}, {}, ds.points(i), r.points});  // counts = numbers of points
    const std::string stem = fs::path(ds.name(i)).stem().string();

    io::annotations found;  // image,x,y,label — opens in a spreadsheet, reads back with io::read_points_csv
    found.format = "points_csv";
    found.labels = ds.labels();
    found.images.push_back({ds.name(i), static_cast<std::int64_t>(image->width()), static_cast<std::int64_t>(image->height()), 0, r.points});
    io::write_points_csv(points_dir / (stem + ".csv"), found);

    auto picture = io::image_to_rgb(image->pixels);  // [H, W, 3]
    for (const auto& q : ds.points(i)) io::draw_circle(picture, q.x, q.y, hp.match_radius, io::colours::green);
    for (const auto& q : r.points) io::draw_cross(picture, q.x, q.y, 2, io::class_colour(q.label + 1));
    io::write_png(overlay_dir / (stem + ".png"), picture);

    const auto m = eval::match_points(ds.points(i), r.points, {.radius = hp.match_radius});
    const eval::detection_counts d = eval::detection_counts_of(m);
    char line[200];
    std::snprintf(line, sizeof line, "%-24s true %4zu  found %4zu  TP %4zu FP %3zu FN %3zu  F1 %.3f", ds.name(i).c_str(),
                  ds.points(i).size(), r.points.size(), d.true_positives, d.false_positives, d.false_negatives, d.f1());
    log << line;
  }
  const train::test_results t = train::write_test_results(out.dir, rows, ds.labels(), {.radius = hp.match_radius});
  const auto& d = t.overall.detection;
  char summary[220];
  std::snprintf(summary, sizeof summary, "test (within %.0f px): precision %.3f  recall %.3f  F1 %.3f  count MAE %.2f", hp.match_radius,
                d.precision(), d.recall(), d.f1(), t.overall.counts.mae);
  log << summary;
  std::cout << "outputs: " << out.dir.string() << "/{log.txt, checkpoints/, plots/training_curves.png, points/, overlays/, "
            << "test_results.txt}\n";
  return 0;
} catch (const std::exception& e) {
  std::cerr << "detector: " << e.what() << "\n";
  return 1;
}
