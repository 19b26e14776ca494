// The counting pipeline, unchanged, on backend::cuda (host emulator): train::fit of the density pipeline
// for two epochs (batches staged on the host and uploaded, validation through tiled prediction,
// checkpoints written from device memory) ends with the weights and predictions of the same run on the
// reference backend; the best checkpoint loads into a host pipeline.
#include <doctest/doctest.h>

#include <cmath>

#include "cuda_test_support.hpp"
#include "microcount/data/synth.hpp"
#include "microcount/train/trainer.hpp"
#include "train/pipeline_test_support.hpp"

using namespace cuda_test;

namespace {

template <class B>
using counter = train::pipeline<train::heads::density, nn::unet2d<nn::norm::batch, nn::up::transposed, 2>, B>;

train::hyperparameters small_hp() { return test::small_unet_hyperparameters(/*epochs=*/2, /*seed=*/5); }

const std::filesystem::path& synthetic_folder() {
  return test::synthetic_folder("cuda_pipeline_data", [](data::synth_options& o) {
    o.images = 6;
    o.height = 40;
    o.width = 52;  // not a multiple of 4: validation pads and crops
    o.min_cells = 3;
    o.max_cells = 8;
    o.seed = 4;
  });
}

template <class P>
std::vector<float> weights_of(P& p) {
  std::vector<float> w;
  p.network().for_each_parameter([&](const auto& q) {
    const auto v = q.value->to_vector();
    w.insert(w.end(), v.begin(), v.end());
  });
  return w;
}

}  // namespace

TEST_CASE("cuda (emulated): the density pipeline trains, validates and predicts like the reference backend") {
  const auto ds = data::open_dataset(synthetic_folder());
  const data::split_indices split{{0, 1, 2, 3}, {4}, {5}};
  counter<ref> host(small_hp(), ds.labels(), 1);
  counter<dev> device(small_hp(), ds.labels(), 1);
  train::training_options o_host, o_dev;
  o_host.checkpoints = test::scratch("cuda_pipeline_host") / "checkpoints";
  o_dev.checkpoints = test::scratch("cuda_pipeline_device") / "checkpoints";
  const auto r_host = train::fit(host, ds, split, o_host);
  const auto r_dev = train::fit(device, ds, split, o_dev);
  REQUIRE(r_dev.epochs.size() == r_host.epochs.size());
  for (std::size_t e = 0; e < r_host.epochs.size(); ++e) {
    CAPTURE(e);
    CHECK(r_dev.epochs[e].train_loss == doctest::Approx(r_host.epochs[e].train_loss).epsilon(1e-4));
    CHECK(r_dev.epochs[e].val_loss == doctest::Approx(r_host.epochs[e].val_loss).epsilon(1e-4));
  }
  const auto w_host = weights_of(host), w_dev = weights_of(device);
  REQUIRE(w_host.size() == w_dev.size());
  double w = 0;
  for (std::size_t i = 0; i < w_host.size(); ++i) w = std::max(w, std::abs(double(w_host[i]) - w_dev[i]) / (1 + std::abs(double(w_host[i]))));
  CHECK(w < 1e-3);

  const io::image im = *ds.image(5);  // the test image, 40×52
  const auto p_host = host.predict(im), p_dev = device.predict(im);
  REQUIRE(p_dev.maps.shape() == p_host.maps.shape());
  double m = 0;
  for (std::size_t i = 0; i < p_host.maps.size(); ++i) m = std::max(m, double(std::abs(p_host.maps.data()[i] - p_dev.maps.data()[i])));
  CHECK(m < 1e-3);
  CHECK(p_dev.counts[0] == doctest::Approx(p_host.counts[0]).epsilon(1e-3));

  // The best checkpoint written from device memory rebuilds a host pipeline with the same predictions.
  counter<ref> loaded(small_hp(), ds.labels(), 1);
  loaded.load(r_dev.best_checkpoint);
  const auto p_loaded = loaded.predict(im);
  CHECK(p_loaded.counts[0] == doctest::Approx(device.predict(im).counts[0]).epsilon(1e-4));
}
