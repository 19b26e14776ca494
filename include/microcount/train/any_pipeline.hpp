#pragma once
// A pipeline chosen at run time. The pipelines themselves are compile-time types; a program that lets
// its user pick the head (or reads it from a checkpoint) holds one of its compiled-in choices behind
// this interface:
//
//   std::unique_ptr<train::any_pipeline> p = std::make_unique<train::pipeline_holder<my_pipeline>>(hp, labels, channels);
//
// Put each holder's instantiation in its own translation unit: each compiles one network.
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "microcount/data/dataset.hpp"
#include "microcount/data/split.hpp"
#include "microcount/io/checkpoint.hpp"
#include "microcount/io/image.hpp"
#include "microcount/train/heads.hpp"
#include "microcount/train/hyperparameters.hpp"
#include "microcount/train/trainer.hpp"

namespace microcount::train {

using progress_fn = std::function<void(index_t done, index_t total)>;

class any_pipeline {
 public:
  virtual ~any_pipeline() = default;
  [[nodiscard]] virtual std::string architecture() const = 0;
  [[nodiscard]] virtual bool has_points() const = 0;  // dense heads find points; regression does not
  [[nodiscard]] virtual const hyperparameters& hp() const = 0;
  [[nodiscard]] virtual const std::vector<std::string>& labels() const = 0;
  [[nodiscard]] virtual index_t channels() const = 0;
  [[nodiscard]] virtual std::int64_t parameters() = 0;

  virtual training_result fit(const data::dataset& ds, const data::split_indices& split, const training_options& o) = 0;
  virtual image_prediction predict(const io::image& im, const progress_fn& progress = nullptr) = 0;
  // Grad-CAM of class `label` for one image: [H, W] in [0, 1]; empty when the build has no Grad-CAM.
  virtual xt::xtensor<float, 2> gradcam(const io::image& im, int label) = 0;
  virtual io::checkpoint_header load(const std::filesystem::path& checkpoint) = 0;
  virtual void save(const std::filesystem::path& checkpoint, const io::training_position& position, bool with_optimizer) = 0;
};

// The hyperparameters, labels and channel count a checkpoint was trained with.
struct checkpoint_info {
  hyperparameters hp;
  std::vector<std::string> labels;
  index_t channels = 1;
  std::string architecture;
  io::training_position position;
};

inline checkpoint_info read_checkpoint_info(const std::filesystem::path& path) {
  io::checkpoint_file file(path);
  const auto h = file.read_header();
  checkpoint_info info;
  info.architecture = h.architecture;
  info.position = h.position;
  try {
    info.hp = from_json(h.metadata.at("hyperparameters"), {}, path.string());
    info.labels = h.metadata.at("labels").get<std::vector<std::string>>();
    info.channels = h.metadata.at("channels").get<index_t>();
  } catch (const nlohmann::json::exception& e) {
    throw error(path.string(), std::string("checkpoint was not written by a microcount pipeline: ") + e.what());
  }
  return info;
}

// Hooks a holder calls for what lives outside the pipeline (Grad-CAM), so this header does not need them.
template <class P>
struct pipeline_extras {
  static xt::xtensor<float, 2> gradcam(P&, const io::image&, int) { return {}; }
};

template <class P>
class pipeline_holder final : public any_pipeline {
 public:
  pipeline_holder(const hyperparameters& hp, std::vector<std::string> labels, index_t channels)
      : p_(hp, std::move(labels), channels) {}
  P& get() { return p_; }
  [[nodiscard]] std::string architecture() const override { return P::architecture(); }
  [[nodiscard]] bool has_points() const override { return P::head_type::dense; }
  [[nodiscard]] const hyperparameters& hp() const override { return p_.hp(); }
  [[nodiscard]] const std::vector<std::string>& labels() const override { return p_.labels(); }
  [[nodiscard]] index_t channels() const override { return p_.channels(); }
  [[nodiscard]] std::int64_t parameters() override { return nn::parameter_count(p_.network()); }
  training_result fit(const data::dataset& ds, const data::split_indices& split, const training_options& o) override {
    return train::fit(p_, ds, split, o);
  }
  image_prediction predict(const io::image& im, const progress_fn& progress) override { return p_.predict(im, progress); }
  xt::xtensor<float, 2> gradcam(const io::image& im, int label) override { return pipeline_extras<P>::gradcam(p_, im, label); }
  io::checkpoint_header load(const std::filesystem::path& checkpoint) override { return p_.load(checkpoint); }
  void save(const std::filesystem::path& checkpoint, const io::training_position& position, bool with_optimizer) override {
    p_.save(checkpoint, position, with_optimizer);
  }

 private:
  P p_;
};

}  // namespace microcount::train
