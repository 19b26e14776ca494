#pragma once
// Intensity normalisation of movies, one frame at a time.
//
//   normalize_frames(frames, lo = 1, hi = 99.8)   each frame t: v' = (v - P_lo(t)) / max(P_hi(t) - P_lo(t), 1e-6)
//
// Per frame rather than per movie because TIRF movies bleach: the last frames can be several times
// dimmer than the first, and one movie-wide scale would leave a network looking at ever darker input.
// Percentiles are numpy's default (data::percentile, linear interpolation), the same 1 / 99.8 defaults and
// 1e-6 floor as the still-image normalisation. Non-finite pixels are ignored when measuring; a frame
// without a finite pixel is left as it is.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "microcount/core/error.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/data/normalize.hpp"

namespace microcount::data {

namespace movie_detail {

// Order-preserving map of a finite float to an unsigned key (negative floats flipped, positives offset).
inline std::uint32_t order_key(float v) {
  const auto u = std::bit_cast<std::uint32_t>(v);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

}  // namespace movie_detail

// The (P_lo, P_hi) percentiles of one frame, exactly numpy's default (the values data::percentile gives);
// false when the frame has no finite pixel. A radix selection instead of nth_element over the frame: one
// pass builds a histogram of the top 16 bits of each value's order key, the wanted ranks (two per
// percentile, for the interpolation) fall in at most four buckets, and only those buckets' values are
// gathered and selected. Three cheap passes instead of two selections: this runs once per frame of movies
// with a thousand frames.
inline bool frame_percentiles(const float* frame, std::size_t pixels, double lo, double hi, double& p_lo, double& p_hi) {
  std::vector<std::uint32_t> histogram(std::size_t{1} << 16, 0);  // [65536] values per top-16-bit key
  std::size_t n = 0;
  for (std::size_t i = 0; i < pixels; ++i)
    if (std::isfinite(frame[i])) {
      ++histogram[movie_detail::order_key(frame[i]) >> 16];
      ++n;
    }
  if (n == 0) return false;
  // Ranks wanted: floor(position) and the next one when the position is fractional.
  struct wanted {
    std::size_t rank, bucket = 0, offset = 0;
    double value = 0;
  };
  const auto position = [&](double q) { return q / 100 * static_cast<double>(n - 1); };
  const double at_lo = position(lo), at_hi = position(hi);
  std::vector<wanted> ranks;
  for (const double at : {at_lo, at_hi}) {
    const auto k = static_cast<std::size_t>(std::floor(at));
    ranks.push_back({k});
    if (at > static_cast<double>(k) && k + 1 < n) ranks.push_back({k + 1});
  }
  // ranks are ascending (lo < hi): one walk over the histogram places them all.
  std::size_t bucket = 0, below = 0;
  for (auto& r : ranks) {
    while (below + histogram[bucket] <= r.rank) below += histogram[bucket++];
    r.bucket = bucket;
    r.offset = r.rank - below;
  }
  std::vector<std::size_t> buckets;
  for (const auto& r : ranks)
    if (std::find(buckets.begin(), buckets.end(), r.bucket) == buckets.end()) buckets.push_back(r.bucket);
  std::vector<std::vector<float>> members(buckets.size());
  for (std::size_t b = 0; b < buckets.size(); ++b) members[b].reserve(histogram[buckets[b]]);
  for (std::size_t i = 0; i < pixels; ++i) {
    if (!std::isfinite(frame[i])) continue;
    const std::size_t key = movie_detail::order_key(frame[i]) >> 16;
    for (std::size_t b = 0; b < buckets.size(); ++b)
      if (buckets[b] == key) members[b].push_back(frame[i]);
  }
  for (auto& r : ranks) {
    auto& m = members[static_cast<std::size_t>(std::find(buckets.begin(), buckets.end(), r.bucket) - buckets.begin())];
    std::nth_element(m.begin(), m.begin() + static_cast<std::ptrdiff_t>(r.offset), m.end());
    r.value = m[r.offset];
  }
  const auto interpolate = [&](double at) {
    const auto k = static_cast<std::size_t>(std::floor(at));
    const double frac = at - static_cast<double>(k);
    const auto value_at = [&](std::size_t rank) {
      return std::find_if(ranks.begin(), ranks.end(), [&](const wanted& w) { return w.rank == rank; })->value;
    };
    const double v = value_at(k);
    if (frac == 0 || k + 1 >= n) return v;
    return v + frac * (value_at(k + 1) - v);
  };
  p_lo = interpolate(at_lo);
  p_hi = interpolate(at_hi);
  return true;
}

// Normalises every frame of a [T, H, W] movie in place by its own lo / hi percentiles.
inline void normalize_frames(xt::xtensor<float, 3>& frames, double lo = 1, double hi = 99.8) {
  require(lo >= 0 && lo < hi && hi <= 100, "normalize_frames", "needs 0 <= lo < hi <= 100");
  const std::size_t T = frames.shape()[0], plane = frames.shape()[1] * frames.shape()[2];
  if (plane == 0) return;
  // Frames are independent.
  parallel_for(0, static_cast<std::int64_t>(T), [&](std::int64_t t) {
    float* v = frames.data() + static_cast<std::size_t>(t) * plane;  // [H, W]
    double p_lo = 0, p_hi = 0;
    if (!frame_percentiles(v, plane, lo, hi, p_lo, p_hi)) return;
    const double inv = 1.0 / std::max(p_hi - p_lo, 1e-6);
    for (std::size_t i = 0; i < plane; ++i) v[i] = static_cast<float>((v[i] - p_lo) * inv);
  });
}

}  // namespace microcount::data
