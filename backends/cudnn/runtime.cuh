#pragma once
// cuDNN plumbing for backend::cudnn: checked calls, one handle per host thread, RAII descriptors, a
// workspace per thread, and the algorithm chosen once per convolution problem.
//
// cuDNN 9 still ships the "legacy" descriptor API (cudnn_ops.h / cudnn_cnn.h, marked deprecated but
// complete); it covers exactly what this backend needs (NCHW / NCDHW float convolutions and spatial
// batch normalisation), so it is used instead of the graph API. Deprecation warnings stay off unless
// CUDNN_WARN_DEPRECATED is defined.
#include <cudnn.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "microcount/backends/cuda/runtime.cuh"
#include "microcount/core/error.hpp"
#include "microcount/core/tensor.hpp"

namespace microcount::cudnn {

// Throws microcount::error("cudnn", "<call> failed: <cudnnGetErrorString>") unless status is success.
inline void check(cudnnStatus_t status, const char* call) {
  if (status == CUDNN_STATUS_SUCCESS) return;
  throw error("cudnn", std::string(call) + " failed: " + cudnnGetErrorString(status));
}
// Wraps one cuDNN call: MICROCOUNT_CUDNN_CHECK(cudnnSetStream(h, s)); the message quotes the call.
#define MICROCOUNT_CUDNN_CHECK(call) ::microcount::cudnn::check((call), #call)

// What the backend may trade for speed. Defaults keep results comparable with the reference backend.
// Set before the first cudnn call (not synchronised; cached algorithm choices are keyed on the settings).
struct settings_t {
  // false: FP32 arithmetic only (CUDNN_FMA_MATH). true: cuDNN may use TF32 tensor cores on sm_80+
  // (about 10 mantissa bits per product: several times faster, ~1e-3 relative error).
  bool allow_tf32 = false;
  // true: only algorithms cuDNN reports as deterministic (weight and data gradients then do not depend
  // on scheduling, like the cuda kernels). false: the fastest, whatever their reduction order.
  bool deterministic = true;
  // Largest workspace an algorithm may ask for.
  std::size_t max_workspace_bytes = std::size_t(512) << 20;
};
inline settings_t& settings() {
  static settings_t s;
  return s;
}

// cuDNN takes int extents: larger tensors are refused with a message instead of being truncated.
inline int to_int(index_t v, const char* what) {
  require(v >= 0 && v <= std::numeric_limits<int>::max(), "cudnn",
          std::string(what) + " extent " + std::to_string(v) + " does not fit cuDNN's int");
  return static_cast<int>(v);
}

// ---- handle and workspace: one per host thread (cuDNN handles must not be shared across threads) ----
class thread_state {
 public:
  thread_state() = default;
  thread_state(const thread_state&) = delete;
  thread_state& operator=(const thread_state&) = delete;
  ~thread_state() {
    memory<backend::cuda>::release(workspace_);
    if (handle_) (void)cudnnDestroy(handle_);
  }

  // Created on first use, so programs that never touch cudnn never initialise it (nor need a GPU).
  cudnnHandle_t handle() {
    if (!handle_) MICROCOUNT_CUDNN_CHECK(cudnnCreate(&handle_));
    return handle_;
  }
  // Device scratch of at least `bytes`, grown (never shrunk) as problems need it.
  void* workspace(std::size_t bytes) {
    if (bytes > workspace_bytes_) {
      memory<backend::cuda>::release(workspace_);
      workspace_ = nullptr;
      workspace_bytes_ = 0;
      workspace_ = memory<backend::cuda>::allocate(bytes);
      workspace_bytes_ = bytes;
    }
    return workspace_;
  }
  // A device vector of `n` copies of `value` (the γ = 1 / β = 0 that cuDNN needs when an op has none).
  const float* constant(index_t n, float value) {
    auto& slot = constants_[value];
    if (slot.size() < n) {
      std::vector<float> host(static_cast<std::size_t>(n), value);  // [n]
      slot = tensor<float, backend::cuda>(shape{n});
      slot.upload(host.data());
    }
    return slot.data();
  }
  // Device scratch of n floats for outputs an op does not want (dγ, dβ passed as null).
  float* scratch(index_t n) {
    if (scratch_.size() < n) scratch_ = tensor<float, backend::cuda>(shape{n});
    return scratch_.data();
  }

 private:
  cudnnHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  std::size_t workspace_bytes_ = 0;
  std::map<float, tensor<float, backend::cuda>> constants_;
  tensor<float, backend::cuda> scratch_;
};

inline thread_state& this_thread() {
  thread_local thread_state state;
  return state;
}
inline cudnnHandle_t handle() { return this_thread().handle(); }

// ---- RAII descriptors ---------------------------------------------------------------------------
template <class Handle, cudnnStatus_t (*Create)(Handle*), cudnnStatus_t (*Destroy)(Handle)>
class descriptor {
 public:
  descriptor() { MICROCOUNT_CUDNN_CHECK(Create(&h_)); }
  ~descriptor() {
    if (h_) (void)Destroy(h_);
  }
  descriptor(const descriptor&) = delete;
  descriptor& operator=(const descriptor&) = delete;
  descriptor(descriptor&& o) noexcept : h_(o.h_) { o.h_ = nullptr; }
  descriptor& operator=(descriptor&& o) noexcept {
    std::swap(h_, o.h_);
    return *this;
  }
  operator Handle() const { return h_; }

 private:
  Handle h_ = nullptr;
};

// A float tensor (rank ≥ 4; cuDNN's Nd descriptors refuse fewer) with the view's own strides.
class tensor_desc : public descriptor<cudnnTensorDescriptor_t, cudnnCreateTensorDescriptor, cudnnDestroyTensorDescriptor> {
 public:
  template <class T, int Rank>
    requires(Rank >= 4)
  explicit tensor_desc(const tensor_view<T, Rank>& v) {
    std::array<int, Rank> dims{}, strides{};
    for (int a = 0; a < Rank; ++a) {
      dims[a] = to_int(v.extent[a], "tensor");
      strides[a] = to_int(v.stride[a], "tensor stride");
    }
    MICROCOUNT_CUDNN_CHECK(cudnnSetTensorNdDescriptor(*this, CUDNN_DATA_FLOAT, Rank, dims.data(), strides.data()));
  }
  // [N, C, S] as N×C×S×1: the layout batch normalisation sees (statistics over N and S per channel).
  template <class T>
  explicit tensor_desc(const tensor_view<T, 3>& v) {
    const std::array<int, 4> dims{to_int(v.extent[0], "batch"), to_int(v.extent[1], "channel"),
                                  to_int(v.extent[2], "spatial"), 1};
    const std::array<int, 4> strides{to_int(v.stride[0], "tensor stride"), to_int(v.stride[1], "tensor stride"),
                                     to_int(v.stride[2], "tensor stride"), 1};
    MICROCOUNT_CUDNN_CHECK(cudnnSetTensorNdDescriptor(*this, CUDNN_DATA_FLOAT, 4, dims.data(), strides.data()));
  }
  // A descriptor to be filled by a cuDNN call (cudnnDeriveBNTensorDescriptor).
  static tensor_desc blank() { return tensor_desc(); }
  // A per-channel vector [1, C, 1, …] of rank `rank` (the conv bias).
  static tensor_desc channel_vector(index_t channels, int rank) {
    tensor_desc d;
    std::array<int, 5> dims{1, to_int(channels, "channel"), 1, 1, 1}, strides{dims[1], 1, 1, 1, 1};
    MICROCOUNT_CUDNN_CHECK(cudnnSetTensorNdDescriptor(d, CUDNN_DATA_FLOAT, rank, dims.data(), strides.data()));
    return d;
  }

 private:
  tensor_desc() = default;
};

// Filter [K, C, k...] (packed NCHW / NCDHW; cuDNN filters have no strides).
class filter_desc : public descriptor<cudnnFilterDescriptor_t, cudnnCreateFilterDescriptor, cudnnDestroyFilterDescriptor> {
 public:
  template <class T, int Rank>
  explicit filter_desc(const tensor_view<T, Rank>& w) {
    require(w.is_contiguous(), "cudnn", "convolution weights must be contiguous");
    std::array<int, Rank> dims{};
    for (int a = 0; a < Rank; ++a) dims[a] = to_int(w.extent[a], "weight");
    MICROCOUNT_CUDNN_CHECK(cudnnSetFilterNdDescriptor(*this, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, Rank, dims.data()));
  }
};

// A cross-correlation (what every deep-learning "convolution" is) with FP32 accumulation.
class convolution_desc
    : public descriptor<cudnnConvolutionDescriptor_t, cudnnCreateConvolutionDescriptor, cudnnDestroyConvolutionDescriptor> {
 public:
  template <std::size_t Dims>
  convolution_desc(const std::array<int, Dims>& pad, const std::array<int, Dims>& stride,
                   const std::array<int, Dims>& dilation) {
    MICROCOUNT_CUDNN_CHECK(cudnnSetConvolutionNdDescriptor(*this, Dims, pad.data(), stride.data(), dilation.data(),
                                                           CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    MICROCOUNT_CUDNN_CHECK(cudnnSetConvolutionMathType(*this, settings().allow_tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
  }
};

// ---- algorithm choice, cached per problem ----------------------------------------------------------
// The key of a convolution problem: direction, input/weight/output extents, the op's geometry and the
// settings that change the answer. Views are contiguous here, so extents say everything.
struct problem_key {
  int direction = 0;  // 0 forward, 1 backward data, 2 backward filter
  std::vector<index_t> numbers;
  bool operator<(const problem_key& o) const { return std::tie(direction, numbers) < std::tie(o.direction, o.numbers); }
};

template <int Rank, int Dims>
problem_key make_key(int direction, const std::array<index_t, Rank>& x, const std::array<index_t, Rank>& w,
                     const std::array<index_t, Rank>& y, const std::array<int, Dims>& stride,
                     const std::array<int, Dims>& pad, const std::array<int, Dims>& dilation) {
  problem_key k{direction, {}};
  k.numbers.reserve(3 * Rank + 3 * Dims + 3);
  for (auto v : x) k.numbers.push_back(v);
  for (auto v : w) k.numbers.push_back(v);
  for (auto v : y) k.numbers.push_back(v);
  for (int a = 0; a < Dims; ++a) {
    k.numbers.push_back(stride[a]);
    k.numbers.push_back(pad[a]);
    k.numbers.push_back(dilation[a]);
  }
  k.numbers.push_back(settings().allow_tf32);
  k.numbers.push_back(settings().deterministic);
  k.numbers.push_back(static_cast<index_t>(settings().max_workspace_bytes));
  return k;
}

// An algorithm and the workspace it needs.
struct choice {
  int algorithm = 0;
  std::size_t workspace = 0;
  cudnnMathType_t math = CUDNN_FMA_MATH;  // what the algorithm was ranked with (tensor-op math under TF32)
};

// Picks from cuDNN's ranked list (heuristics, fastest first) the first usable one: status success,
// workspace within the limit, deterministic when the settings ask for it. The caller then asks cuDNN
// for the exact workspace of the chosen algorithm (the ranked list's figure is an estimate).
template <class Perf>
choice pick(const Perf* ranked, int count, const char* direction) {
  const settings_t& s = settings();
  for (int i = 0; i < count; ++i) {
    const Perf& p = ranked[i];
    if (p.status != CUDNN_STATUS_SUCCESS || p.memory > s.max_workspace_bytes) continue;
    if (s.deterministic && p.determinism != CUDNN_DETERMINISTIC) continue;
    return {static_cast<int>(p.algo), p.memory, p.mathType};
  }
  throw error("cudnn", std::string("no usable ") + direction + " convolution algorithm among " + std::to_string(count) +
                           (s.deterministic ? " (deterministic ones only: cudnn::settings().deterministic)" : "") +
                           " within a workspace of " + std::to_string(s.max_workspace_bytes) + " bytes");
}

inline std::map<problem_key, choice>& algorithm_cache() {
  thread_local std::map<problem_key, choice> cache;
  return cache;
}

}  // namespace microcount::cudnn
