#pragma once
// Tile planning for inference on images of any size: pure layout arithmetic, no pixels, no network.
// N is the number of spatial axes: 2 for images [H, W], 3 for movies [T, H, W].
//
//   auto plan = infer::plan_tiles<2>({2047, 1500}, {.tile = {256, 256}, .margin = {32, 32}, .divisor = {8, 8}});
//   for (const auto& t : plan.tiles) { ... }   // network input = padded image [t.origin, t.origin + plan.tile)
//                                              // written to the output   = [t.own_begin, t.own_end)
//
// Per axis (the plan is the Cartesian product of per-axis segments, last axis fastest):
//   E  image extent                  P = round_up(E, d)     padded extent (the network needs multiples of d)
//   t  tile extent = min(round_up(tile, d), P)              every tile has the same shape (one batch shape)
//   s  stride = round_down(t − 2·margin, d)                 origins are multiples of d: a tile sees the same
//                                                           pooling grid as a whole-image forward would
//   origins 0, s, 2s, …, P − t (the last one moved back to end at P: tiles never leave the padded image)
//   ownership boundary between neighbours = middle of their overlap, so each side keeps >= margin of context;
//   the first tile owns from 0 and the last to E (image borders need no margin: a whole-image forward
//   has the same border there). Every pixel of [0, E) is owned by exactly one tile.
// Pixels in [E, P) (and everywhere when the image is smaller than one tile) are padding: reflection
// (default: no artificial edge the network never saw in training) or zeros (what the network's own
// "same" convolutions do at an image border).
#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include "microcount/core/error.hpp"
#include "microcount/core/shape.hpp"

namespace microcount::infer {

enum class padding { reflect, zero };

template <int N>
using extents = std::array<index_t, N>;

template <int N>
struct tile_settings {
  static_assert(N == 2 || N == 3, "microcount: tiles are 2D [H, W] or 3D [T, H, W]");
  extents<N> tile = filled(256);     // requested tile extent (rounded up to the divisor)
  extents<N> margin = filled(32);    // context cropped at each tile side that is not an image border
  extents<N> divisor = filled(1);    // the network's size divisor per axis (2^depth for a U-Net)

  static constexpr extents<N> filled(index_t v) {
    extents<N> a{};
    for (auto& e : a) e = v;
    return a;
  }
};

// One tile: the network input is the padded image box [origin, origin + plan.tile); the output pixels it
// writes are [own_begin, own_end) in image coordinates (a sub-box of the input box).
template <int N>
struct tile_box {
  extents<N> origin{};
  extents<N> own_begin{};
  extents<N> own_end{};
};

template <int N>
struct tile_plan {
  extents<N> image{};   // E per axis
  extents<N> padded{};  // P per axis: multiples of the divisor, >= E
  extents<N> tile{};    // t per axis: the network input extent of every tile
  std::vector<tile_box<N>> tiles;
  [[nodiscard]] index_t count() const { return static_cast<index_t>(tiles.size()); }
};

namespace detail {

// One axis: tile origins and ownership intervals.
struct axis_segment {
  index_t origin, own_begin, own_end;
};

inline index_t round_up(index_t v, index_t d) { return (v + d - 1) / d * d; }

inline std::vector<axis_segment> plan_axis(index_t extent, index_t tile, index_t margin, index_t divisor, int axis,
                                           index_t& padded, index_t& tile_out) {
  const std::string where = "tile plan (axis " + std::to_string(axis) + ")";
  require(extent >= 1, where, "image extent must be positive, got " + std::to_string(extent));
  require(divisor >= 1, where, "size divisor must be positive, got " + std::to_string(divisor));
  require(tile >= 1, where, "tile extent must be positive, got " + std::to_string(tile));
  require(margin >= 0, where, "margin must not be negative, got " + std::to_string(margin));
  padded = round_up(extent, divisor);
  tile_out = std::min(round_up(tile, divisor), padded);
  const index_t t = tile_out, P = padded;
  if (t == P) return {{0, 0, extent}};  // one tile along this axis: both sides are image borders
  const index_t stride = (t - 2 * margin) / divisor * divisor;
  require(stride >= 1, where,
          "tile " + std::to_string(t) + " minus 2 x margin " + std::to_string(margin) +
              " leaves no room for a stride that is a multiple of the divisor " + std::to_string(divisor) +
              " (use a larger tile or a smaller margin)");
  std::vector<index_t> origins;
  for (index_t o = 0;; o += stride) {
    if (o + t >= P) {
      origins.push_back(P - t);  // a multiple of d: P and t are
      break;
    }
    origins.push_back(o);
  }
  std::vector<axis_segment> segments;
  index_t begin = 0;
  for (std::size_t k = 0; k < origins.size(); ++k) {
    // Middle of the overlap with the next tile: [origin_{k+1} + margin, origin_k + t − margin] is non-empty
    // because origin_{k+1} − origin_k <= stride <= t − 2·margin.
    index_t end = k + 1 < origins.size() ? (origins[k + 1] + origins[k] + t) / 2 : extent;
    end = std::min(end, extent);
    if (end > begin) segments.push_back({origins[k], begin, end});
    begin = std::max(begin, end);
    if (begin >= extent) break;  // the rest only covers padding
  }
  return segments;
}

}  // namespace detail

// Plans tiles covering an image of extents `image` (spatial only: [H, W] or [T, H, W]).
template <int N>
tile_plan<N> plan_tiles(const extents<N>& image, const tile_settings<N>& settings) {
  tile_plan<N> plan;
  plan.image = image;
  std::array<std::vector<detail::axis_segment>, N> axes;
  std::size_t total = 1;
  for (int a = 0; a < N; ++a) {
    axes[a] = detail::plan_axis(image[a], settings.tile[a], settings.margin[a], settings.divisor[a], a, plan.padded[a],
                                plan.tile[a]);
    total *= axes[a].size();
  }
  plan.tiles.reserve(total);
  std::array<std::size_t, N> k{};  // odometer over the per-axis segments, last axis fastest
  for (std::size_t i = 0; i < total; ++i) {
    tile_box<N> box;
    for (int a = 0; a < N; ++a) {
      box.origin[a] = axes[a][k[a]].origin;
      box.own_begin[a] = axes[a][k[a]].own_begin;
      box.own_end[a] = axes[a][k[a]].own_end;
    }
    plan.tiles.push_back(box);
    for (int a = N - 1; a >= 0; --a) {
      if (++k[a] < axes[a].size()) break;
      k[a] = 0;
    }
  }
  return plan;
}

// Source index along an axis of extent `extent` for a padded coordinate i in [0, P): inside the image i
// itself; beyond it the mirror image without repeating the edge (numpy "reflect": ... 2 1 | 0 1 2 | 1 0 ...),
// periodic so any padding length works; -1 means a zero (padding::zero, or outside).
inline index_t source_index(index_t i, index_t extent, padding mode) {
  if (i >= 0 && i < extent) return i;
  if (mode == padding::zero) return -1;
  if (extent == 1) return 0;
  const index_t period = 2 * (extent - 1);
  index_t r = i % period;
  if (r < 0) r += period;
  return r < extent ? r : period - r;
}

}  // namespace microcount::infer
