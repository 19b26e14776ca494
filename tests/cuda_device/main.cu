// The device-mode test runner: the cuda tests (tests/cuda, compiled by nvcc) and the cudnn tests
// (tests/cuda_device) on a real GPU. Without one nothing can run: say so and succeed, since the same
// kernels' emulated tests ran in cuda_emulated.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <string_view>

#ifndef MICROCOUNT_CUDA_ARCHITECTURES
#define MICROCOUNT_CUDA_ARCHITECTURES "sm_80/sm_90"
#endif

#include "microcount/backends/cuda/runtime.cuh"

// doctest's listing options (-ltc, --list-test-cases, ...) run no test: they work without a GPU too.
bool only_listing(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a(argv[i]);
    if (a.starts_with("--list") || a.starts_with("-ltc") || a.starts_with("-lts") || a.starts_with("-lr")) return true;
  }
  return false;
}

int main(int argc, char** argv) {
  std::printf("microcount_cuda_device_tests: %s\n", microcount::cuda::describe_device().c_str());
  if (microcount::cuda::device_count() == 0 && !only_listing(argc, argv)) {
    std::printf("no GPU: device tests skipped (the kernels were compiled for %s; their emulated tests ran in cuda_emulated)\n",
                MICROCOUNT_CUDA_ARCHITECTURES);
    return 0;
  }
  doctest::Context context(argc, argv);
  return context.run();
}
