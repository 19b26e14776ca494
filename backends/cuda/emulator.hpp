#pragma once
// The host emulator: runs a CUDA kernel body over grid × block on the CPU, so the kernels of
// backends/cuda are tested here, on machines without a GPU, against the reference backend.
//
//   cuda::emulate(kernel, grid, block, shared_bytes, args...)   ≡   kernel<<<grid, block, shared_bytes>>>(args...)
//
// Each CUDA thread of a block is a fiber (ucontext) with its own stack; ctx.sync() (__syncthreads)
// switches back to the block's scheduler, which resumes the next thread, so every thread reaches the
// barrier before any passes it. Blocks run one after another on each OS thread, blocks are spread over
// the OpenMP threads. What a GPU would do wrong, the emulator reports as microcount::error:
//   - barrier divergence (a thread exits, or waits at a different barrier count, while others wait),
//   - more than 1024 threads per block, grid.y/z above 65535, more than 48 KiB of shared memory;
// and dynamic shared memory starts as NaN bytes (0xFF), so a read before the write shows in the results.
// Kernels whose first thread finishes without a barrier (elementwise ones) run their other threads as
// plain calls: no fiber switch per element.
#include <ucontext.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <typeinfo>
#include <vector>

#include "microcount/core/config.hpp"
#include "microcount/core/error.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/backends/cuda/kernel_types.cuh"

#if defined(__SANITIZE_ADDRESS__)
#define MICROCOUNT_EMULATOR_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MICROCOUNT_EMULATOR_ASAN 1
#endif
#endif
#if defined(MICROCOUNT_EMULATOR_ASAN)
#include <sanitizer/common_interface_defs.h>
#endif

namespace microcount::cuda {

namespace emulator_detail {

// The fibers of one block on one OS thread (thread_local: blocks on other threads have their own).
class block_scheduler {
 public:
#if defined(MICROCOUNT_EMULATOR_ASAN)
  static constexpr std::size_t stack_bytes = 512 * 1024;
#else
  static constexpr std::size_t stack_bytes = 128 * 1024;  // kernels keep small register tiles: ample
#endif

  // Runs run(rank) for rank in [0, threads), as the threads of one block.
  template <class Run>
  void run_block(unsigned threads, const Run& run, const char* name) {
    run_ = &run;
    call_ = [](const void* r, unsigned rank) { (*static_cast<const Run*>(r))(rank); };
    name_ = name;
    failure_ = nullptr;
    if (fibers_.size() < threads) fibers_.resize(threads);
    for (unsigned t = 0; t < threads; ++t) {
      fibers_[t].barriers = 0;
      fibers_[t].done = false;
    }
    // Thread 0 runs as a fiber; if it never waited at a barrier, a correct kernel has none: the other
    // threads run as plain calls (a barrier in one of them is divergence, reported by sync()).
    start_fiber(0);
    resume(0);
    if (failure_) std::rethrow_exception(failure_);
    if (fibers_[0].done && fibers_[0].barriers == 0) {
      direct_ = true;
      struct reset { bool& flag; ~reset() { flag = false; } } guard{direct_};
      for (unsigned t = 1; t < threads; ++t) {
        current_ = t;
        run(t);
      }
      return;
    }
    for (unsigned t = 1; t < threads; ++t) start_fiber(t);
    for (unsigned t = 1; t < threads; ++t) resume(t);
    // Every thread now waits at its first barrier or has finished: release them barrier by barrier.
    for (;;) {
      if (failure_) std::rethrow_exception(failure_);
      unsigned waiting = 0, finished = 0;
      for (unsigned t = 0; t < threads; ++t) (fibers_[t].done ? finished : waiting) += 1;
      if (waiting == 0) return;
      const int barrier = fibers_[first_waiting(threads)].barriers;
      for (unsigned t = 0; t < threads; ++t) {
        if (fibers_[t].done || fibers_[t].barriers != barrier)
          divergence(t, fibers_[t].done ? "has returned" : "waits at barrier " + std::to_string(fibers_[t].barriers),
                     barrier);
      }
      for (unsigned t = 0; t < threads; ++t) resume(t);
    }
  }

  // __syncthreads() of the thread running now.
  void barrier() {
    if (direct_) {
      throw error("cuda emulator", std::string("kernel ") + name_ + ": thread " + std::to_string(current_) +
                                       " reached __syncthreads, but thread 0 returned without one (barrier divergence)");
    }
    fiber& f = fibers_[current_];
    f.barriers += 1;
    switch_to_scheduler(f, false);
  }

 private:
  struct fiber {
    ucontext_t context{};
    std::unique_ptr<char[]> stack;  // uninitialised: pages are touched only as deep as the kernel goes
    int barriers = 0;
    bool done = false;
    void* fake_stack = nullptr;  // AddressSanitizer's bookkeeping across switches
  };

  unsigned first_waiting(unsigned threads) const {
    for (unsigned t = 0; t < threads; ++t)
      if (!fibers_[t].done) return t;
    return 0;
  }

  [[noreturn]] void divergence(unsigned t, const std::string& what, int barrier) const {
    throw error("cuda emulator", std::string("kernel ") + name_ + ": thread " + std::to_string(t) + " " + what +
                                     " while other threads of its block wait at barrier " + std::to_string(barrier) +
                                     " (barrier divergence: __syncthreads must be reached by every thread)");
  }

  void start_fiber(unsigned t) {
    fiber& f = fibers_[t];
    if (!f.stack) f.stack.reset(new char[stack_bytes]);
    getcontext(&f.context);
    f.context.uc_stack.ss_sp = f.stack.get();
    f.context.uc_stack.ss_size = stack_bytes;
    f.context.uc_link = nullptr;  // the entry switches back itself, after recording the end
    makecontext(&f.context, &block_scheduler::entry, 0);
  }

  // Switches from the scheduler into thread t until it waits at a barrier or returns.
  void resume(unsigned t) {
    fiber& f = fibers_[t];
    if (f.done) return;
    current_ = t;
    active() = this;
#if defined(MICROCOUNT_EMULATOR_ASAN)
    void* fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, f.stack.get(), stack_bytes);
#endif
    swapcontext(&scheduler_context_, &f.context);
#if defined(MICROCOUNT_EMULATOR_ASAN)
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
  }

  void switch_to_scheduler(fiber& f, bool finished) {
#if defined(MICROCOUNT_EMULATOR_ASAN)
    __sanitizer_start_switch_fiber(finished ? nullptr : &f.fake_stack, scheduler_stack_bottom_, scheduler_stack_size_);
#endif
    swapcontext(&f.context, &scheduler_context_);
#if defined(MICROCOUNT_EMULATOR_ASAN)
    __sanitizer_finish_switch_fiber(f.fake_stack, &scheduler_stack_bottom_, &scheduler_stack_size_);
#endif
  }

  static void entry() {
    block_scheduler& s = *active();
#if defined(MICROCOUNT_EMULATOR_ASAN)
    __sanitizer_finish_switch_fiber(nullptr, &s.scheduler_stack_bottom_, &s.scheduler_stack_size_);
#endif
    const unsigned rank = s.current_;
    try {
      s.call_(s.run_, rank);
    } catch (...) {
      if (!s.failure_) s.failure_ = std::current_exception();
    }
    fiber& f = s.fibers_[rank];
    f.done = true;
    s.switch_to_scheduler(f, true);  // never resumed
  }

  static block_scheduler*& active() {
    static thread_local block_scheduler* s = nullptr;
    return s;
  }

  std::vector<fiber> fibers_;
  ucontext_t scheduler_context_{};
  const void* run_ = nullptr;
  void (*call_)(const void*, unsigned) = nullptr;
  const char* name_ = "";
  unsigned current_ = 0;
  bool direct_ = false;
  std::exception_ptr failure_;
  const void* scheduler_stack_bottom_ = nullptr;
  std::size_t scheduler_stack_size_ = 0;

  friend block_scheduler& this_thread_scheduler();
};

inline block_scheduler& this_thread_scheduler() {
  static thread_local block_scheduler s;
  return s;
}

}  // namespace emulator_detail

// What a kernel body sees of its launch under the emulator; the device has the same interface
// (launch.cuh: device_context) over threadIdx, blockIdx, __syncthreads and extern __shared__.
class emulated_context {
 public:
  [[nodiscard]] dims3 thread_idx() const { return thread_; }
  [[nodiscard]] dims3 block_idx() const { return block_; }
  [[nodiscard]] dims3 block_dim() const { return block_dim_; }
  [[nodiscard]] dims3 grid_dim() const { return grid_dim_; }
  // __syncthreads()
  void sync() const { emulator_detail::this_thread_scheduler().barrier(); }
  // The block's dynamic shared memory (the launch's shared_bytes), 16-byte aligned.
  template <class T>
  [[nodiscard]] T* shared() const { return reinterpret_cast<T*>(shared_); }
  // atomicAdd: other blocks may run at the same time on other OS threads.
  template <class T>
  static void atomic_add(T* p, T v) { std::atomic_ref<T>(*p).fetch_add(v, std::memory_order_relaxed); }

  dims3 thread_, block_, block_dim_, grid_dim_;
  unsigned char* shared_ = nullptr;
};

// kernel<<<grid, block, shared_bytes>>>(args...) on the host. Kernel: a functor with
//   template <class Ctx> void operator()(const Ctx& ctx, Args... args) const
template <class Kernel, class... Args>
void emulate(const Kernel& kernel, dims3 grid, dims3 block, std::size_t shared_bytes, const Args&... args) {
  const char* name = kernel_name<Kernel>();
  const auto fail = [&](const std::string& why) { throw error("cuda emulator", std::string("kernel ") + name + ": " + why); };
  if (block.count() == 0 || grid.count() == 0) fail("empty launch (a grid or block extent is 0)");
  if (block.count() > max_threads_per_block)
    fail("block of " + std::to_string(block.count()) + " threads (at most " + std::to_string(max_threads_per_block) + ")");
  if (block.z > 64) fail("block.z = " + std::to_string(block.z) + " (at most 64)");
  if (grid.y > max_grid_yz || grid.z > max_grid_yz) fail("grid.y or grid.z above 65535");
  if (shared_bytes > max_shared_bytes)
    fail(std::to_string(shared_bytes) + " bytes of shared memory per block (at most " + std::to_string(max_shared_bytes) + ")");

  const std::int64_t blocks = static_cast<std::int64_t>(grid.count());
  parallel_for(0, blocks, [&](std::int64_t b) {
    // Fresh NaN-filled shared memory per block: nothing survives from the previous block, as on a GPU.
    thread_local std::vector<unsigned char> shared;
    shared.assign(shared_bytes + 16, 0xFF);
    emulated_context ctx;
    ctx.block_dim_ = block;
    ctx.grid_dim_ = grid;
    ctx.block_ = {unsigned(b % grid.x), unsigned(b / grid.x % grid.y), unsigned(b / (std::int64_t(grid.x) * grid.y))};
    ctx.shared_ = shared.data() + (16 - reinterpret_cast<std::uintptr_t>(shared.data()) % 16) % 16;
    const auto run_thread = [&](unsigned rank) {
      emulated_context c = ctx;
      c.thread_ = {rank % block.x, rank / block.x % block.y, rank / (block.x * block.y)};
      kernel(c, args...);
    };
    emulator_detail::this_thread_scheduler().run_block(static_cast<unsigned>(block.count()), run_thread, name);
  });
}

}  // namespace microcount::cuda
