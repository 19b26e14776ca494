// Rebuilding a pipeline from a checkpoint or a run folder.
#include <filesystem>

#include "pipelines.hpp"

namespace microcount::cli {

namespace {
// RUN_DIR, RUN_DIR/TrainingRun or a .mcm file -> the checkpoint to load (best model first).
std::filesystem::path checkpoint_of(const std::filesystem::path& model) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_regular_file(model, ec)) return model;
  require(fs::is_directory(model, ec), model.string(), "no such model (give a run folder or a .mcm checkpoint)");
  for (const fs::path rel : {"checkpoints/best_model.mcm", "TrainingRun/checkpoints/best_model.mcm",
                             "checkpoints/latest_model.mcm", "TrainingRun/checkpoints/latest_model.mcm"})
    if (fs::is_regular_file(model / rel, ec)) return model / rel;
  throw error(model.string(), "holds no checkpoints/best_model.mcm (is it a microcount run folder?)");
}
}  // namespace

std::unique_ptr<train::any_pipeline> load_pipeline(const std::filesystem::path& model, std::filesystem::path* resolved) {
  const auto path = checkpoint_of(model);
  const auto info = train::read_checkpoint_info(path);
  auto p = make_pipeline(info.hp, info.labels, info.channels);
  p->load(path);
  if (resolved) *resolved = path;
  return p;
}

}  // namespace microcount::cli
