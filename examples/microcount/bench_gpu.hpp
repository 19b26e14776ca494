#pragma once
// `microcount bench`'s timing, shared by its two halves: cmd_bench.cpp (host backends, g++) and
// bench_gpu.cu (the GPU side, compiled by nvcc and linked only when the program is built with
// MICROCOUNT_WITH_CUDA; then MICROCOUNT_BENCH_GPU is defined). bench_gpu's interface has plain types only,
// so the g++ translation units need no CUDA header.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "microcount/core/rng.hpp"
#include "microcount/nn/loss.hpp"
#include "microcount/nn/models/unet.hpp"
#include "microcount/nn/optim.hpp"

namespace microcount::cli {

struct gpu_bench_result {
  std::int64_t params = 0;
  std::string device;  // cuda::describe_device()
  double infer_images_per_s = 0, train_steps_per_s = 0, train_images_per_s = 0;
  double peak_device_mb = 0;  // device memory in use after the runs (cudaMemGetInfo)
};

// Times the reference U-Net (inference, and forward + MSE + backward + Adam) on the GPU with backend
// "cuda" or "cudnn", after one warm-up each. Throws microcount::error("microcount bench", "no CUDA device:
// <describe_device()>") without a GPU, and for an unknown backend.
gpu_bench_result bench_gpu(const std::string& backend, std::int64_t batch, std::int64_t size, int iters);

using reference_unet = nn::unet2d<nn::norm::batch, nn::up::transposed, 3>;

struct unet_timing {
  index_t params = 0;
  double infer_seconds = 0, train_seconds = 0;  // per batch
};

// The bench itself, the same on every backend: the reference U-Net (../shared/bench/README.md) on inputs
// x ~ N(0, 1) and targets y ~ U(0, 1) from rng(0) (the same values everywhere), inference and a training
// step each timed over `iters` runs after one warm-up. wait() ends every timed interval
// (cuda::synchronize on a GPU, nothing on the host), so the clock measures finished work. Returns
// report(unet_timing), called while the network, data and optimizer still live, so that memory read
// there counts them.
template <class B, class Wait, class Report>
auto time_reference_unet(index_t batch, index_t size, int iters, Wait wait, Report report) {
  using clock = std::chrono::steady_clock;
  rng r(0);
  auto net = reference_unet::make<B>({});
  const shape in{batch, 1, size, size};
  net.build(in, r);
  tensor<float, B> x(in), y(in);  // [N, 1, H, W] each
  if constexpr (B::host_memory) {
    for (index_t i = 0; i < x.size(); ++i) {
      x[i] = static_cast<float>(r.normal());
      y[i] = static_cast<float>(r.uniform());
    }
  } else {  // drawn on the host in the same order, uploaded once
    std::vector<float> x_host(static_cast<std::size_t>(in.size())), y_host(x_host.size());  // [N, 1, H, W] each
    for (std::size_t i = 0; i < x_host.size(); ++i) {
      x_host[i] = static_cast<float>(r.normal());
      y_host[i] = static_cast<float>(r.uniform());
    }
    x.upload(x_host.data());
    y.upload(y_host.data());
  }

  auto seconds_per = [&](auto&& body) {
    body();  // warm-up: first allocations, cuDNN algorithm choice and workspaces
    wait();
    const auto t0 = clock::now();
    for (int i = 0; i < iters; ++i) body();
    wait();
    return std::chrono::duration<double>(clock::now() - t0).count() / iters;
  };

  net.set_mode(nn::mode::evaluation);
  const double infer = seconds_per([&] { auto out = net.forward(x); });

  net.set_mode(nn::mode::training);
  nn::adam<B> opt(nn::parameters_of(net), {.lr = 1e-3});
  nn::mse_loss mse;
  const double train = seconds_per([&] {
    auto out = net.forward(x);
    auto loss = mse.evaluate(out, y);
    net.backward(loss.gradient);
    opt.step();
  });
  return report(unet_timing{nn::parameter_count(net), infer, train});
}

}  // namespace microcount::cli
