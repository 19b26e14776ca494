// capsid_counter — DeepEM-style counting of virus capsids by class (naked / budding / enveloped) with a
// count regressor: a convolutional trunk, global average pooling and one linear output per class,
// trained on the count vectors of random crops. No points are needed at inference, only counts; Grad-CAM
// shows where in the image each class's count comes from.
//
//   capsid_counter [DATA_DIR] [epochs]
//
// DATA_DIR: images with point annotations of several classes (CVAT `annotations.xml` with one label per
// class, or napari CSVs). Without it a synthetic three-class set is written first (blobs = naked, blobs
// with a bud = budding, rings = enveloped). The images are split 60/20/20; the run folder
// runs/<data>-<time>/TrainingRun/ gets the log, checkpoints, curves, test_results.{json,txt} (per-class
// MAE) and samples/<image>_gradcam_<class>.png for the first test image.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include <xtensor/xview.hpp>

#include "microcount/backends/cpu.hpp"
#include "microcount/data/synth.hpp"
#include "microcount/train/curves.hpp"
#include "microcount/train/explain.hpp"       // train::pipeline_gradcam
#include "microcount/train/run_folder.hpp"
#include "microcount/train/samples.hpp"
#include "microcount/train/test_results.hpp"
#include "microcount/train/trainer.hpp"

using namespace microcount;
namespace fs = std::filesystem;

// ---- the compile-time composition ---------------------------------------------------------------
// head:    regression — target = the crop's count per class, MSE; the output is the count.
// model:   count regressor: 2D trunk of conv blocks with batch norm and 3 poolings, global average
//          pooling, linear layer to one value per class, scaled by (image area / crop area) so a whole
//          image gets the count of all its crops.
// backend: the CPU.
using capsid_counter = train::pipeline<train::heads::regression,
                                       nn::count_regressor<2, nn::norm::batch, 3>,
                                       backend::cpu>;

fs::path synthesise(const fs::path& dir) {
  data::synth_options o;
  o.images = 20;  // 12 train / 4 validation / 4 test
  o.height = o.width = 128;
  o.classes = 3;  // naked, budding, enveloped
  o.min_cells = 10;
  o.max_cells = 30;
  o.seed = 77;
  data::write_synthetic_dataset(dir, o);
  return dir;
}

int main(int argc, char** argv) try {
  if (argc > 3 || (argc > 1 && (std::string(argv[1]) == "-h" || std::string(argv[1]) == "--help"))) {
    std::cerr << "usage: capsid_counter [DATA_DIR] [epochs]\n";
    return 2;
  }
  const bool synthetic = argc < 2;
  const fs::path data_dir = synthetic ? synthesise("capsid_counter-data") : fs::path(argv[1]);
  if (synthetic) std::cout << "no DATA_DIR given: wrote a synthetic three-class set to " << data_dir.string() << "/\n";

  train::hyperparameters hp;
  hp.head = "regression";
  hp.patch = 64;            // crops the counts are learnt on; a whole image is many crops' worth
  hp.patches_per_image = 16;  // a regressor sees one number per crop: it needs many crops
  hp.epochs = synthetic ? 30 : 60;
  hp.lr = 2e-3;
  if (argc > 2) hp.epochs = std::atoi(argv[2]);
  train::validate(hp);

  const data::dataset ds = data::open_dataset(data_dir);
  const data::split_indices split = data::split(ds, {0.6, 0.2, 0.2}, hp.seed);
  const std::vector<std::string>& classes = ds.labels();
  std::cout << ds.size() << " images, " << ds.total_points() << " points, " << classes.size() << " classes; split "
            << split.train.size() << " / " << split.validation.size() << " / " << split.test.size() << "\n";

  const auto run = train::run_folder::create("runs", train::data_name_of(data_dir));
  const train::run_layout out = run.training();
  out.create_directories();
  train::write_json_atomically(out.hyperparameters_json(), train::to_json(hp));
  train::run_log log(out.log_txt(), &std::cout);
  log << "run folder " + out.dir.string();

  capsid_counter counter(hp, classes, static_cast<index_t>(ds.image(0)->channels()));
  train::training_options o;
  o.checkpoints = out.checkpoints_dir();
  o.log = [&](const std::string& line) { log << line; };
  o.on_epoch = [&](const train::epoch_record&, const train::history& h) { train::write_training_curves(h, out.training_curves()); };
  const train::training_result result = train::fit(counter, ds, split, o);
  counter.load(result.best_checkpoint);
  log << "best epoch " + std::to_string(result.best_epoch) + " (validation MAE " + std::to_string(result.best_metric) + ")";

  // ---- per-class counts of the test images ----------------------------------------------------------
  std::vector<train::image_result> rows;
  for (const std::size_t i : split.test) {
    const train::image_prediction r = counter.predict(*ds.image(i));  // counts only: r.points is empty
    rows.push_back({ds.name(i), {}, r.counts, ds.points(i), {}});
    std::string line = ds.name(i) + ":";
    for (std::size_t k = 0; k < classes.size(); ++k) {
      const auto truth = std::count_if(ds.points(i).begin(), ds.points(i).end(), [&](const io::point& q) { return q.label == static_cast<int>(k); });
      char cell[96];
      std::snprintf(cell, sizeof cell, "  %s %td/%.1f", classes[k].c_str(), truth, r.counts[k]);
      line += cell;
    }
    log << line + "   (true/counted)";
  }
  const train::test_results t = train::write_test_results(out.dir, rows, classes, {.points_predicted = false});
  for (std::size_t k = 0; k < classes.size(); ++k) {
    char line[160];
    std::snprintf(line, sizeof line, "test MAE %-10s %.2f  (mean true count %.1f)", classes[k].c_str(), t.classes[k].counts.mae,
                  t.classes[k].truth_total / static_cast<double>(std::max<std::size_t>(1, rows.size())));
    log << line;
  }

  // ---- Grad-CAM: where does each class's count come from? -------------------------------------------
  if (!split.test.empty()) {
    const std::size_t i = split.test.front();
    const auto image = ds.image(i);
    const auto r = counter.predict(*image);
    for (std::size_t k = 0; k < classes.size(); ++k) {
      train::sample_panel panel;
      panel.title = ds.name(i) + " - Grad-CAM of '" + classes[k] + "'";
      panel.image = xt::view(image->pixels, 0);  // [C, H, W]
      panel.labels = {classes[k]};  // one class per picture: its truth points and its count
      for (auto q : ds.points(i))
        if (q.label == static_cast<int>(k)) {
          q.label = 0;
          panel.truth_points.push_back(q);
        }
      panel.predicted_counts = {r.counts[k]};
      panel.grad_cam = train::pipeline_gradcam(counter, *image, static_cast<int>(k));  // [H, W] in [0, 1]
      const fs::path png = out.sample(fs::path(ds.name(i)).stem().string() + "_gradcam_" + classes[k]);
      train::write_sample_panel(png, panel);
      log << "Grad-CAM of " + classes[k] + ": " + png.string();
    }
  }
  std::cout << "outputs: " << out.dir.string() << "/{log.txt, checkpoints/, plots/training_curves.png, samples/, test_results.txt}\n";
  return 0;
} catch (const std::exception& e) {
  std::cerr << "capsid_counter: " << e.what() << "\n";
  return 1;
}
