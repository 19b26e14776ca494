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
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "microcount/core/error.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/data/normalize.hpp"

namespace microcount::data {

// The (P_lo, P_hi) percentiles of one frame; false when it has no finite pixel.
inline bool frame_percentiles(const float* frame, std::size_t pixels, double lo, double hi, std::vector<float>& scratch,
                              double& p_lo, double& p_hi) {
  scratch.assign(frame, frame + pixels);
  std::erase_if(scratch, [](float v) { return !std::isfinite(v); });
  if (scratch.empty()) return false;
  p_lo = percentile(scratch, lo);
  p_hi = percentile(scratch, hi);
  return true;
}

// Normalises every frame of a [T, H, W] movie in place by its own lo / hi percentiles.
inline void normalize_frames(xt::xtensor<float, 3>& frames, double lo = 1, double hi = 99.8) {
  require(lo >= 0 && lo < hi && hi <= 100, "normalize_frames", "needs 0 <= lo < hi <= 100");
  const std::size_t T = frames.shape()[0], plane = frames.shape()[1] * frames.shape()[2];
  if (plane == 0) return;
  // Frames are independent; a frame's scratch copy is its only allocation.
  parallel_for(0, static_cast<std::int64_t>(T), [&](std::int64_t t) {
    float* v = frames.data() + static_cast<std::size_t>(t) * plane;  // [H, W]
    std::vector<float> scratch;
    double p_lo = 0, p_hi = 0;
    if (!frame_percentiles(v, plane, lo, hi, scratch, p_lo, p_hi)) return;
    const double inv = 1.0 / std::max(p_hi - p_lo, 1e-6);
    for (std::size_t i = 0; i < plane; ++i) v[i] = static_cast<float>((v[i] - p_lo) * inv);
  });
}

}  // namespace microcount::data
