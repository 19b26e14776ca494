// `microcount bench --backend cuda|cudnn`: the same reference U-Net timing as cmd_bench.cpp, on the GPU.
// Inputs are made on the host (same values as the cpu run) and uploaded once; every timed interval ends
// with a device synchronisation, so the wall clock measures finished GPU work.
#include <chrono>
#include <vector>

#include "bench_gpu.hpp"
#include "microcount/backends/cudnn.hpp"
#include "microcount/core/error.hpp"
#include "microcount/core/rng.hpp"
#include "microcount/nn/loss.hpp"
#include "microcount/nn/models/unet.hpp"
#include "microcount/nn/optim.hpp"

namespace microcount::cli {
namespace {

using reference_unet = nn::unet2d<nn::norm::batch, nn::up::transposed, 3>;

template <class B>
gpu_bench_result run_on(index_t batch, index_t size, int iters) {
  using clock = std::chrono::steady_clock;
  rng r(0);
  auto net = reference_unet::make<B>({});
  const shape in{batch, 1, size, size};
  net.build(in, r);
  std::vector<float> x_host(static_cast<std::size_t>(in.size())), y_host(x_host.size());  // [N, 1, H, W] each
  for (std::size_t i = 0; i < x_host.size(); ++i) {
    x_host[i] = static_cast<float>(r.normal());
    y_host[i] = static_cast<float>(r.uniform());
  }
  tensor<float, B> x(in), y(in);
  x.upload(x_host.data());
  y.upload(y_host.data());

  auto seconds_per = [&](auto&& body) {
    body();  // warm-up: cuDNN algorithm choice, workspaces, first allocations
    cuda::synchronize();
    const auto t0 = clock::now();
    for (int i = 0; i < iters; ++i) body();
    cuda::synchronize();
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

  std::size_t free_bytes = 0, total_bytes = 0;
  MICROCOUNT_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  gpu_bench_result result;
  result.params = nn::parameter_count(net);
  result.device = cuda::describe_device();
  result.infer_images_per_s = double(batch) / infer;
  result.train_steps_per_s = 1.0 / train;
  result.train_images_per_s = double(batch) / train;
  result.peak_device_mb = double(total_bytes - free_bytes) / (1024.0 * 1024.0);
  return result;
}

}  // namespace

gpu_bench_result bench_gpu(const std::string& backend, std::int64_t batch, std::int64_t size, int iters) {
  if (backend != "cuda" && backend != "cudnn")
    throw error("microcount bench", "unknown GPU backend '" + backend + "' (cuda, cudnn)");
  if (cuda::device_count() == 0) {
    const std::string why = cuda::describe_device();  // "no CUDA device (<runtime status>)" when the runtime says why
    throw error("microcount bench", why.rfind("no CUDA device", 0) == 0 ? why : "no CUDA device: " + why);
  }
  return backend == "cuda" ? run_on<backend::cuda>(batch, size, iters) : run_on<backend::cudnn>(batch, size, iters);
}

}  // namespace microcount::cli
