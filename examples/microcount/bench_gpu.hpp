#pragma once
// The GPU side of `microcount bench` (bench_gpu.cu, compiled by nvcc and linked only when the program is
// built with MICROCOUNT_WITH_CUDA; then MICROCOUNT_BENCH_GPU is defined). Plain types only, so the g++
// translation units need no CUDA header.
#include <cstdint>
#include <string>

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

}  // namespace microcount::cli
