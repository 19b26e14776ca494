// `microcount bench --backend cuda|cudnn`: the reference U-Net timing of cmd_bench.cpp (time_reference_unet,
// bench_gpu.hpp) on the GPU. Inputs are made on the host (same values as the cpu run) and uploaded once;
// every timed interval ends with a device synchronisation, so the wall clock measures finished GPU work.
#include "bench_gpu.hpp"
#include "microcount/backends/cudnn.hpp"
#include "microcount/core/error.hpp"

namespace microcount::cli {
namespace {

template <class B>
gpu_bench_result run_on(index_t batch, index_t size, int iters) {
  return time_reference_unet<B>(batch, size, iters, [] { cuda::synchronize(); }, [&](const unet_timing& t) {
    std::size_t free_bytes = 0, total_bytes = 0;
    MICROCOUNT_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    gpu_bench_result result;
    result.params = t.params;
    result.device = cuda::describe_device();
    result.infer_images_per_s = double(batch) / t.infer_seconds;
    result.train_steps_per_s = 1.0 / t.train_seconds;
    result.train_images_per_s = double(batch) / t.train_seconds;
    result.peak_device_mb = double(total_bytes - free_bytes) / (1024.0 * 1024.0);
    return result;
  });
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
