// The density pipeline of the program (one network per translation unit).
#include "microcount/backends/cpu.hpp"
#include "microcount/train/any_pipeline.hpp"
#include "microcount/train/explain.hpp"
#include "pipelines.hpp"

namespace microcount::cli {

using density_pipeline = train::pipeline<train::heads::density, nn::unet2d<nn::norm::batch, nn::up::transposed, 3>, backend::cpu>;

std::unique_ptr<train::any_pipeline> make_density_pipeline(const train::hyperparameters& hp, std::vector<std::string> labels,
                                                          index_t channels) {
  return std::make_unique<train::pipeline_holder<density_pipeline>>(hp, std::move(labels), channels);
}

}  // namespace microcount::cli
