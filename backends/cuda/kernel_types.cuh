#pragma once
// Launch geometry shared by the GPU path and the host emulator: dims3 (CUDA's dim3 without the CUDA
// headers), the device limits a launch must respect, and a kernel's name for messages.
#include <cstddef>
#include <typeinfo>

#include "microcount/core/config.hpp"

namespace microcount::cuda {

// Extents of a grid or block, and indices into them.
struct dims3 {
  unsigned x = 1, y = 1, z = 1;
  [[nodiscard]] MICROCOUNT_HOST_DEVICE constexpr std::size_t count() const { return std::size_t(x) * y * z; }
};

// Limits of a launch on a GPU of compute capability ≥ 7.0 (the emulator enforces them).
inline constexpr unsigned max_threads_per_block = 1024;
inline constexpr unsigned max_grid_yz = 65535;
inline constexpr std::size_t max_shared_bytes = 48 * 1024;  // dynamic, without the cudaFuncSetAttribute opt-in

// The kernel's name in messages: Kernel::name when it has one, else the type's (mangled) name.
template <class Kernel>
const char* kernel_name() {
  if constexpr (requires { Kernel::name; }) return Kernel::name;
  else return typeid(Kernel).name();
}

}  // namespace microcount::cuda
