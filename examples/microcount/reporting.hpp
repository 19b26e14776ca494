#pragma once
// Scoring a model on annotated images and writing what a person looks at: test_results.json / .txt
// and sample pictures (input, truth, prediction, Grad-CAM). Shared by train and evaluate.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "microcount/data/dataset.hpp"
#include "microcount/train/any_pipeline.hpp"
#include "microcount/train/run_folder.hpp"
#include "microcount/train/samples.hpp"
#include "microcount/train/test_results.hpp"
#include "microcount/train/trainer.hpp"

namespace microcount::cli {

// Predicts images `indices` of `ds`, writes dir/test_results.{json,txt} and, for the first `samples`
// images, dir/samples/<image>.png. `say` gets a progress line per image.
inline train::test_results evaluate_into(train::any_pipeline& p, const data::dataset& ds, const std::vector<std::size_t>& indices,
                                         const std::filesystem::path& dir, std::size_t samples,
                                         const std::function<void(const std::string&)>& say = nullptr, double radius = 0) {
  require(!indices.empty(), "evaluate", "no images to evaluate");
  const train::run_layout layout{dir};
  layout.create_directories();
  std::vector<train::image_result> results;
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t n = 0; n < indices.size(); ++n) {
    const std::size_t i = indices[n];
    const auto image = ds.image(i);
    const auto r = p.predict(*image);
    train::image_result row;
    row.name = ds.name(i);
    row.truth_points = ds.points(i);
    row.predicted_counts = r.counts;
    row.predicted_points = r.points;
    results.push_back(row);
    if (n < samples) {
      train::sample_panel panel;
      panel.title = ds.name(i);
      const auto& px = image->pixels;  // [1, C, H, W]
      panel.image = xt::xtensor<float, 3>::from_shape({px.shape()[1], px.shape()[2], px.shape()[3]});
      std::copy(px.begin(), px.begin() + static_cast<std::ptrdiff_t>(panel.image.size()), panel.image.begin());
      panel.labels = p.labels();
      panel.truth_points = ds.points(i);
      panel.predicted_maps = r.maps;
      panel.predicted_points = r.points;
      panel.predicted_counts = r.counts;
      const auto top = static_cast<int>(std::max_element(r.counts.begin(), r.counts.end()) - r.counts.begin());
      auto cam = p.gradcam(*image, top);
      if (cam.size() > 0) panel.grad_cam = std::move(cam);
      train::write_sample_panel(layout.sample(std::filesystem::path(ds.name(i)).stem().string()), panel);
    }
    if (say) {
      double truth = static_cast<double>(ds.points(i).size()), predicted = 0;
      for (double c : r.counts) predicted += c;
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      char line[256];
      std::snprintf(line, sizeof line, "[%zu/%zu] %s: truth %.0f, predicted %.1f  (%s left)", n + 1, indices.size(), ds.name(i).c_str(),
                    truth, predicted,
                    train::format_duration(elapsed / static_cast<double>(n + 1) * static_cast<double>(indices.size() - n - 1)).c_str());
      say(line);
    }
  }
  train::test_results_options o;
  o.radius = radius > 0 ? radius : p.hp().match_radius;
  o.points_predicted = p.has_points();
  return train::write_test_results(dir, results, p.labels(), o);
}

}  // namespace microcount::cli
