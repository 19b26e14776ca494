#pragma once
// The pipelines compiled into the `microcount` program, chosen at run time by hyperparameters.head.
// Each lives in its own pipeline_<head>.cpp (one network per translation unit: builds stay parallel).
//
//   density     train::pipeline<heads::density,    nn::unet2d<norm::batch, up::transposed, 3>>
//   detection   train::pipeline<heads::detection,  nn::unet2d<norm::batch, up::transposed, 3>>
//   regression  train::pipeline<heads::regression, nn::count_regressor<2, norm::batch, 3>>
#include <memory>
#include <string>
#include <vector>

#include "microcount/train/any_pipeline.hpp"

namespace microcount::cli {

std::unique_ptr<train::any_pipeline> make_density_pipeline(const train::hyperparameters&, std::vector<std::string>, index_t);
std::unique_ptr<train::any_pipeline> make_detection_pipeline(const train::hyperparameters&, std::vector<std::string>, index_t);
std::unique_ptr<train::any_pipeline> make_regression_pipeline(const train::hyperparameters&, std::vector<std::string>, index_t);

inline std::unique_ptr<train::any_pipeline> make_pipeline(const train::hyperparameters& hp, std::vector<std::string> labels,
                                                          index_t channels) {
  require(hp.depth == 3, "hyperparameters", "this program is compiled with depth 3 (compile another pipeline for depth " +
                                                std::to_string(hp.depth) + ")");
  if (hp.head == "detection") return make_detection_pipeline(hp, std::move(labels), channels);
  if (hp.head == "regression") return make_regression_pipeline(hp, std::move(labels), channels);
  return make_density_pipeline(hp, std::move(labels), channels);
}

// A pipeline rebuilt from a checkpoint (a .mcm file, or a run folder: its best model), weights loaded.
std::unique_ptr<train::any_pipeline> load_pipeline(const std::filesystem::path& model, std::filesystem::path* resolved = nullptr);

}  // namespace microcount::cli
