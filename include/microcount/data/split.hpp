#pragma once
// Train / validation / test splits as index lists into a dataset.
//
//   split(n, {0.6, 0.2, 0.2}, seed)   seeded random split of n samples
//   split(ds, train, val, test)       explicit lists of image names (e.g. a published protocol)
//   split_in_order(n, {15, 7, 22})    the first 15, the next 7, the next 22 (name order)
//
// The seeded split: a Fisher–Yates shuffle of 0..n-1 driven by microcount::rng(seed) (portable, the
// same lists on every platform); the first round(0.6·n) shuffled indices are train, the next
// round(0.2·n) validation, the rest test. Each list is then sorted ascending, so the lists are sets
// and iteration follows name order.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "microcount/core/error.hpp"
#include "microcount/core/rng.hpp"
#include "microcount/data/dataset.hpp"

namespace microcount::data {

struct split_indices {
  std::vector<std::size_t> train, validation, test;
};

struct split_fractions {
  double train = 0.6, validation = 0.2, test = 0.2;
};

inline split_indices split(std::size_t n, split_fractions f = {}, std::uint64_t seed = 0) {
  const char* where = "split";
  require(f.train >= 0 && f.validation >= 0 && f.test >= 0, where, "fractions must be >= 0");
  require(std::abs(f.train + f.validation + f.test - 1.0) < 1e-9, where,
          "fractions must sum to 1 (got " + std::to_string(f.train + f.validation + f.test) + ")");
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  rng r(seed);
  for (std::size_t i = n; i > 1; --i) std::swap(order[i - 1], order[r.below(i)]);
  const auto n_train = std::min(n, static_cast<std::size_t>(std::llround(f.train * static_cast<double>(n))));
  const auto n_val = std::min(n - n_train, static_cast<std::size_t>(std::llround(f.validation * static_cast<double>(n))));
  split_indices out;
  out.train.assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n_train));
  out.validation.assign(order.begin() + static_cast<std::ptrdiff_t>(n_train),
                        order.begin() + static_cast<std::ptrdiff_t>(n_train + n_val));
  out.test.assign(order.begin() + static_cast<std::ptrdiff_t>(n_train + n_val), order.end());
  for (auto* l : {&out.train, &out.validation, &out.test}) std::sort(l->begin(), l->end());
  return out;
}

inline split_indices split(const dataset& ds, split_fractions f = {}, std::uint64_t seed = 0) {
  return split(ds.size(), f, seed);
}

// Consecutive blocks: the first counts[0] samples, the next counts[1], the next counts[2].
inline split_indices split_in_order(std::size_t n, std::array<std::size_t, 3> counts) {
  require(counts[0] + counts[1] + counts[2] <= n, "split_in_order",
          "asks for " + std::to_string(counts[0] + counts[1] + counts[2]) + " samples of " + std::to_string(n));
  split_indices out;
  std::size_t at = 0;
  const std::array<std::vector<std::size_t>*, 3> lists{&out.train, &out.validation, &out.test};
  for (std::size_t k = 0; k < 3; ++k)
    for (std::size_t i = 0; i < counts[k]; ++i) lists[k]->push_back(at++);
  return out;
}

// Explicit lists of image names. Unknown names and names in two lists are errors naming them.
inline split_indices split(const dataset& ds, const std::vector<std::string>& train,
                           const std::vector<std::string>& validation, const std::vector<std::string>& test) {
  std::vector<int> used(ds.size(), 0);
  const auto indices = [&](const std::vector<std::string>& names, const char* list) {
    std::vector<std::size_t> out;
    for (const auto& name : names) {
      const std::size_t i = ds.find(name);
      require(i < ds.size(), name, std::string("in the ") + list + " list is not an image of the dataset");
      require(used[i]++ == 0, name, std::string("is listed twice (again in the ") + list + " list)");
      out.push_back(i);
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  split_indices out;
  out.train = indices(train, "train");
  out.validation = indices(validation, "validation");
  out.test = indices(test, "test");
  return out;
}

}  // namespace microcount::data
