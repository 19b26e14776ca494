// microcount bench: the reference counting U-Net (../shared/bench/README.md) timed for inference and for a
// full training step (forward, MSE, backward, Adam), printed as one JSON line comparable with
// peer_unet_torch.py's.
#include <sys/resource.h>

#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "bench_gpu.hpp"
#include "command.hpp"
#include "microcount/backends/cpu.hpp"
#include "microcount/core/parallel.hpp"

namespace microcount::cli {
namespace {

// A host backend (cpu, reference): one JSON line, peak RSS of the process included.
template <class B>
nlohmann::json run_bench(index_t batch, index_t size, int iters) {
  return time_reference_unet<B>(batch, size, iters, [] {}, [&](const unet_timing& t) -> nlohmann::json {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return {{"params", t.params},
            {"backend", B::name},
            {"threads", max_threads()},
            {"batch", batch},
            {"size", size},
            {"iters", iters},
            {"infer_images_per_s", std::round(100.0 * batch / t.infer_seconds) / 100.0},
            {"train_steps_per_s", std::round(1000.0 / t.train_seconds) / 1000.0},
            {"train_images_per_s", std::round(100.0 * batch / t.train_seconds) / 100.0},
            {"peak_rss_mb", usage.ru_maxrss / 1024}};
  });
}

// --backend cuda|cudnn: the same U-Net on the GPU (bench_gpu.cu, nvcc-compiled, only in CUDA builds).
nlohmann::json run_gpu_bench(const std::string& backend, index_t batch, index_t size, int iters) {
#if defined(MICROCOUNT_BENCH_GPU)
  const gpu_bench_result r = bench_gpu(backend, batch, size, iters);
  return {{"params", r.params},
          {"backend", backend},
          {"device", r.device},
          {"batch", batch},
          {"size", size},
          {"iters", iters},
          {"infer_images_per_s", std::round(100.0 * r.infer_images_per_s) / 100.0},
          {"train_steps_per_s", std::round(1000.0 * r.train_steps_per_s) / 1000.0},
          {"train_images_per_s", std::round(100.0 * r.train_images_per_s) / 100.0},
          {"device_memory_mb", std::round(r.peak_device_mb)}};
#else
  throw error("microcount bench", "--backend " + backend +
                                      ": built without CUDA (configure with -DMICROCOUNT_WITH_CUDA=ON and nvcc installed)");
#endif
}

int bench(const std::vector<std::string>& args) {
  const arguments a(args);
  a.allow_only({"threads", "batch", "size", "iters", "backend"});
  const auto threads = a.integer("threads", 2), batch = a.integer("batch", 8), size = a.integer("size", 256);
  const auto iters = a.integer("iters", 5);
  const std::string backend = a.get("backend", "cpu");
  require(threads >= 1 && batch >= 1 && iters >= 1, "microcount bench", "--threads, --batch and --iters must be positive");
  require(size >= 8 && size % 8 == 0, "microcount bench", "--size must be a multiple of 8 (three 2x2 poolings)");
  set_threads(static_cast<int>(threads));
  nlohmann::json out;
  if (backend == "cpu") out = run_bench<backend::cpu>(batch, size, static_cast<int>(iters));
  else if (backend == "reference") out = run_bench<backend::reference>(batch, size, static_cast<int>(iters));
  else if (backend == "cuda" || backend == "cudnn") out = run_gpu_bench(backend, batch, size, static_cast<int>(iters));
  else throw error("microcount bench", "unknown --backend '" + backend + "' (cpu, reference, cuda, cudnn)");
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

const register_command reg{{"bench", "time the reference U-Net: inference and a training step (JSON)",
                            "usage: microcount bench [--threads 2] [--batch 8] [--size 256] [--iters 5] [--backend cpu|reference|cuda|cudnn]\n"
                            "Builds the reference counting U-Net of ../shared/bench/README.md (482,449 parameters), times\n"
                            "inference (batch norm in evaluation mode) and a training step (forward, MSE, backward, Adam)\n"
                            "after one warm-up each, and prints one JSON line comparable with peer_unet_torch.py.\n"
                            "--backend cuda|cudnn runs the same timing on the GPU (builds with MICROCOUNT_WITH_CUDA only).",
                            bench}};

}  // namespace
}  // namespace microcount::cli
