#pragma once
// Portability macros shared by host and device code.
#if defined(__CUDACC__)
#define MICROCOUNT_HOST_DEVICE __host__ __device__
#else
#define MICROCOUNT_HOST_DEVICE
#endif
#define MICROCOUNT_INLINE inline __attribute__((always_inline))
