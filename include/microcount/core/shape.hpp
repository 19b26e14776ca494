#pragma once
// Tensor shapes: up to 5 extents, row-major (the last index varies fastest).
// Layout conventions: images NCHW = [N, C, H, W]; movies NCDHW = [N, C, T, H, W] (D is time for 2D+t).
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "microcount/core/config.hpp"
#include "microcount/core/error.hpp"

namespace microcount {

using index_t = std::int64_t;

struct shape {
  static constexpr int max_rank = 5;
  std::array<index_t, max_rank> dims{};
  int rank = 0;

  constexpr shape() = default;
  constexpr shape(std::initializer_list<index_t> d) {
    if (d.size() > max_rank) throw error("shape", "more than 5 dimensions");
    for (index_t v : d) dims[rank++] = v;
  }
  [[nodiscard]] constexpr index_t operator[](int i) const { return dims[i]; }
  constexpr index_t& operator[](int i) { return dims[i]; }
  [[nodiscard]] constexpr index_t size() const {
    index_t n = 1;
    for (int i = 0; i < rank; ++i) n *= dims[i];
    return n;
  }
  // Product of extents from `first` on (the row stride of dimension first-1).
  [[nodiscard]] constexpr index_t size_from(int first) const {
    index_t n = 1;
    for (int i = first; i < rank; ++i) n *= dims[i];
    return n;
  }
  friend constexpr bool operator==(const shape& a, const shape& b) {
    if (a.rank != b.rank) return false;
    for (int i = 0; i < a.rank; ++i)
      if (a.dims[i] != b.dims[i]) return false;
    return true;
  }
  [[nodiscard]] std::string str() const {
    std::string s = "[";
    for (int i = 0; i < rank; ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
    return s + "]";
  }
};

}  // namespace microcount
