#pragma once
// Noise2Void blind-spot masking (Krull, Buchholz, Jug, CVPR 2019): a few pixels of a training patch are
// replaced by the value of a random neighbour, and the network is trained to predict the ORIGINAL values
// at exactly those pixels (masked MSE). The network cannot copy a pixel it never sees, so with
// pixel-independent noise the best it can do is predict the clean signal from the surroundings.
//
//   data::blind_spot_options o;                            // 0.198 % of pixels, radius 5 (N2V defaults)
//   auto m = data::mask_blind_spots(patch, o, r);          // patch [C, H, W]
//   // m.input: network input [C, H, W]; m.mask: 1 at the masked pixels [C, H, W]; target = patch
//
// Which pixels (N2V's get_stratified_coords2D): the patch is cut into square boxes of side
// round(sqrt(100 / percent)) (22 px for 0.198 %), one uniformly random pixel per box; a box hanging over
// the patch border keeps its pixel only when it falls inside. Coordinates are drawn per channel.
//
// Which value (N2V's manipulators): a window of (2·radius + 1)² pixels around the masked pixel, SHIFTED
// (not clipped) to lie inside the patch as N2V's get_subpatch does, and a uniformly random pixel of it:
//   replacement::uniform_without_centre  (default) any window pixel except the masked pixel itself, so
//                                        the true value never leaks into the input;
//   replacement::uniform_with_centre     N2V's default `pm_uniform_withCP`: the pixel itself may be drawn
//                                        (probability 1/121 for radius 5), reproducing N2V exactly.
// Values are always read from the original patch (masked pixels never feed each other).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "microcount/core/error.hpp"
#include "microcount/core/rng.hpp"

namespace microcount::data {

enum class replacement : std::uint8_t {
  uniform_without_centre,  // a random neighbour, never the pixel itself
  uniform_with_centre,     // N2V's pm_uniform_withCP (the pixel itself is one of the window's choices)
};

struct blind_spot_options {
  double percent = 0.198;  // share of masked pixels per patch, in percent (N2V's n2v_perc_pix)
  int radius = 5;          // neighbourhood radius: the window is (2·radius + 1)² (N2V's n2v_neighborhood_radius)
  replacement choose = replacement::uniform_without_centre;
};

// One masked pixel: where (channel, row, column) and where its replacement value came from.
struct blind_spot {
  std::size_t channel, y, x;
  std::size_t source_y, source_x;
};

struct masked_patch {
  xt::xtensor<float, 3> input;     // [C, H, W] the patch with the masked pixels replaced
  xt::xtensor<float, 3> mask;      // [C, H, W] 1 at masked pixels, 0 elsewhere
  std::vector<blind_spot> spots;   // one per masked pixel, channel by channel, boxes in row-major order
};

// Side of the stratification boxes for a masked share of `percent` %: one pixel per box² pixels.
inline std::size_t stratified_box_side(double percent) {
  require(std::isfinite(percent) && percent > 0 && percent <= 100, "blind spot",
          "masked percent must be in (0, 100], got " + std::to_string(percent));
  return std::max<std::size_t>(1, static_cast<std::size_t>(std::lround(std::sqrt(100.0 / percent))));
}

namespace blind_spot_detail {
// First index of the window of `side` = 2·radius + 1 around i, shifted to lie inside [0, n) (get_subpatch).
inline std::size_t window_start(std::size_t i, std::size_t n, std::size_t radius) {
  const std::size_t side = std::min(n, 2 * radius + 1);
  const std::size_t start = i > radius ? i - radius : 0;
  return std::min(start, n - side);
}
}  // namespace blind_spot_detail

// One pixel per box of `box` × `box`, for a plane of height × width: (row, column) pairs in box order.
inline std::vector<std::pair<std::size_t, std::size_t>> stratified_pixels(std::size_t height, std::size_t width,
                                                                          std::size_t box, rng& r) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  for (std::size_t by = 0; by < height; by += box)
    for (std::size_t bx = 0; bx < width; bx += box) {
      const std::size_t y = by + static_cast<std::size_t>(r.below(box));
      const std::size_t x = bx + static_cast<std::size_t>(r.below(box));
      if (y < height && x < width) out.emplace_back(y, x);
    }
  return out;
}

// Masks `patch` ([C, H, W]) as described at the top. Sides must be at least 2 (a pixel needs a neighbour).
inline masked_patch mask_blind_spots(const xt::xtensor<float, 3>& patch, const blind_spot_options& o, rng& r) {
  const std::size_t c_count = patch.shape()[0], h = patch.shape()[1], w = patch.shape()[2];
  require(c_count >= 1 && h >= 2 && w >= 2, "blind spot",
          "patch must have a channel and sides of at least 2 pixels, got " + std::to_string(c_count) + "×" +
              std::to_string(h) + "×" + std::to_string(w));
  require(o.radius >= 1 && o.radius <= 64, "blind spot", "radius must be 1 to 64, got " + std::to_string(o.radius));
  const std::size_t box = stratified_box_side(o.percent);
  const auto radius = static_cast<std::size_t>(o.radius);
  masked_patch m{patch, xt::zeros<float>(patch.shape()), {}};
  for (std::size_t c = 0; c < c_count; ++c)
    for (const auto& [y, x] : stratified_pixels(h, w, box, r)) {
      const std::size_t y0 = blind_spot_detail::window_start(y, h, radius), x0 = blind_spot_detail::window_start(x, w, radius);
      const std::size_t wh = std::min(h, 2 * radius + 1), ww = std::min(w, 2 * radius + 1);
      std::size_t sy = 0, sx = 0;
      do {  // rejection of the pixel itself (without centre): at most a few draws, the window has ≥ 4 pixels
        sy = y0 + static_cast<std::size_t>(r.below(wh));
        sx = x0 + static_cast<std::size_t>(r.below(ww));
      } while (o.choose == replacement::uniform_without_centre && sy == y && sx == x);
      m.input(c, y, x) = patch(c, sy, sx);
      m.mask(c, y, x) = 1.0f;
      m.spots.push_back({c, y, x, sy, sx});
    }
  return m;
}

}  // namespace microcount::data
