#pragma once
// What the non-convolution cuda kernels share: scratch device memory, a plain strided [N, C, S] view for
// kernel bodies (tensor_view's std::array is not device code without --expt-relaxed-constexpr), and the
// deterministic two-level sum every statistic goes through:
//   level 1  segment_partials_kernel: grid (blocks, segments [split over y and z]); each block sums its share of one segment
//            in double (fixed grid-stride order, shared-memory tree) → partials [segments, blocks]
//   level 2  sum_partials(): one thread per segment adds its blocks' partials in index order.
// The number of blocks depends only on the segment length, never on the device or on scheduling, so the
// same input gives the same bits on every run.
#include <cstdint>
#include <string>
#include <vector>

#include "microcount/backends/cuda/launch.cuh"
#include "microcount/core/tensor.hpp"

namespace microcount::cuda_ops {

using cuda::dims3;

inline constexpr unsigned threads = 256;  // every kernel of these headers: one block of 256 (a power of 2)

// Device scratch memory for n elements of T, released at scope exit.
template <class T>
class device_buffer {
 public:
  explicit device_buffer(std::int64_t n)
      : n_(n), p_(static_cast<T*>(memory<backend::cuda>::allocate(sizeof(T) * static_cast<std::size_t>(n)))) {}
  explicit device_buffer(const std::vector<T>& host) : device_buffer(static_cast<std::int64_t>(host.size())) {
    memory<backend::cuda>::upload(p_, host.data(), sizeof(T) * host.size());
  }
  ~device_buffer() { memory<backend::cuda>::release(p_); }
  device_buffer(const device_buffer&) = delete;
  device_buffer& operator=(const device_buffer&) = delete;
  [[nodiscard]] T* get() const { return p_; }
  [[nodiscard]] std::vector<T> download() const {
    std::vector<T> h(static_cast<std::size_t>(n_));
    memory<backend::cuda>::download(h.data(), p_, sizeof(T) * h.size());
    return h;
  }

 private:
  std::int64_t n_;
  T* p_;
};

// A strided [N, C, S] view with plain members: what kernel bodies index.
template <class T>
struct ncs_view {
  T* data;
  index_t n, c, s;           // extents
  index_t sn, sc, ss;        // strides in elements
  MICROCOUNT_HOST_DEVICE T& operator()(index_t i, index_t ch, index_t j) const { return data[i * sn + ch * sc + j * ss]; }
};
template <class T>
ncs_view<T> plain(const tensor_view<T, 3>& v) {
  return {v.data, v.extent[0], v.extent[1], v.extent[2], v.stride[0], v.stride[1], v.stride[2]};
}

// Device kernels index contiguous memory where the reference does (pooling, resampling, concat).
template <class View>
void require_contiguous(const View& v, const char* what) {
  require(v.is_contiguous(), "cuda kernel", std::string(what) + " must be contiguous");
}

// Elements of a view, on the host (tensor_view::size() is host-device code over std::array, which nvcc
// warns about when it is instantiated).
template <class View>
index_t elements(const View& v) {
  index_t n = 1;
  for (const index_t e : v.extent) n *= e;
  return n;
}

// The flat index of the calling thread in a 1-D launch, and the launch's total thread count.
template <class Ctx>
MICROCOUNT_HOST_DEVICE inline std::int64_t global_index(const Ctx& ctx) {
  return std::int64_t(ctx.block_idx().x) * ctx.block_dim().x + ctx.thread_idx().x;
}
template <class Ctx>
MICROCOUNT_HOST_DEVICE inline std::int64_t global_stride(const Ctx& ctx) {
  return std::int64_t(ctx.grid_dim().x) * ctx.block_dim().x;
}

// Grid of a grid-stride loop over n items (capped: the loop covers the rest).
inline dims3 grid_for(std::int64_t n) {
  dims3 g = cuda::blocks_for(n, threads);
  if (g.x > 4096) g.x = 4096;
  return g;
}

// Blocks per segment of `length` elements: about 4 elements per thread, at most 64 blocks. A function of
// the length only, so the summation order is fixed.
inline unsigned partial_blocks(std::int64_t length) {
  const std::int64_t per_block = std::int64_t(threads) * 4;
  const std::int64_t b = (length + per_block - 1) / per_block;
  return static_cast<unsigned>(b < 1 ? 1 : b > 64 ? 64 : b);
}

// partials[segment · blocks + block] = Σ term(segment, e) over this block's e in [0, length), in double.
// Term: MICROCOUNT_HOST_DEVICE double operator()(index_t segment, index_t e) const.
template <class Term>
struct segment_partials_kernel {
  static constexpr const char* name = "segment_partials";
  Term term;
  template <class Ctx>
  MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx, index_t segments, index_t length, double* partials) const {
    double* lane = ctx.template shared<double>();  // [blockDim.x]
    const unsigned t = ctx.thread_idx().x, blocks = ctx.grid_dim().x;
    const index_t segment = index_t(ctx.block_idx().z) * ctx.grid_dim().y + ctx.block_idx().y;
    if (segment >= segments) return;  // the whole block: no barrier is skipped by some threads only
    double sum = 0;
    for (index_t e = index_t(ctx.block_idx().x) * ctx.block_dim().x + t; e < length; e += index_t(blocks) * ctx.block_dim().x)
      sum += term(segment, e);
    lane[t] = sum;
    ctx.sync();
    for (unsigned half = ctx.block_dim().x / 2; half > 0; half /= 2) {
      if (t < half) lane[t] += lane[t + half];
      ctx.sync();
    }
    if (t == 0) partials[segment * blocks + ctx.block_idx().x] = lane[0];
  }
};

// Level 1 for `segments` segments of `length` elements: returns the partials [segments, blocks()].
template <class Term>
struct segment_sums {
  unsigned blocks;
  device_buffer<double> partials;
  segment_sums(const Term& term, index_t segments, index_t length)
      : blocks(partial_blocks(length)), partials(segments * partial_blocks(length)) {
    if (segments <= 0) return;
    // Segments along grid.y, and grid.z when there are more than 65535 of them.
    const index_t y = segments < index_t(cuda::max_grid_yz) ? segments : index_t(cuda::max_grid_yz);
    const index_t z = (segments + y - 1) / y;
    require(z <= index_t(cuda::max_grid_yz), "cuda", "too many segments in one reduction");
    cuda::launch(segment_partials_kernel<Term>{term}, {blocks, static_cast<unsigned>(y), static_cast<unsigned>(z)},
                 {threads}, sizeof(double) * threads, segments, length, partials.get());
  }
};

// Level 2, inside a per-segment kernel body: the segment's total, its partials added in index order.
MICROCOUNT_HOST_DEVICE inline double sum_partials(const double* partials, unsigned blocks, index_t segment) {
  double s = 0;
  for (unsigned b = 0; b < blocks; ++b) s += partials[segment * blocks + b];
  return s;
}

}  // namespace microcount::cuda_ops

namespace microcount::cuda_ops {

// f(i, c, j) for every element of an [N, C, S] extent, one thread each (grid-stride).
template <class F>
struct per_element_kernel {
  static constexpr const char* name = "per_element";
  F f;
  template <class Ctx>
  MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx, index_t n, index_t c, index_t s) const {
    const index_t total = n * c * s;
    for (index_t e = global_index(ctx); e < total; e += global_stride(ctx)) f(e / (c * s), e / s % c, e % s);
  }
};
template <class F>
void for_each_element(const F& f, index_t n, index_t c, index_t s) {
  if (n * c * s > 0) cuda::launch(per_element_kernel<F>{f}, grid_for(n * c * s), {threads}, 0, n, c, s);
}

// f(k) for k in [0, count), one thread each: per-channel or per-group finishing steps.
template <class F>
struct per_index_kernel {
  static constexpr const char* name = "per_index";
  F f;
  template <class Ctx>
  MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx, index_t count) const {
    for (index_t k = global_index(ctx); k < count; k += global_stride(ctx)) f(k);
  }
};
template <class F>
void for_each_index(const F& f, index_t count) {
  if (count > 0) cuda::launch(per_index_kernel<F>{f}, grid_for(count), {threads}, 0, count);
}

}  // namespace microcount::cuda_ops
