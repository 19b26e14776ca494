// The run folder: names, uniqueness, layout, the appended log, atomic JSON, clear errors.
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "microcount/train/curves.hpp"
#include "microcount/train/run_folder.hpp"
#include "microcount/train/samples.hpp"
#include "microcount/train/test_results.hpp"
#include "microcount/train/tuner.hpp"
#include "test_support.hpp"

using namespace microcount;
namespace fs = std::filesystem;

namespace {

// 2026-03-04 05:06:07 UTC.
std::chrono::system_clock::time_point fixed_time() {
  std::tm t{};
  t.tm_year = 2026 - 1900;
  t.tm_mon = 2;
  t.tm_mday = 4;
  t.tm_hour = 5;
  t.tm_min = 6;
  t.tm_sec = 7;
  return std::chrono::system_clock::from_time_t(timegm(&t));
}

// Runs f with TZ=UTC so the local-time folder name is known, then restores TZ.
template <class F>
void in_utc(F&& f) {
  const char* old = std::getenv("TZ");
  const std::string saved = old ? old : "";
  setenv("TZ", "UTC", 1);
  tzset();
  f();
  if (old) setenv("TZ", saved.c_str(), 1);
  else unsetenv("TZ");
  tzset();
}

std::vector<std::string> lines_of(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace

TEST_CASE("run_folder: timestamped name, never reused, the DESIGN.md layout") {
  const auto runs = test::scratch("run_folder_names") / "runs";  // does not exist yet: created
  in_utc([&] {
    const auto a = train::run_folder::create(runs, "vgg-cells", fixed_time());
    CHECK(a.root() == runs / "vgg-cells-2026-03-04_05-06-07");
    CHECK(fs::is_directory(a.root()));
    const auto b = train::run_folder::create(runs, "vgg-cells", fixed_time());
    const auto c = train::run_folder::create(runs, "vgg-cells", fixed_time());
    CHECK(b.root() == runs / "vgg-cells-2026-03-04_05-06-07_2");
    CHECK(c.root() == runs / "vgg-cells-2026-03-04_05-06-07_3");
    io::write_text_atomically(runs / "vgg-cells-2026-03-04_05-06-07_4", "a file in the way");
    CHECK(train::run_folder::create(runs, "vgg-cells", fixed_time()).root() == runs / "vgg-cells-2026-03-04_05-06-07_5");
    // Unsafe characters in the data name do not escape the runs folder.
    const auto d = train::run_folder::create(runs, "../my data/x", fixed_time());
    CHECK(d.root().parent_path() == runs);
    CHECK(d.root().filename() == "_my_data_x-2026-03-04_05-06-07");
  });

  const auto run = train::run_folder::open(runs / "vgg-cells-2026-03-04_05-06-07");
  const auto t = run.training();
  CHECK(run.training_dir() == run.root() / "TrainingRun");
  CHECK(t.hyperparameters_json() == run.root() / "TrainingRun/hyperparameters.json");
  CHECK(t.log_txt() == run.root() / "TrainingRun/log.txt");
  CHECK(t.best_model() == run.root() / "TrainingRun/checkpoints/best_model.mcm");
  CHECK(t.latest_model() == run.root() / "TrainingRun/checkpoints/latest_model.mcm");
  CHECK(t.training_curves() == run.root() / "TrainingRun/plots/training_curves");
  CHECK(t.sample("image_101") == run.root() / "TrainingRun/samples/image_101.png");
  CHECK(t.test_results_json() == run.root() / "TrainingRun/test_results.json");
  CHECK(t.test_results_txt() == run.root() / "TrainingRun/test_results.txt");
  CHECK(run.evaluate_dir() == run.root() / "Evaluate");
  CHECK(run.sweep(3).dir == run.root() / "Sweep_3");
  CHECK(run.sweep(3).result_json() == run.root() / "Sweep_3/result.json");
  CHECK(run.tuning_results_json() == run.root() / "tuning_results.json");
  CHECK(run.best_sweep_parameters_json() == run.root() / "best_sweep_parameters.json");

  t.create_directories();
  for (const auto& d : {t.dir, t.checkpoints_dir(), t.plots_dir(), t.samples_dir()}) CHECK(fs::is_directory(d));
  t.create_directories();  // idempotent
}

TEST_CASE("run_folder: resolve_model finds the checkpoint a user means") {
  const auto dir = test::scratch("run_folder_models");
  const auto run = train::run_folder::create(dir, "cells");
  CHECK_THROWS_WITH_AS(train::resolve_model(run.root()), doctest::Contains("no checkpoint found"), error);
  io::write_text_atomically(run.training().best_model(), "weights");
  CHECK(train::resolve_model(run.root()) == run.training().best_model());
  CHECK(train::resolve_model(run.training_dir()) == run.training().best_model());
  CHECK(train::resolve_model(run.training().latest_model().parent_path() / "best_model.mcm") == run.training().best_model());
  io::write_text_atomically(run.sweep(2).best_model(), "weights");
  CHECK(train::resolve_model(run.sweep_dir(2)) == run.sweep(2).best_model());
  CHECK_THROWS_WITH_AS(train::resolve_model(dir / "nothing"), doctest::Contains("nothing: no such model"), error);
}

TEST_CASE("run_folder: data names from folders") {
  CHECK(train::data_name_of("../shared/data/vgg-cells/") == "vgg-cells");
  CHECK(train::data_name_of("/tmp/mbm") == "mbm");
  CHECK(train::data_name_of("/") == "data");
  CHECK(!train::data_name_of(".").empty());
}

TEST_CASE("run_folder: clear errors naming the path") {
  const auto dir = test::scratch("run_folder_errors");
  CHECK_THROWS_WITH_AS(train::run_folder::open(dir / "missing"), doctest::Contains("missing"), error);
  io::write_text_atomically(dir / "a_file", "x");
  CHECK_THROWS_WITH_AS(train::run_folder::create(dir / "a_file", "d"), doctest::Contains("a_file"), error);
  CHECK_THROWS_WITH_AS(train::run_folder::create(dir / "a_file" / "runs", "d"), doctest::Contains("a_file"), error);
  CHECK_THROWS_WITH_AS(train::run_log(dir / "a_file" / "log.txt"), doctest::Contains("a_file"), error);
  const train::run_layout inside_a_file{dir / "a_file" / "TrainingRun"};
  CHECK_THROWS_WITH_AS(inside_a_file.create_directories(), doctest::Contains("a_file"), error);
  CHECK_THROWS_WITH_AS(train::write_json_atomically(dir / "a_file" / "x.json", {{"a", 1}}),
                       doctest::Contains("a_file"), error);
}

TEST_CASE("run_log: stamped lines appended and flushed, echo, reopened runs append") {
  const auto dir = test::scratch("run_log");
  const auto file = dir / "TrainingRun" / "log.txt";
  std::ostringstream echo;
  {
    train::run_log log(file, &echo);
    log.write("epoch 1: loss 0.5");
    // Flushed per line: another reader sees it before the log is closed.
    REQUIRE(lines_of(file).size() == 1);
    log << "two\nlines\n";
    log.write("");
  }
  {
    train::run_log resumed(file);
    resumed.write("resumed");
  }
  const auto lines = lines_of(file);
  REQUIRE(lines.size() == 5);
  const std::regex stamped(R"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  (.*))");
  const std::vector<std::string> messages = {"epoch 1: loss 0.5", "two", "lines", "", "resumed"};
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::smatch m;
    REQUIRE(std::regex_match(lines[i], m, stamped));
    CHECK(m[1].str() == messages[i]);
  }
  // The echo got the first four lines, stamped the same way.
  std::istringstream echoed(echo.str());
  std::vector<std::string> echo_lines;
  for (std::string l; std::getline(echoed, l);) echo_lines.push_back(l);
  CHECK(echo_lines == std::vector<std::string>(lines.begin(), lines.begin() + 4));
}

TEST_CASE("write_json_atomically: pretty, 2 spaces, no temporary left; read_json names bad files") {
  const auto dir = test::scratch("run_json");
  const nlohmann::json value = {{"lr", 0.001}, {"model", {{"depth", 3}}}};
  train::write_json_atomically(dir / "hyperparameters.json", value);
  const std::string text = io::read_text(dir / "hyperparameters.json");
  CHECK(text == "{\n  \"lr\": 0.001,\n  \"model\": {\n    \"depth\": 3\n  }\n}\n");
  CHECK(train::read_json(dir / "hyperparameters.json") == value);
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++files;
  CHECK(files == 1);
  io::write_text_atomically(dir / "bad.json", "{\"a\": ");
  CHECK_THROWS_WITH_AS(train::read_json(dir / "bad.json"), doctest::Contains("bad.json: not valid JSON"), error);
  CHECK_THROWS_WITH_AS(train::read_json(dir / "none.json"), doctest::Contains("none.json"), error);
}

// ---- the whole folder, written the way the trainer and the tuner write it -------------------------

TEST_CASE("run_folder: a whole run produces exactly the DESIGN.md tree") {
  const auto runs = test::scratch("run_folder_whole");
  const auto run = train::run_folder::create(runs, train::data_name_of("/data/vgg-cells/"));
  const auto t = run.training();
  t.create_directories();
  train::write_json_atomically(t.hyperparameters_json(), {{"lr", 1e-3}, {"epochs", 2}});
  train::run_log log(t.log_txt());
  train::history h;
  for (int e = 1; e <= 2; ++e) {
    h.push_back({e, 1.0 / e, 1.5 / e, 10.0 / e, 0.5, 1e-3, 1.0});
    log.write("epoch " + std::to_string(e));
    io::write_text_atomically(t.latest_model(), "checkpoint");  // stands in for io::checkpoint
    io::write_text_atomically(t.best_model(), "checkpoint");
    train::write_training_curves(h, t.training_curves());
  }
  train::sample_panel s;
  s.image = xt::ones<float>({std::size_t{1}, std::size_t{16}, std::size_t{16}});
  train::write_sample_panel(t.sample("image_101"), s);
  std::vector<train::image_result> images(1);
  images[0].name = "image_101.tif";
  images[0].truth_points = {{3, 3, 0, -1, -1}};
  train::write_test_results(t.dir, images, {"cell"});
  run.evaluation().create_directories();
  train::write_test_results(run.evaluate_dir(), images, {"cell"});
  train::run_grid_search(run.root(), {{"lr", 1e-3}}, {{"lr", {1e-3, 1e-4}}},
                         [](const nlohmann::json& p, const fs::path& dir) {
                           train::write_json_atomically(train::run_layout{dir}.hyperparameters_json(), p);
                           return p["lr"].get<double>();
                         });

  std::set<std::string> tree;
  for (const auto& e : fs::recursive_directory_iterator(run.root()))
    tree.insert(fs::relative(e.path(), run.root()).generic_string() + (e.is_directory() ? "/" : ""));
  const std::set<std::string> expected = {
      "TrainingRun/", "TrainingRun/hyperparameters.json", "TrainingRun/log.txt", "TrainingRun/checkpoints/",
      "TrainingRun/checkpoints/best_model.mcm", "TrainingRun/checkpoints/latest_model.mcm", "TrainingRun/plots/",
      "TrainingRun/plots/training_curves.png", "TrainingRun/plots/training_curves.svg", "TrainingRun/samples/",
      "TrainingRun/samples/image_101.png", "TrainingRun/test_results.json", "TrainingRun/test_results.txt",
      "Evaluate/", "Evaluate/checkpoints/", "Evaluate/plots/", "Evaluate/samples/", "Evaluate/test_results.json",
      "Evaluate/test_results.txt", "Sweep_0/", "Sweep_0/sweep_parameters.json", "Sweep_0/hyperparameters.json",
      "Sweep_0/result.json", "Sweep_1/", "Sweep_1/sweep_parameters.json", "Sweep_1/hyperparameters.json",
      "Sweep_1/result.json", "tuning_results.json", "best_sweep_parameters.json"};
  CHECK(tree == expected);
  CHECK(run.root().filename().string().rfind("vgg-cells-", 0) == 0);
  CHECK(lines_of(t.log_txt()).size() == 2);
}
