// The whole reference U-Net (../shared/bench: unet2d, BatchNorm, transposed-conv decoder, depth 3, base
// width 16, 482,449 parameters) trained through backend::cuda on the host emulator, step for step against
// the reference backend: same initial weights, same losses, same weights after Adam steps, same
// evaluation output (BatchNorm folded), and a checkpoint written from cuda memory reloads on the host.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "cuda_test_support.hpp"
#include "microcount/io/checkpoint.hpp"
#include "microcount/nn/loss.hpp"
#include "microcount/nn/models/unet.hpp"
#include "microcount/nn/optim.hpp"
#include "test_support.hpp"

using namespace cuda_test;

namespace {

using reference_unet = nn::unet2d<nn::norm::batch, nn::up::transposed, 3>;

// All parameters and buffers of a network, as host vectors in visiting order.
template <class Net>
std::vector<std::vector<float>> weights_of(Net& net) {
  std::vector<std::vector<float>> w;
  net.for_each_parameter([&](const auto& p) { w.push_back(p.value->to_vector()); });
  net.for_each_buffer([&](std::string_view, const auto& t) { w.push_back(t.to_vector()); });
  return w;
}

// Parameter gradients as host vectors in visiting order.
template <class Net>
std::vector<std::vector<float>> gradients_of(Net& net) {
  std::vector<std::vector<float>> g;
  net.for_each_parameter([&](const auto& p) { g.push_back(p.grad->to_vector()); });
  return g;
}

// max over tensors of max |a − b| / max |a|: gradients are compared at the scale of their own tensor
// (many elements are near zero, where a relative error says nothing).
double worst_gradients(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
  REQUIRE(a.size() == b.size());
  double w = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a[i].size() == b[i].size());
    double scale = 0, diff = 0;
    for (std::size_t j = 0; j < a[i].size(); ++j) {
      scale = std::max(scale, std::abs(double(a[i][j])));
      diff = std::max(diff, std::abs(double(a[i][j]) - double(b[i][j])));
    }
    w = std::max(w, scale > 0 ? diff / scale : diff);
  }
  return w;
}

double worst_weights(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
  REQUIRE(a.size() == b.size());
  double w = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a[i].size() == b[i].size());
    for (std::size_t j = 0; j < a[i].size(); ++j)
      w = std::max(w, std::abs(double(a[i][j]) - double(b[i][j])) / (1.0 + std::abs(double(a[i][j]))));
  }
  return w;
}

}  // namespace

TEST_CASE("cuda (emulated): the reference U-Net trains step for step like the reference backend") {
  rng init_ref(7), init_dev(7), data(11);
  auto net_ref = reference_unet::make<ref>({});
  auto net_dev = reference_unet::make<dev>({});
  const shape in{2, 1, 32, 32};  // [N, C, H, W]: small, divisible by 2^3
  net_ref.build(in, init_ref);
  net_dev.build(in, init_dev);
  CHECK(nn::parameter_count(net_dev) == 482449);
  CHECK(worst_weights(weights_of(net_ref), weights_of(net_dev)) == 0);  // initialised from the same host draws

  const ref_t x = random_tensor(in, data, -1, 1);     // [2, 1, 32, 32]
  const ref_t target = random_tensor(in, data, 0, 1);  // [2, 1, 32, 32]
  const device_t x_dev = to_device(x), target_dev = to_device(target);

  nn::adam<ref> opt_ref(nn::parameters_of(net_ref), {.lr = 1e-3});
  nn::adam<dev> opt_dev(nn::parameters_of(net_dev), {.lr = 1e-3});
  nn::mse_loss mse;
  net_ref.set_mode(nn::mode::training);
  net_dev.set_mode(nn::mode::training);
  for (int step = 0; step < 3; ++step) {
    CAPTURE(step);
    const ref_t y_ref = net_ref.forward(x);
    const device_t y_dev = net_dev.forward(x_dev);
    CHECK(worst(y_ref, y_dev) < 1e-4);
    auto loss_ref = mse.evaluate(y_ref, target);
    auto loss_dev = mse.evaluate(y_dev, target_dev);
    CHECK(loss_dev.value == doctest::Approx(loss_ref.value).epsilon(1e-5));
    CHECK(worst(loss_ref.gradient, loss_dev.gradient) < 1e-5);
    const ref_t dx_ref = net_ref.backward(loss_ref.gradient);
    const device_t dx_dev = net_dev.backward(loss_dev.gradient);
    CHECK(worst(dx_ref, dx_dev) < 1e-4);
    CHECK(worst_gradients(gradients_of(net_ref), gradients_of(net_dev)) < 1e-4);
    opt_ref.step();
    opt_dev.step();
    // Adam moves every weight by about lr·sign(g) at first, so a gradient element that is ~0 on both
    // backends may move in different directions: weights agree within a fraction of lr (1e-3).
    CHECK(worst_weights(weights_of(net_ref), weights_of(net_dev)) < 5e-4);
  }

  // Evaluation: BatchNorm folded into the convolutions from the running statistics both backends kept.
  net_ref.set_mode(nn::mode::evaluation);
  net_dev.set_mode(nn::mode::evaluation);
  const ref_t eval_ref = net_ref.forward(x);
  CHECK(worst(eval_ref, net_dev.forward(x_dev)) < 1e-4);

  // A checkpoint written from device memory reloads into a host network with the same output.
  const auto path = test::scratch("cuda_unet") / "unet.mcm";
  io::checkpoint_state<dev> state_dev;
  state_dev.add_model(net_dev);
  io::checkpoint_header head;
  head.architecture = "unet2d<batch,transposed,3>";
  io::save_checkpoint(path, state_dev, head);
  rng other(99);
  auto reloaded = reference_unet::make<ref>({});
  reloaded.build(in, other);
  io::checkpoint_state<ref> state_ref;
  state_ref.add_model(reloaded);
  io::checkpoint_file(path).load_into(state_ref, head.architecture);
  reloaded.set_mode(nn::mode::evaluation);
  CHECK(worst_weights(weights_of(reloaded), weights_of(net_dev)) == 0);
  CHECK(worst(eval_ref, reloaded.forward(x)) < 1e-4);
}
