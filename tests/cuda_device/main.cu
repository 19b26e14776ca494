// The device-mode test runner: the cuda tests (tests/cuda, compiled by nvcc) and the cudnn tests
// (tests/cuda_device) on a real GPU. Without one nothing can run: say so and succeed, since the same
// kernels' emulated tests ran in cuda_emulated.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#ifndef MICROCOUNT_CUDA_ARCHITECTURES
#define MICROCOUNT_CUDA_ARCHITECTURES "sm_80/sm_90"
#endif

#include "microcount/backends/cuda/runtime.cuh"

int main(int argc, char** argv) {
  std::printf("microcount_cuda_device_tests: %s\n", microcount::cuda::describe_device().c_str());
  if (microcount::cuda::device_count() == 0) {
    std::printf("no GPU: device tests skipped (the kernels were compiled for %s; their emulated tests ran in cuda_emulated)\n",
                MICROCOUNT_CUDA_ARCHITECTURES);
    return 0;
  }
  doctest::Context context(argc, argv);
  return context.run();
}
