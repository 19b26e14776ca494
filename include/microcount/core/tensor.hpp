#pragma once
// tensor_view<T, Rank>: a pointer with extents and strides (no ownership), usable on host and device.
// tensor<T, Backend>:   owns contiguous row-major memory in the backend's space.
//
//   tensor<float, backend::cpu> x({8, 16, 256, 256});   // [N, C, H, W]
//   auto v = x.view<4>();                               // tensor_view<float, 4>, v(n, c, h, w)
#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "microcount/core/backend.hpp"
#include "microcount/core/config.hpp"
#include "microcount/core/shape.hpp"

namespace microcount {

template <class T, int Rank>
struct tensor_view {
  static_assert(Rank >= 1 && Rank <= shape::max_rank, "microcount: tensor_view rank must be 1..5");
  T* data = nullptr;
  std::array<index_t, Rank> extent{};
  std::array<index_t, Rank> stride{};  // in elements

  // Row-major contiguous view over `p` with extents `e`.
  static tensor_view contiguous(T* p, const std::array<index_t, Rank>& e) {
    tensor_view v{p, e, {}};
    index_t s = 1;
    for (int i = Rank - 1; i >= 0; --i) {
      v.stride[i] = s;
      s *= e[i];
    }
    return v;
  }

  template <class... I>
  MICROCOUNT_HOST_DEVICE T& operator()(I... i) const {
    static_assert(sizeof...(I) == Rank, "microcount: tensor_view indexed with the wrong number of indices");
    const index_t idx[] = {static_cast<index_t>(i)...};
    index_t off = 0;
    for (int k = 0; k < Rank; ++k) off += idx[k] * stride[k];
    return data[off];
  }
  [[nodiscard]] MICROCOUNT_HOST_DEVICE index_t size() const {
    index_t n = 1;
    for (int k = 0; k < Rank; ++k) n *= extent[k];
    return n;
  }
  [[nodiscard]] bool is_contiguous() const {
    index_t s = 1;
    for (int k = Rank - 1; k >= 0; --k) {
      if (extent[k] != 1 && stride[k] != s) return false;
      s *= extent[k];
    }
    return true;
  }
  // The read-only view of the same memory.
  operator tensor_view<const T, Rank>() const requires(!std::is_const_v<T>) { return {data, extent, stride}; }
};

template <class T, backend_tag B>
class tensor {
 public:
  using value_type = T;
  using backend_type = B;

  tensor() = default;
  explicit tensor(const microcount::shape& s) : shape_(s), data_(allocate(s.size())) {}
  tensor(std::initializer_list<index_t> dims) : tensor(microcount::shape(dims)) {}

  tensor(tensor&&) noexcept = default;
  tensor& operator=(tensor&&) noexcept = default;
  tensor(const tensor&) = delete;             // copies are explicit: clone() copies, share() aliases
  tensor& operator=(const tensor&) = delete;

  // Another handle on the same memory (reference counted). Layers keep their inputs for backward
  // this way; the rule that makes it safe: no op writes into a tensor it was given as input.
  [[nodiscard]] tensor share() const {
    tensor t;
    t.shape_ = shape_;
    t.data_ = data_;
    return t;
  }

  static tensor zeros(const microcount::shape& s) {
    tensor t(s);
    t.fill_zero();
    return t;
  }

  [[nodiscard]] tensor clone() const {
    tensor t(shape_);
    if constexpr (B::host_memory) {
      if (size()) std::memcpy(t.data(), data(), sizeof(T) * size());
    } else {
      memory<B>::copy(t.data(), data(), sizeof(T) * size());
    }
    return t;
  }

  void fill_zero() {
    if constexpr (B::host_memory) {
      if (size()) std::memset(data(), 0, sizeof(T) * size());
    } else {
      memory<B>::zero(data(), sizeof(T) * size());
    }
  }

  // Reallocates only when the element count changes; contents are then unspecified.
  void resize(const microcount::shape& s) {
    if (!data_ || s.size() != shape_.size() || data_.use_count() > 1) data_ = allocate(s.size());
    shape_ = s;
  }
  // Same memory, new extents with the same element count.
  void reshape(const microcount::shape& s) {
    require(s.size() == shape_.size(), "tensor", "reshape from " + shape_.str() + " to " + s.str() + " changes the size");
    shape_ = s;
  }

  [[nodiscard]] T* data() { return data_.get(); }
  [[nodiscard]] const T* data() const { return data_.get(); }
  [[nodiscard]] const microcount::shape& shape() const { return shape_; }
  // A default-constructed tensor holds nothing: size 0 and empty(), whatever its (rank-0) shape says.
  [[nodiscard]] index_t size() const { return data_ ? shape_.size() : 0; }
  [[nodiscard]] int rank() const { return shape_.rank; }
  [[nodiscard]] index_t dim(int i) const { return shape_[i]; }
  [[nodiscard]] bool empty() const { return size() == 0; }

  template <int Rank>
  [[nodiscard]] tensor_view<T, Rank> view() {
    return tensor_view<T, Rank>::contiguous(data(), extents<Rank>());
  }
  template <int Rank>
  [[nodiscard]] tensor_view<const T, Rank> view() const {
    return tensor_view<const T, Rank>::contiguous(data(), extents<Rank>());
  }

  // Transfers between this tensor's memory and host memory of size() elements (a copy on host backends).
  void upload(const T* host_src) { memory<B>::upload(data(), host_src, sizeof(T) * static_cast<std::size_t>(size())); }
  void download(T* host_dst) const { memory<B>::download(host_dst, data(), sizeof(T) * static_cast<std::size_t>(size())); }
  // The values in a host vector (small tensors: parameters, statistics).
  [[nodiscard]] std::vector<T> to_vector() const {
    std::vector<T> v(static_cast<std::size_t>(size()));
    download(v.data());
    return v;
  }

  // Host element access (host backends only), row-major flat index.
  T& operator[](index_t i) requires(B::host_memory) { return data_.get()[i]; }
  const T& operator[](index_t i) const requires(B::host_memory) { return data_.get()[i]; }

 private:
  struct deleter {
    void operator()(T* p) const noexcept { memory<B>::release(p); }
  };
  static std::shared_ptr<T> allocate(index_t n) {
    return std::shared_ptr<T>(static_cast<T*>(memory<B>::allocate(sizeof(T) * static_cast<std::size_t>(n))), deleter{});
  }
  template <int Rank>
  [[nodiscard]] std::array<index_t, Rank> extents() const {
    require(Rank == shape_.rank, "tensor", "view<" + std::to_string(Rank) + "> of a tensor of shape " + shape_.str());
    std::array<index_t, Rank> e{};
    for (int i = 0; i < Rank; ++i) e[i] = shape_[i];
    return e;
  }

  microcount::shape shape_;
  std::shared_ptr<T> data_;
};

// A copy of `t` in backend To's memory: host → any backend (one upload), any backend → host (one
// download), device → device through host staging. Code that stages data on the host (batches, tiles)
// uses this to serve device backends without knowing them.
template <backend_tag To, class T, backend_tag From>
tensor<T, To> transfer(const tensor<T, From>& t) {
  tensor<T, To> out(t.shape());
  if (t.empty()) return out;
  if constexpr (From::host_memory) {
    out.upload(t.data());
  } else if constexpr (To::host_memory) {
    t.download(out.data());
  } else {
    const std::vector<T> staging = t.to_vector();
    out.upload(staging.data());
  }
  return out;
}

}  // namespace microcount
