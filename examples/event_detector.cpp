// event_detector — find exocytosis events in TIRF movies (2D+t), as ExoDeepFinder does: a 3D U-Net
// (pooling 1×2×2: time is never pooled) classifies every voxel as background, bright spot or event
// (softmax, Tversky loss, trained on ExoDeepFinder's 3-frame cones); the event voxels are clustered by
// mean-shift, one event per cluster, with its centroid and size.
//
//   event_detector [DATA_DIR] [epochs]
//
// DATA_DIR: <movie>.tif with <movie>.xml (ExoDeepFinder object list) or <movie>.csv beside it; without
// it, 6 synthetic movies are written first (data/synth_movie.hpp). The last movie validates (model
// selection by F1); a fresh synthetic movie (or the validation movie) is then detected, scored and
// written as an object list and a picture. Run folder: runs/<data>-<time>/TrainingRun/.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include "microcount/backends/cpu.hpp"
#include "microcount/data/synth_movie.hpp"
#include "microcount/eval/events.hpp"
#include "microcount/io/movie.hpp"
#include "microcount/io/objlist.hpp"
#include "microcount/train/events.hpp"
#include "microcount/train/run_folder.hpp"

using namespace microcount;
namespace fs = std::filesystem;

int main(int argc, char** argv) {
  try {
    fs::path data_dir = argc > 1 ? fs::path(argv[1]) : fs::path("synthetic-movies");
    data::movie_synth_options synth;  // 48 frames of 96×96, 6 events and 6 bright spots per movie
    synth.seed = 1;
    if (argc <= 1) {
      data::write_synthetic_movies(data_dir, synth, 6);
      std::cout << "wrote 6 synthetic movies to " << data_dir << "\n";
    }

    train::event_hyperparameters hp;  // defaults: width 8, crops 16×64², Tversky (Dice), Adam 1e-3
    hp.epochs = argc > 2 ? std::atoi(argv[2]) : 10;
    hp.steps_per_epoch = 30;
    hp.validation_share = 0.2;
    hp.min_size = 5;                  // single-voxel clusters are noise; a cone has 63 voxels
    train::event_pipeline<train::event_unet, backend::cpu> pipeline(hp);

    const auto run = train::run_folder::create("runs", train::data_name_of(data_dir));
    const auto layout = run.training();
    train::event_training_options options;
    options.log = [](const std::string& line) { std::cout << line << "\n"; };
    const auto summary = train::run_event_training(pipeline, data_dir, layout, options);
    std::cout << "best epoch " << summary.fit.best_epoch << " of " << summary.fit.epochs.size() << "\n";

    // The best weights, rebuilt from the checkpoint alone (what `microcount events detect` does).
    auto best = train::event_pipeline<train::event_unet, backend::cpu>::from_checkpoint(layout.best_model());
    data::synthetic_movie test;
    if (argc <= 1) {
      synth.seed = 1000;  // a movie the network never saw
      test = data::make_synthetic_movie(synth);
    } else {
      const auto pairs = io::find_annotated_movies(data_dir);
      test.frames = io::read_movie(pairs.back().first).frames;
      test.objects = io::read_movie_objects(pairs.back().second);
    }
    const auto events = best.detect(test.frames);  // raw frames: normalised inside, as in training
    const auto scores = eval::score_events(test.objects, events, {.distance = hp.match_distance});
    std::printf("test movie: %zu events found, %zu annotated; precision %.3f recall %.3f F1 %.3f (within %.0f voxels)\n",
                events.size(), static_cast<std::size_t>(scores.tp + scores.fn), scores.precision, scores.recall, scores.f1,
                hp.match_distance);
    io::write_event_list_xml(layout.dir / "test_events.xml", events);
    std::cout << "events: " << (layout.dir / "test_events.xml") << "\n";
    return 0;
  } catch (const error& e) {
    std::cerr << "event_detector: " << e.what() << "\n";
    return 1;
  }
}
