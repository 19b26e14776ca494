#pragma once
// Disjoint sets over 0..n-1 with path halving and union by smaller index, so the representative of
// every set is its smallest member (handy for raster-order labelling).
#include <cstdint>
#include <utility>
#include <vector>

namespace microcount::post {

class union_find {
 public:
  explicit union_find(std::size_t n = 0) : parent_(n) {
    for (std::size_t i = 0; i < n; ++i) parent_[i] = static_cast<std::uint32_t>(i);
  }
  // Adds a new singleton set and returns its id.
  std::uint32_t add() {
    parent_.push_back(static_cast<std::uint32_t>(parent_.size()));
    return parent_.back();
  }
  std::uint32_t find(std::uint32_t a) {
    while (parent_[a] != a) {
      parent_[a] = parent_[parent_[a]];
      a = parent_[a];
    }
    return a;
  }
  void unite(std::uint32_t a, std::uint32_t b) {
    a = find(a);
    b = find(b);
    if (a == b) return;
    if (b < a) std::swap(a, b);
    parent_[b] = a;  // the smaller id stays the root
  }
  [[nodiscard]] std::size_t size() const { return parent_.size(); }

 private:
  std::vector<std::uint32_t> parent_;
};

}  // namespace microcount::post
