#pragma once
// Launching a kernel body, on the GPU or on the host emulator, and the generic elementwise entry.
//
// A kernel is a functor written once for both:
//   struct scale_kernel {
//     static constexpr const char* name = "scale";
//     float factor;
//     template <class Ctx> MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx, std::int64_t n, float* x) const {
//       const std::int64_t i = std::int64_t(ctx.block_idx().x) * ctx.block_dim().x + ctx.thread_idx().x;
//       if (i < n) x[i] *= factor;
//     }
//   };
//   cuda::launch(scale_kernel{2.f}, {blocks}, {256}, 0, n, x);
// Ctx is device_context on the GPU and emulated_context under the emulator; both offer thread_idx(),
// block_idx(), block_dim(), grid_dim(), sync() (__syncthreads), shared<T>() (dynamic shared memory) and
// atomic_add(p, v). Arguments are passed by value (pointers, sizes, small structs of parameters).
#include <algorithm>
#include <cstdint>

#include "microcount/backends/cuda/runtime.cuh"
#include "microcount/core/elementwise.hpp"

#include "microcount/backends/cuda/kernel_types.cuh"
#if defined(MICROCOUNT_CUDA_MODE_EMULATED)
#include "microcount/backends/cuda/emulator.hpp"
#endif

namespace microcount::cuda {

#if defined(MICROCOUNT_CUDA_MODE_DEVICE)
// What a kernel body sees of its launch on the GPU.
struct device_context {
  __device__ dims3 thread_idx() const { return {threadIdx.x, threadIdx.y, threadIdx.z}; }
  __device__ dims3 block_idx() const { return {blockIdx.x, blockIdx.y, blockIdx.z}; }
  __device__ dims3 block_dim() const { return {blockDim.x, blockDim.y, blockDim.z}; }
  __device__ dims3 grid_dim() const { return {gridDim.x, gridDim.y, gridDim.z}; }
  __device__ void sync() const { __syncthreads(); }
  template <class T>
  __device__ T* shared() const {
    extern __shared__ __align__(16) unsigned char microcount_dynamic_shared[];
    return reinterpret_cast<T*>(microcount_dynamic_shared);
  }
  template <class T>
  __device__ static void atomic_add(T* p, T v) { atomicAdd(p, v); }
};

// The one __global__ entry every kernel body goes through.
template <class Kernel, class... Args>
__global__ void kernel_entry(Kernel kernel, Args... args) {
  kernel(device_context{}, args...);
}
#endif

// kernel<<<grid, block, shared_bytes>>>(args...): on the default stream on the GPU, or on the emulator.
// Launch errors (bad configuration, no device) become microcount::error naming the kernel.
template <class Kernel, class... Args>
void launch(const Kernel& kernel, dims3 grid, dims3 block, std::size_t shared_bytes, const Args&... args) {
#if defined(MICROCOUNT_CUDA_MODE_DEVICE)
  kernel_entry<Kernel, Args...><<<dim3(grid.x, grid.y, grid.z), dim3(block.x, block.y, block.z), shared_bytes>>>(kernel, args...);
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess)
    throw error("cuda", std::string("launch of kernel ") + kernel_name<Kernel>() + " failed: " + cudaGetErrorName(status) +
                            " (" + cudaGetErrorString(status) + ")");
#else
  emulate(kernel, grid, block, shared_bytes, args...);
#endif
}

// Blocks for n independent items at `threads` per block (at least one block).
inline dims3 blocks_for(std::int64_t n, unsigned threads = 256) {
  const std::int64_t b = std::max<std::int64_t>(1, (n + threads - 1) / threads);
  return {static_cast<unsigned>(std::min<std::int64_t>(b, std::int64_t(1) << 30)), 1, 1};
}

// The generic elementwise entry: body(p0[i], p1[i], …) for every i < n, one thread per element
// (grid-stride, so any n fits one launch). The same body the reference and cpu backends run.
template <class Body>
struct elementwise_kernel {
  static constexpr const char* name = "elementwise";
  Body body;
  template <class Ctx, class... Ptr>
  MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx, std::int64_t n, Ptr... arrays) const {
    const std::int64_t stride = std::int64_t(ctx.grid_dim().x) * ctx.block_dim().x;
    for (std::int64_t i = std::int64_t(ctx.block_idx().x) * ctx.block_dim().x + ctx.thread_idx().x; i < n; i += stride)
      body(arrays[i]...);
  }
};

}  // namespace microcount::cuda

namespace microcount {

template <>
struct element_launcher<backend::cuda> {
  static constexpr unsigned threads = 256;
  // Grid cap: enough blocks to fill any GPU; the grid-stride loop covers the rest.
  static constexpr std::int64_t max_blocks = 4096;
  template <class Body, class... Ptr>
  static void run(std::int64_t n, const Body& body, Ptr... arrays) {
    if (n <= 0) return;
    cuda::dims3 grid = cuda::blocks_for(n, threads);
    grid.x = static_cast<unsigned>(std::min<std::int64_t>(grid.x, max_blocks));
    cuda::launch(cuda::elementwise_kernel<Body>{body}, grid, {threads}, 0, n, arrays...);
  }
};
template <>
struct element_launcher<backend::cudnn> : element_launcher<backend::cuda> {};

}  // namespace microcount
