#pragma once
// parallel_for over an index range with OpenMP; deterministic partitioning (static schedule),
// so results that depend on the split are the same for a given thread count.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#if defined(_OPENMP)
#include <omp.h>
#endif

namespace microcount {

inline int max_threads() {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

inline void set_threads(int n) {
#if defined(_OPENMP)
  if (n > 0) omp_set_num_threads(n);
#else
  (void)n;
#endif
}

// Calls f(i) for i in [begin, end). An exception thrown by any f is rethrown once, on the caller.
template <class F>
void parallel_for(std::int64_t begin, std::int64_t end, F&& f, std::int64_t min_per_thread = 1) {
  if (end <= begin) return;
  const std::int64_t n = end - begin;
  if (max_threads() == 1 || n < 2 * min_per_thread) {
    for (std::int64_t i = begin; i < end; ++i) f(i);
    return;
  }
  std::exception_ptr failure;
  std::mutex m;
#pragma omp parallel for schedule(static)
  for (std::int64_t i = begin; i < end; ++i) {
    try {
      f(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(m);
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
}

}  // namespace microcount
