#pragma once
// The cuda backend's runtime: which mode a translation unit runs in, checked CUDA calls, device memory.
//
// Two modes, chosen per program (every translation unit of one program must agree):
//   device     the translation unit is compiled by nvcc (__CUDACC__): kernels launch on the GPU, tensors
//              live in cudaMalloc'ed memory, every runtime call is checked.
//   emulated   MICROCOUNT_CUDA_EMULATE is defined (the CMake target microcount::cuda_emulated): the same
//              kernel bodies run on the host emulator (emulator.hpp), tensors live in host memory that
//              only kernels and explicit copies touch, so code that forgets a copy is still caught by
//              the device mode's types (backend::cuda::host_memory is false in both modes).
// A g++ translation unit that includes the cuda backend in neither mode fails with one message.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "microcount/core/backend.hpp"
#include "microcount/core/config.hpp"
#include "microcount/core/error.hpp"

#if defined(MICROCOUNT_CUDA_EMULATE)
#define MICROCOUNT_CUDA_MODE_EMULATED 1
#elif defined(__CUDACC__)
#define MICROCOUNT_CUDA_MODE_DEVICE 1
#include <cuda_runtime.h>
#else
#error "microcount: backend::cuda kernels are compiled by nvcc (put this code in a .cu file and link microcount::cuda), or run on the host emulator (define MICROCOUNT_CUDA_EMULATE / link microcount::cuda_emulated)"
#endif

namespace microcount::cuda {

// True when kernels run on a GPU, false under the host emulator.
inline constexpr bool on_device =
#if defined(MICROCOUNT_CUDA_MODE_DEVICE)
    true;
#else
    false;
#endif

#if defined(MICROCOUNT_CUDA_MODE_DEVICE)
// Throws microcount::error("cuda", "<call> failed: <status name> (<status text>)") unless status is cudaSuccess.
inline void check(cudaError_t status, const char* call) {
  if (status == cudaSuccess) return;
  throw error("cuda", std::string(call) + " failed: " + cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")");
}
// Wraps one runtime call: MICROCOUNT_CUDA_CHECK(cudaMalloc(&p, n)); the message quotes the call.
#define MICROCOUNT_CUDA_CHECK(call) ::microcount::cuda::check((call), #call)
#endif

// Number of GPUs the runtime sees; 0 under the emulator or when the driver finds none (never throws:
// "no device" and "no driver" are answers here, not errors).
inline int device_count() {
#if defined(MICROCOUNT_CUDA_MODE_DEVICE)
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky "no device" status
    return 0;
  }
  return n;
#else
  return 0;
#endif
}

// One line for logs and skipped tests: "emulated (host)", or "device 0: <name>, compute 8.0", or why none.
inline std::string describe_device() {
#if defined(MICROCOUNT_CUDA_MODE_DEVICE)
  int n = 0;
  const cudaError_t status = cudaGetDeviceCount(&n);
  if (status != cudaSuccess) {
    (void)cudaGetLastError();
    return std::string("no CUDA device (") + cudaGetErrorName(status) + ": " + cudaGetErrorString(status) + ")";
  }
  if (n == 0) return "no CUDA device";
  cudaDeviceProp p{};
  MICROCOUNT_CUDA_CHECK(cudaGetDeviceProperties(&p, 0));
  return "device 0 of " + std::to_string(n) + ": " + p.name + ", compute " + std::to_string(p.major) + "." +
         std::to_string(p.minor);
#else
  return "emulated on the host (no device code runs)";
#endif
}

// Waits for every kernel launched so far and surfaces an asynchronous launch failure as an error.
inline void synchronize() {
#if defined(MICROCOUNT_CUDA_MODE_DEVICE)
  MICROCOUNT_CUDA_CHECK(cudaDeviceSynchronize());
#endif
}

}  // namespace microcount::cuda

namespace microcount {

// Device memory of backend::cuda (and cudnn, which shares it). Besides allocate/release, device
// backends offer copy (within the space), zero, and the two transfers from and to host memory.
template <>
struct memory<backend::cuda> {
  static void* allocate(std::size_t bytes) {
    if (bytes == 0) return nullptr;
#if defined(MICROCOUNT_CUDA_MODE_DEVICE)
    void* p = nullptr;
    const cudaError_t status = cudaMalloc(&p, bytes);
    if (status != cudaSuccess) {
      (void)cudaGetLastError();
      throw error("cuda", "cudaMalloc of " + std::to_string(bytes) + " bytes failed: " + cudaGetErrorName(status) +
                              " (" + cudaGetErrorString(status) + ")");
    }
    return p;
#else
    // 256-byte alignment, as cudaMalloc guarantees, so kernels that rely on it behave alike.
    void* p = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
    if (!p) throw std::bad_alloc();
    return p;
#endif
  }
  static void release(void* p) noexcept {
#if defined(MICROCOUNT_CUDA_MODE_DEVICE)
    if (p) (void)cudaFree(p);
#else
    std::free(p);
#endif
  }
  // dst, src: both in device memory.
  static void copy(void* dst, const void* src, std::size_t bytes) {
    if (bytes == 0) return;
#if defined(MICROCOUNT_CUDA_MODE_DEVICE)
    MICROCOUNT_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
#else
    std::memcpy(dst, src, bytes);
#endif
  }
  static void zero(void* dst, std::size_t bytes) {
    if (bytes == 0) return;
#if defined(MICROCOUNT_CUDA_MODE_DEVICE)
    MICROCOUNT_CUDA_CHECK(cudaMemset(dst, 0, bytes));
#else
    std::memset(dst, 0, bytes);
#endif
  }
  // host → device
  static void upload(void* device_dst, const void* host_src, std::size_t bytes) {
    if (bytes == 0) return;
#if defined(MICROCOUNT_CUDA_MODE_DEVICE)
    MICROCOUNT_CUDA_CHECK(cudaMemcpy(device_dst, host_src, bytes, cudaMemcpyHostToDevice));
#else
    std::memcpy(device_dst, host_src, bytes);
#endif
  }
  // device → host (waits for the kernels that write src)
  static void download(void* host_dst, const void* device_src, std::size_t bytes) {
    if (bytes == 0) return;
#if defined(MICROCOUNT_CUDA_MODE_DEVICE)
    MICROCOUNT_CUDA_CHECK(cudaMemcpy(host_dst, device_src, bytes, cudaMemcpyDeviceToHost));
#else
    std::memcpy(host_dst, device_src, bytes);
#endif
  }
};

// cudnn tensors are cuda tensors: the same memory space.
template <>
struct memory<backend::cudnn> : memory<backend::cuda> {};

}  // namespace microcount
