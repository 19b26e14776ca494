// The detection pipeline of the program (one network per translation unit).
#include "microcount/backends/cpu.hpp"
#include "microcount/train/any_pipeline.hpp"
#include "microcount/train/explain.hpp"
#include "pipelines.hpp"

namespace microcount::cli {

using detection_pipeline = train::pipeline<train::heads::detection, nn::unet2d<nn::norm::batch, nn::up::transposed, 3>, backend::cpu>;

std::unique_ptr<train::any_pipeline> make_detection_pipeline(const train::hyperparameters& hp, std::vector<std::string> labels,
                                                          index_t channels) {
  return std::make_unique<train::pipeline_holder<detection_pipeline>>(hp, std::move(labels), channels);
}

}  // namespace microcount::cli
