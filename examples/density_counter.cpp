// density_counter — count cells with a U-Net that learns a density map (Lempitsky & Zisserman 2010;
// the "plain U-Net" of the counting literature).
//
//   density_counter [DATA_DIR] [epochs]
//
// DATA_DIR is a folder of images with point annotations: a CVAT for Images 1.1 `annotations.xml` beside
// the images, or one napari points CSV per image. Without it a small synthetic set is written first.
// The images are split 60/20/20 (train / validation / test, seeded); the network trains on random crops,
// keeps the checkpoint with the best validation MAE, and counts every test image. Everything goes into
// a run folder: runs/<data>-<time>/TrainingRun/ (log, hyperparameters, checkpoints, training curves,
// sample pictures, test results).
//
// Copy this file to start your own counter: the pipeline type below is the whole structure; the
// hyperparameters are numbers you can change without recompiling anything else.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include <xtensor/xview.hpp>

#include "microcount/backends/cpu.hpp"         // backend::cpu: xsimd + OpenMP kernels
#include "microcount/data/synth.hpp"
#include "microcount/train/curves.hpp"
#include "microcount/train/run_folder.hpp"
#include "microcount/train/samples.hpp"
#include "microcount/train/test_results.hpp"
#include "microcount/train/trainer.hpp"

using namespace microcount;
namespace fs = std::filesystem;

// ---- the compile-time composition ---------------------------------------------------------------
// head:    density — target = unit-mass Gaussians (× density_scale), MSE; count = sum of the map,
//          points = its local maxima.
// model:   2D U-Net, batch norm, transposed-convolution upsampling, 3 pooling steps (sides must be
//          divisible by 8; prediction pads and tiles, so any image size works).
// backend: the CPU.
using cell_counter = train::pipeline<train::heads::density,
                                     nn::unet2d<nn::norm::batch, nn::up::transposed, 3>,
                                     backend::cpu>;

// A small synthetic fluorescence set (blurred cells with Poisson noise) when no folder is given.
fs::path synthesise(const fs::path& dir) {
  data::synth_options o;
  o.images = 20;  // 12 train / 4 validation / 4 test
  o.height = o.width = 128;
  o.min_cells = 15;
  o.max_cells = 40;
  o.seed = 2024;
  data::write_synthetic_dataset(dir, o);
  return dir;
}

int main(int argc, char** argv) try {
  if (argc > 3 || (argc > 1 && (std::string(argv[1]) == "-h" || std::string(argv[1]) == "--help"))) {
    std::cerr << "usage: density_counter [DATA_DIR] [epochs]\n";
    return 2;
  }
  const bool synthetic = argc < 2;
  const fs::path data_dir = synthetic ? synthesise("density_counter-data") : fs::path(argv[1]);
  if (synthetic) std::cout << "no DATA_DIR given: wrote a synthetic set to " << data_dir.string() << "/\n";

  // ---- run-time numbers (hyperparameters.json records them) ----------------------------------------
  train::hyperparameters hp;  // the defaults are what `microcount train` uses on real data
  hp.head = "density";
  if (synthetic) {  // a quick demonstration: smaller crops and network, fewer epochs
    hp.patch = 64;
    hp.base_width = 8;
    hp.epochs = 25;
    hp.lr = 3e-3;
  }
  if (argc > 2) hp.epochs = std::atoi(argv[2]);
  train::validate(hp);  // a bad number is an error naming it, before any work

  // ---- data: a lazy view of the folder, split 60/20/20 with the run's seed ---------------------------
  const data::dataset ds = data::open_dataset(data_dir);
  const data::split_indices split = data::split(ds, {0.6, 0.2, 0.2}, hp.seed);
  const auto channels = static_cast<index_t>(ds.image(0)->channels());  // grey 1, RGB 3
  std::cout << ds.size() << " images, " << ds.total_points() << " points, classes";
  for (const auto& l : ds.labels()) std::cout << " " << l;
  std::cout << "; split " << split.train.size() << " / " << split.validation.size() << " / " << split.test.size() << "\n";

  // ---- the run folder: runs/<data>-<time>/TrainingRun/ -----------------------------------------------
  const auto run = train::run_folder::create("runs", train::data_name_of(data_dir));
  const train::run_layout out = run.training();
  out.create_directories();
  train::write_json_atomically(out.hyperparameters_json(), train::to_json(hp));
  train::run_log log(out.log_txt(), &std::cout);  // log.txt, echoed here
  log << "run folder " + out.dir.string();

  // ---- train: best / latest checkpoints, curves redrawn after every epoch ----------------------------
  cell_counter counter(hp, ds.labels(), channels);
  train::training_options o;
  o.checkpoints = out.checkpoints_dir();
  o.log = [&](const std::string& line) { log << line; };
  o.on_epoch = [&](const train::epoch_record&, const train::history& h) { train::write_training_curves(h, out.training_curves()); };
  const train::training_result result = train::fit(counter, ds, split, o);
  counter.load(result.best_checkpoint);  // the epoch with the lowest validation MAE
  log << "best epoch " + std::to_string(result.best_epoch) + " (validation MAE " + std::to_string(result.best_metric) + ")";

  // ---- count the test images -----------------------------------------------------------------------
  std::vector<train::image_result> rows;
  for (const std::size_t i : split.test) {
    const auto image = ds.image(i);
    const train::image_prediction r = counter.predict(*image);  // tiled, any size
    rows.push_back({ds.name(i), {}, r.counts, ds.points(i), r.points});
    char line[200];
    std::snprintf(line, sizeof line, "%-24s true %4zu   counted %7.1f   (%zu peaks)", ds.name(i).c_str(), ds.points(i).size(),
                  r.counts[0], r.points.size());
    log << line;
    if (rows.size() <= static_cast<std::size_t>(hp.samples)) {  // input | truth | density map with peaks
      train::sample_panel panel;
      panel.title = ds.name(i);
      panel.image = xt::view(image->pixels, 0);  // [C, H, W]
      panel.labels = ds.labels();
      panel.truth_points = ds.points(i);
      panel.predicted_maps = r.maps;
      panel.predicted_points = r.points;
      panel.predicted_counts = r.counts;
      train::write_sample_panel(out.sample(fs::path(ds.name(i)).stem().string()), panel);
    }
  }
  const train::test_results t = train::write_test_results(out.dir, rows, ds.labels(), {.radius = hp.match_radius});
  char summary[200];
  std::snprintf(summary, sizeof summary, "test: MAE %.2f  RMSE %.2f  (peaks within %.0f px: precision %.3f recall %.3f F1 %.3f)",
                t.overall.counts.mae, t.overall.counts.rmse, hp.match_radius, t.overall.detection.precision(),
                t.overall.detection.recall(), t.overall.detection.f1());
  log << summary;
  std::cout << "outputs: " << out.dir.string() << "/{log.txt, hyperparameters.json, checkpoints/, plots/training_curves.png, "
            << "samples/, test_results.txt}\n";
  return 0;
} catch (const std::exception& e) {
  std::cerr << "density_counter: " << e.what() << "\n";
  return 1;
}
