// Grid tuner: order of the combinations, nested keys, best sweep, resume, failures, progress.
#include <cmath>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "microcount/train/tuner.hpp"
#include "test_support.hpp"

using namespace microcount;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const json base = {{"lr", 0.1}, {"epochs", 5}, {"model", {{"depth", 3}, {"sigma", 9}}}};
const json grid = {{"lr", {1e-3, 3e-4}}, {"model.sigma", {1.5, 2, 3}}};

// A cheap analytic "validation error": smallest at lr = 10^-3.3, sigma = 2.
double bowl(const json& p) {
  const double a = std::log10(p["lr"].get<double>()) + 3.3, b = p["model"]["sigma"].get<double>() - 2;
  return a * a + b * b;
}

struct interrupted : std::runtime_error {
  interrupted() : std::runtime_error("killed") {}
};

}  // namespace

TEST_CASE("tuner: combinations in the documented order, nested keys applied") {
  const auto c = train::grid_combinations(grid);
  REQUIRE(c.size() == 6);
  // Keys alphabetical ("lr" < "model.sigma"), the last one fastest.
  const std::vector<std::pair<double, double>> expected = {{1e-3, 1.5}, {1e-3, 2}, {1e-3, 3},
                                                           {3e-4, 1.5}, {3e-4, 2}, {3e-4, 3}};
  for (std::size_t i = 0; i < c.size(); ++i) {
    CHECK(c[i]["lr"].get<double>() == expected[i].first);
    CHECK(c[i]["model.sigma"].get<double>() == expected[i].second);
  }
  const auto p = train::apply_overrides(base, c[4]);
  CHECK(p["lr"].get<double>() == 3e-4);
  CHECK(p["model"]["sigma"].get<double>() == 2);
  CHECK(p["model"]["depth"] == 3);  // untouched keys stay
  CHECK(p["epochs"] == 5);
  CHECK(train::apply_overrides(json::object(), {{"a.b.c", 1}}) == json({{"a", {{"b", {{"c", 1}}}}}}));
  CHECK(train::grid_combinations(json::object()) == std::vector<json>{json::object()});  // one sweep: the base

  CHECK_THROWS_WITH_AS(train::apply_overrides(base, {{"epochs.x", 1}}), doctest::Contains("epochs.x"), error);
  CHECK_THROWS_WITH_AS(train::grid_combinations({{"lr", 0.1}}), doctest::Contains("'lr' must be a non-empty list"), error);
  CHECK_THROWS_WITH_AS(train::grid_combinations({{"lr", json::array()}}), doctest::Contains("lr"), error);
  CHECK_THROWS_AS(train::grid_combinations(json::array({1, 2})), error);
  CHECK_THROWS_WITH_AS(train::grid_combinations({{"a..b", {1}}}), doctest::Contains("empty part"), error);
  json huge = json::object();
  for (int k = 0; k < 6; ++k) huge[std::string(1, static_cast<char>('a' + k))] = json::array({1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  CHECK_THROWS_WITH_AS(train::grid_combinations(huge), doctest::Contains("combinations"), error);
}

TEST_CASE("tuner: finds the best sweep, writes every folder and the summaries") {
  const auto root = test::scratch("tuner_best") / "tune";
  int calls = 0;
  std::vector<double> seen;
  const auto r = train::run_grid_search(root, base, grid, [&](const json& p, const fs::path& dir) {
    ++calls;
    CHECK(fs::is_directory(dir));
    CHECK(train::read_json(dir / "sweep_parameters.json") == p);  // written before the sweep runs
    seen.push_back(bowl(p));
    return bowl(p);
  });
  CHECK(calls == 6);
  // Brute force over the grid for the expected best.
  std::size_t expected = 0;
  for (std::size_t i = 1; i < seen.size(); ++i)
    if (seen[i] < seen[expected]) expected = i;
  REQUIRE(r.best.has_value());
  CHECK(*r.best == expected);
  CHECK(*r.best == 4);  // lr 3e-4, sigma 2
  const auto best = train::read_json(root / "best_sweep_parameters.json");
  CHECK(best == train::apply_overrides(base, {{"lr", 3e-4}, {"model.sigma", 2}}));
  const auto table = train::read_json(root / "tuning_results.json");
  CHECK(table["best"]["index"] == 4);
  REQUIRE(table["sweeps"].size() == 6);
  for (std::size_t i = 0; i < 6; ++i) {
    CHECK(table["sweeps"][i]["status"] == "done");
    CHECK(table["sweeps"][i]["folder"] == "Sweep_" + std::to_string(i));
    CHECK(table["sweeps"][i]["metric"].get<double>() == doctest::Approx(seen[i]));
    const auto result = train::read_json(root / ("Sweep_" + std::to_string(i)) / "result.json");
    CHECK(result["status"] == "done");
    CHECK(result["metric"].get<double>() == doctest::Approx(seen[i]));
  }
}

TEST_CASE("tuner: resume skips finished sweeps and reruns the interrupted one") {
  const auto root = test::scratch("tuner_resume") / "tune";
  int calls = 0;
  // Session 1 is "killed" during sweep 3: sweeps 0-2 finished, Sweep_3 exists without result.json.
  CHECK_THROWS_AS(train::run_grid_search(root, base, grid,
                                         [&](const json& p, const fs::path&) {
                                           if (++calls == 4) throw interrupted();
                                           return bowl(p);
                                         }),
                  interrupted);
  CHECK(fs::exists(root / "Sweep_3" / "sweep_parameters.json"));
  CHECK(!fs::exists(root / "Sweep_3" / "result.json"));
  CHECK(!fs::exists(root / "Sweep_4"));

  calls = 0;
  std::vector<train::tuning_progress> progress;
  train::tuner_options options;
  options.on_progress = [&](const train::tuning_progress& p) { progress.push_back(p); };
  std::vector<double> metrics_run;
  const auto r = train::run_grid_search(
      root, base, grid,
      [&](const json& p, const fs::path&) {
        ++calls;
        metrics_run.push_back(bowl(p));
        return bowl(p);
      },
      options);
  CHECK(calls == 3);  // sweeps 3, 4, 5
  CHECK(r.best == std::optional<std::size_t>(4));
  CHECK(r.sweeps[0].reused);
  CHECK(!r.sweeps[3].reused);
  CHECK(r.sweeps[1].metric == doctest::Approx(bowl(train::apply_overrides(base, r.sweeps[1].overrides))));
  REQUIRE(progress.size() == 6);
  CHECK(progress[0].reused);
  CHECK(progress[0].finished == 3);
  CHECK(std::isnan(progress[3].eta_seconds));  // nothing run in this session yet
  CHECK(!progress[3].reused);
  CHECK(std::isfinite(progress[4].eta_seconds));
  CHECK(progress[5].sweep == 5);
  CHECK(progress[5].sweeps == 6);
  CHECK(progress[5].finished == 5);

  calls = 0;
  train::run_grid_search(root, base, grid, [&](const json& p, const fs::path&) { return ++calls, bowl(p); });
  CHECK(calls == 0);  // all done

  // A different grid in the same folder is refused, naming the file.
  CHECK_THROWS_WITH_AS(train::run_grid_search(root, base, {{"lr", {1e-2}}, {"model.sigma", {1.5}}},
                                              [](const json&, const fs::path&) { return 0.0; }),
                       doctest::Contains("Sweep_0"), error);
}

TEST_CASE("tuner: a failing sweep is recorded and the others go on") {
  const auto root = test::scratch("tuner_failure") / "tune";
  int calls = 0;
  const auto failing = [&](const json& p, const fs::path&) -> double {
    ++calls;
    if (p["model"]["sigma"].get<double>() == 2 && p["lr"].get<double>() == 3e-4) throw error("Sweep", "diverged at epoch 3");
    if (p["model"]["sigma"].get<double>() == 3 && p["lr"].get<double>() == 1e-3) return std::nan("");
    return bowl(p);
  };
  const auto r = train::run_grid_search(root, base, grid, failing);
  CHECK(calls == 6);
  CHECK(!r.sweeps[4].done);
  CHECK(r.sweeps[4].error.find("diverged at epoch 3") != std::string::npos);
  CHECK(!r.sweeps[2].done);  // NaN metric
  REQUIRE(r.best.has_value());
  CHECK(*r.best == 1);  // lr 1e-3, sigma 2 is the best of the rest
  const auto result = train::read_json(root / "Sweep_4" / "result.json");
  CHECK(result["status"] == "failed");
  CHECK(result["metric"].is_null());
  CHECK(result["error"].get<std::string>().find("diverged") != std::string::npos);
  const auto table = train::read_json(root / "tuning_results.json");
  CHECK(table["sweeps"][4]["status"] == "failed");
  CHECK(table["best"]["index"] == 1);

  // Resume without retrying failures: nothing runs. With retry (the default): the two failed ones run.
  calls = 0;
  train::tuner_options keep;
  keep.retry_failed = false;
  train::run_grid_search(root, base, grid, failing, keep);
  CHECK(calls == 0);
  calls = 0;
  const auto again = train::run_grid_search(root, base, grid, [&](const json& p, const fs::path&) { return ++calls, bowl(p); });
  CHECK(calls == 2);
  CHECK(again.best == std::optional<std::size_t>(4));
  CHECK(train::read_json(root / "Sweep_4" / "result.json")["status"] == "done");
}

TEST_CASE("tuner: every sweep failing leaves no best, and corrupt results are named") {
  const auto root = test::scratch("tuner_all_fail") / "tune";
  const auto r = train::run_grid_search(root, base, {{"lr", {1e-3, 1e-4}}},
                                        [](const json&, const fs::path&) -> double { throw error("x", "no"); });
  CHECK(!r.best.has_value());
  CHECK(!fs::exists(root / "best_sweep_parameters.json"));
  CHECK(train::read_json(root / "tuning_results.json")["best"].is_null());

  io::write_text_atomically(root / "Sweep_0" / "result.json", "{\"status\": \"done\"}");
  CHECK_THROWS_WITH_AS(train::run_grid_search(root, base, {{"lr", {1e-3, 1e-4}}},
                                              [](const json&, const fs::path&) { return 1.0; }),
                       doctest::Contains("Sweep_0/result.json"), error);
}
