#pragma once
// Intensity normalisation, per sample.
//
//   percentile(values, q)                   numpy's default percentile (linear interpolation)
//   normalize_percentile(s, lo, hi)         per channel: v' = (v - P_lo) / max(P_hi - P_lo, 1e-6)
//   normalize_fixed(s, offset, scale)       v' = (v - offset) / scale, all channels alike
// and the views normalize_percentile(view, lo = 1, hi = 99.8), normalize_fixed(view, offset, scale).
//
// Percentiles are taken per channel over all frames of one sample (so 16-bit, 8-bit and RGB images all
// land near [0, 1] whatever their range). 1 and 99.8 are the CSBDeep / StarDist defaults and what the
// PyTorch yardstick uses, with the same 1e-6 floor on the divisor for flat images.
// Non-finite pixels (NaN: a missing value; ±inf) are left out of the percentiles and become 0 — the
// background level — after normalisation, so a network never sees them (readers pass them through).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "microcount/core/error.hpp"
#include "microcount/data/dataset.hpp"

namespace microcount::data {

// The q-th percentile (0 <= q <= 100) of `values` as numpy.percentile computes it by default: the
// values sorted, position q/100 · (n - 1), linear interpolation between its two neighbours.
// Reorders `values` (two nth_element passes, O(n), instead of a full sort). NaN and infinite values
// are removed first (as numpy.nanpercentile skips NaN); no finite value is an error.
inline double percentile(std::vector<float>& values, double q) {
  std::erase_if(values, [](float v) { return !std::isfinite(v); });
  require(!values.empty(), "percentile", "no finite values");
  require(q >= 0 && q <= 100, "percentile", "q must be in [0, 100]");
  const double at = q / 100.0 * static_cast<double>(values.size() - 1);
  const auto k = static_cast<std::size_t>(std::floor(at));
  const double frac = at - static_cast<double>(k);
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(k), values.end());
  const double below = values[k];
  if (frac == 0 || k + 1 >= values.size()) return below;
  // After nth_element every value past k is >= values[k]: the next order statistic is their minimum.
  const double above = *std::min_element(values.begin() + static_cast<std::ptrdiff_t>(k) + 1, values.end());
  return below + frac * (above - below);
}

inline void normalize_percentile(sample& s, double lo = 1.0, double hi = 99.8) {
  require(lo >= 0 && lo < hi && hi <= 100, s.name, "normalize_percentile needs 0 <= lo < hi <= 100");
  auto& px = s.image.pixels;  // [F, C, H, W]
  const std::size_t frames = px.shape()[0], channels = px.shape()[1], plane = px.shape()[2] * px.shape()[3];
  if (plane == 0) return;
  std::vector<float> values;
  for (std::size_t c = 0; c < channels; ++c) {
    values.resize(frames * plane);
    for (std::size_t f = 0; f < frames; ++f) std::copy_n(&px(f, c, 0, 0), plane, values.begin() + static_cast<std::ptrdiff_t>(f * plane));
    std::erase_if(values, [](float v) { return !std::isfinite(v); });
    if (values.empty()) {  // nothing to measure: every pixel of the channel is non-finite
      for (std::size_t f = 0; f < frames; ++f) std::fill_n(&px(f, c, 0, 0), plane, 0.0f);
      continue;
    }
    const double p_lo = percentile(values, lo), p_hi = percentile(values, hi);
    const double inv = 1.0 / std::max(p_hi - p_lo, 1e-6);
    for (std::size_t f = 0; f < frames; ++f) {
      float* v = &px(f, c, 0, 0);  // [H, W]
      for (std::size_t i = 0; i < plane; ++i) v[i] = std::isfinite(v[i]) ? static_cast<float>((v[i] - p_lo) * inv) : 0.0f;
    }
  }
}

inline void normalize_fixed(sample& s, double offset, double scale) {
  require(scale != 0 && std::isfinite(scale) && std::isfinite(offset), s.name, "normalize_fixed needs a finite, non-zero scale");
  const double inv = 1.0 / scale;
  for (auto& v : s.image.pixels) v = std::isfinite(v) ? static_cast<float>((v - offset) * inv) : 0.0f;
}

template <sample_view V>
auto normalize_percentile(V source, double lo = 1.0, double hi = 99.8) {
  require(lo >= 0 && lo < hi && hi <= 100, "normalize_percentile", "needs 0 <= lo < hi <= 100");
  return transform(std::move(source), [lo, hi](sample s, rng&) {
    normalize_percentile(s, lo, hi);
    return s;
  });
}

template <sample_view V>
auto normalize_fixed(V source, double offset, double scale) {
  require(scale != 0 && std::isfinite(scale) && std::isfinite(offset), "normalize_fixed", "needs a finite, non-zero scale");
  return transform(std::move(source), [offset, scale](sample s, rng&) {
    normalize_fixed(s, offset, scale);
    return s;
  });
}

}  // namespace microcount::data
