#pragma once
// Backends are tag types. The core names them; their kernels live under backends/<name>/ and are
// pulled in by including <microcount/backends/<name>.hpp>. No file under include/microcount includes a backend.
#include <concepts>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>

namespace microcount::backend {

// Plain scalar loops: the oracle every other backend is tested against.
struct reference {
  static constexpr const char* name = "reference";
  static constexpr bool host_memory = true;
  using scalar = float;
};
// The reference loops in double precision: finite-difference gradient checks of whole layers.
struct reference_f64 {
  static constexpr const char* name = "reference_f64";
  static constexpr bool host_memory = true;
  using scalar = double;
};
// xsimd + Eigen + OpenMP kernels.
struct cpu {
  static constexpr const char* name = "cpu";
  using scalar = float;
  static constexpr bool host_memory = true;
};
// Hand-written CUDA kernels, and cuDNN where it is best (falls back to cuda).
struct cuda {
  static constexpr const char* name = "cuda";
  using scalar = float;
  static constexpr bool host_memory = false;
};
struct cudnn {
  static constexpr const char* name = "cudnn";
  using scalar = float;
  static constexpr bool host_memory = false;
};

}  // namespace microcount::backend

namespace microcount {

template <class B>
concept backend_tag = requires {
  typename B::scalar;
  { B::name } -> std::convertible_to<const char*>;
  { B::host_memory } -> std::convertible_to<bool>;
};

// The value type a backend's networks compute in (float; double for reference_f64).
template <class B>
using scalar_t = typename B::scalar;

// Memory of a backend's space. Host backends use 64-byte aligned heap memory (one AVX-512 line);
// device backends specialise this in their own folder.
template <class B>
struct memory {
  static_assert(B::host_memory, "microcount: this device backend's memory<> is not included: include <microcount/backends/<name>.hpp>");
  static void* allocate(std::size_t bytes) {
    if (bytes == 0) return nullptr;
    void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) throw std::bad_alloc();
    return p;
  }
  static void release(void* p) noexcept { std::free(p); }
  // The same four transfers device backends offer, so code can move data without asking where it lives.
  static void copy(void* dst, const void* src, std::size_t bytes) { if (bytes) std::memcpy(dst, src, bytes); }
  static void zero(void* dst, std::size_t bytes) { if (bytes) std::memset(dst, 0, bytes); }
  static void upload(void* dst, const void* host_src, std::size_t bytes) { copy(dst, host_src, bytes); }
  static void download(void* host_dst, const void* src, std::size_t bytes) { copy(host_dst, src, bytes); }
};

}  // namespace microcount
