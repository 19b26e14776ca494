#pragma once
// Whole-image prediction with a fully convolutional model: overlapping tiles (tiling.hpp), batched through
// model.forward in evaluation mode, margins cropped, stitched; optional flip test-time augmentation.
//
//   auto net = nn::unet2d<>::make<backend::cpu>(cfg);  net.build({8, 1, 256, 256}, r);  /* load weights */
//   xt::xtensor<float, 3> density = infer::predict(net, image,                      // [C, H, W] -> [K, H, W]
//       {.tile = {256, 256}, .margin = {32, 32}, .divisor = infer::size_divisor<nn::unet2d<>>(cfg),
//        .batch = 8, .flips = infer::tta::flips});
//   Movies: [C, T, H, W] -> [K, T, H, W] with predict_options<3> (tiles in time too; flips never reverse time).
//
// The model must map [n, C, t...] to [n, K, t...] (same spatial extents, any tile shape that is a multiple
// of the divisor); K is learnt from the first forward. predict() switches the model to evaluation mode.
#include <algorithm>
#include <cstring>
#include <functional>
#include <utility>
#include <string>
#include <type_traits>
#include <vector>

#include <xtensor/xmanipulation.hpp>
#include <xtensor/xtensor.hpp>

#include "microcount/core/limits.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/infer/tiling.hpp"
#include "microcount/io/image.hpp"
#include "microcount/nn/layer.hpp"
#include "microcount/nn/models/unet.hpp"

namespace microcount::infer {

// Test-time augmentation over the last two (image) axes; time is never reversed.
enum class tta {
  none,   // one forward per tile
  flips,  // mean over the 4 flips (identity, left-right, up-down, both)
  d4      // mean over the 8 symmetries of the square (the 4 flips, each also transposed); any tile shape works
};

template <int N>
struct predict_options {
  extents<N> tile = tile_settings<N>::filled(256);
  extents<N> margin = tile_settings<N>::filled(32);
  extents<N> divisor = tile_settings<N>::filled(1);  // size_divisor<Spec>(config) for a U-Net
  index_t batch = 4;                                 // tiles per forward
  tta flips = tta::none;
  padding pad = padding::reflect;
  std::function<void(index_t done, index_t total)> progress = nullptr;  // called after every batch of tiles
};

template <class M>
concept inference_model = requires(M m, const nn::tensor_t<typename M::backend_type>& x) {
  typename M::backend_type;
  { m.forward(x) } -> std::same_as<nn::tensor_t<typename M::backend_type>>;
  m.set_mode(nn::mode::evaluation);
};

// The size divisor of a U-Net: pool^depth per axis.
template <class Spec>
struct divisor_of;
template <int D, class Norm, class Up, int Depth>
struct divisor_of<nn::unet<D, Norm, Up, Depth>> {
  static extents<D> get(const nn::unet_config<D>& c) {
    extents<D> d{};
    for (int a = 0; a < D; ++a) {
      d[a] = 1;
      for (int l = 0; l < Depth; ++l) d[a] *= c.pool[a];
    }
    return d;
  }
};
template <class Spec>
auto size_divisor(const typename Spec::config& c) {
  return divisor_of<Spec>::get(c);
}

// The receptive radius of a U-Net per axis: output pixel x depends only on inputs within x ± radius, so a
// tile margin >= radius makes tiled prediction equal the whole-image forward. Computed by carrying the
// interval of positions an output depends on down the levels and back (the worst pixel phase of the pooling
// grid), for "same" convolutions of the config's kernel, pool = stride pooling and the chosen upsampling.
template <class Spec>
struct radius_of;
template <int D, class Norm, class Up, int Depth>
struct radius_of<nn::unet<D, Norm, Up, Depth>> {
  static extents<D> get(const nn::unet_config<D>& c) {
    extents<D> r{};
    for (int a = 0; a < D; ++a) {
      const index_t half = c.kernel[a] / 2, p = c.pool[a];
      index_t phases = 1;
      for (int l = 0; l < Depth; ++l) phases *= p;
      for (index_t x = 0; x < phases; ++x) {
        const auto [lo, hi] = input_interval(x, x, 0, half, p);
        r[a] = std::max({r[a], x - lo, hi - x});
      }
    }
    return r;
  }

 private:
  static index_t floor_div(index_t a, index_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
  // Positions [lo, hi] at the output of level L's decoder -> the input positions they depend on.
  static std::pair<index_t, index_t> input_interval(index_t lo, index_t hi, int L, index_t half, index_t p) {
    lo -= 2 * half, hi += 2 * half;  // the level's last block (two convolutions); at the bottom, its only one
    if (L == Depth) return {lo, hi};
    // The up path: deeper positions feeding upsampled positions [lo, hi].
    index_t dlo = floor_div(lo, p), dhi = floor_div(hi, p);  // transposed conv (kernel = stride) and nearest
    if constexpr (std::is_same_v<Up, nn::up::bilinear>) {     // align_corners=False: floor((u + ½)/p − ½) and +1
      dlo = floor_div(2 * lo + 1 - p, 2 * p);
      dhi = floor_div(2 * hi + 1 - p, 2 * p) + 1;
    }
    const auto [ilo, ihi] = input_interval(dlo, dhi, L + 1, half, p);
    // Deeper inputs are pooled from this level's first block, whose input is 2·half further out; the skip
    // needs the same first block around [lo, hi].
    return {std::min(lo, p * ilo) - 2 * half, std::max(hi, p * ihi + p - 1) + 2 * half};
  }
};
template <class Spec>
auto receptive_radius(const typename Spec::config& c) {
  return radius_of<Spec>::get(c);
}

// One symmetry of the image plane: flip rows, flip columns, then (optionally) transpose.
struct plane_symmetry {
  bool flip_rows = false, flip_cols = false, transpose = false;
  [[nodiscard]] bool identity() const { return !flip_rows && !flip_cols && !transpose; }
};

inline std::vector<plane_symmetry> symmetries(tta t) {
  std::vector<plane_symmetry> s{{false, false, false}};
  if (t == tta::none) return s;
  s.push_back({false, true, false});
  s.push_back({true, false, false});
  s.push_back({true, true, false});
  if (t == tta::d4)
    for (int i = 0; i < 4; ++i) s.push_back({s[i].flip_rows, s[i].flip_cols, true});
  return s;
}

namespace detail {

// Calls f(src, dst) for every pixel of a rows×cols plane, where dst indexes the transformed plane
// (cols×rows when transposed): transformed[dst] = plane[src].
template <class F>
void for_each_plane_pixel(index_t rows, index_t cols, plane_symmetry g, F&& f) {
  const index_t out_cols = g.transpose ? rows : cols;
  for (index_t r = 0; r < rows; ++r) {
    const index_t fr = g.flip_rows ? rows - 1 - r : r;
    for (index_t c = 0; c < cols; ++c) {
      const index_t fc = g.flip_cols ? cols - 1 - c : c;
      const index_t dst = g.transpose ? fc * out_cols + fr : fr * out_cols + fc;
      f(r * cols + c, dst);
    }
  }
}

// x [n, C, lead..., rows, cols] -> g(x) [n, C, lead..., rows', cols'].
template <class B>
nn::tensor_t<B> apply_symmetry(const nn::tensor_t<B>& x, plane_symmetry g) {
  shape s = x.shape();
  const int r = s.rank;
  const index_t rows = s[r - 2], cols = s[r - 1], plane = rows * cols;
  if (g.transpose) std::swap(s[r - 2], s[r - 1]);
  nn::tensor_t<B> y(s);
  const auto* src = x.data();
  auto* dst = y.data();
  parallel_for(0, x.size() / plane, [&](index_t p) {
    for_each_plane_pixel(rows, cols, g, [&](index_t a, index_t b) { dst[p * plane + b] = src[p * plane + a]; });
  });
  return y;
}

// acc [n, K, lead..., rows, cols] += g⁻¹(y), y [n, K, lead..., rows', cols'] the output for g(x).
template <class B>
void accumulate_inverse(const nn::tensor_t<B>& y, plane_symmetry g, std::vector<float>& acc, index_t rows, index_t cols) {
  const index_t plane = rows * cols;
  const auto* src = y.data();
  parallel_for(0, y.size() / plane, [&](index_t p) {
    float* out = acc.data() + p * plane;
    for_each_plane_pixel(rows, cols, g, [&](index_t a, index_t b) { out[a] += static_cast<float>(src[p * plane + b]); });
  });
}

// Visits every row of the box [lo, hi) over the leading N−1 axes (last axis = the row), in row-major order.
template <int N, class F>
void for_each_row(const extents<N>& lo, const extents<N>& hi, F&& f) {
  extents<N> i = lo;
  for (int a = 0; a < N - 1; ++a)
    if (hi[a] <= lo[a]) return;
  while (true) {
    f(i);
    int a = N - 2;
    for (; a >= 0; --a) {
      if (++i[a] < hi[a]) break;
      i[a] = lo[a];
    }
    if (a < 0) return;
  }
}

template <int N>
index_t row_major_offset(const extents<N>& i, const extents<N>& e) {
  index_t off = 0;
  for (int a = 0; a < N; ++a) off = off * e[a] + i[a];
  return off;
}

// The tile [C, t...] of the padded image whose first pixel is `origin`: image [C, E...] contiguous.
template <int N, class T>
void gather_tile(const float* image, index_t channels, const extents<N>& image_ext, const extents<N>& origin,
                 const extents<N>& tile, padding mode, T* out) {
  std::array<std::vector<index_t>, N> source;  // per axis: tile coordinate -> image coordinate (−1: zero)
  for (int a = 0; a < N; ++a) {
    source[a].resize(static_cast<std::size_t>(tile[a]));
    for (index_t i = 0; i < tile[a]; ++i) source[a][i] = source_index(origin[a] + i, image_ext[a], mode);
  }
  index_t image_plane = 1, tile_plane = 1;
  for (int a = 0; a < N; ++a) image_plane *= image_ext[a], tile_plane *= tile[a];
  const index_t row = tile[N - 1];
  parallel_for(0, channels, [&](index_t c) {
    const float* img = image + c * image_plane;
    T* dst = out + c * tile_plane;
    for_each_row<N>(extents<N>{}, tile, [&](const extents<N>& i) {
      T* d = dst + row_major_offset<N>(i, tile);
      extents<N> s{};
      for (int a = 0; a < N - 1; ++a) {
        s[a] = source[a][i[a]];
        if (s[a] < 0) {
          std::fill(d, d + row, T(0));
          return;
        }
      }
      const float* line = img + row_major_offset<N>(s, image_ext);
      for (index_t x = 0; x < row; ++x) {
        const index_t sx = source[N - 1][x];
        d[x] = sx < 0 ? T(0) : static_cast<T>(line[sx]);
      }
    });
  });
}

// Writes the owned box of one tile's output [K, t...] into the output [K, E...].
template <int N>
void scatter_tile(const float* tile_out, index_t channels, const extents<N>& tile, const tile_box<N>& box,
                  const extents<N>& image_ext, float* out) {
  index_t image_plane = 1, tile_plane = 1;
  for (int a = 0; a < N; ++a) image_plane *= image_ext[a], tile_plane *= tile[a];
  const index_t width = box.own_end[N - 1] - box.own_begin[N - 1];
  for (index_t k = 0; k < channels; ++k) {
    for_each_row<N>(box.own_begin, box.own_end, [&](const extents<N>& i) {
      extents<N> local{};
      for (int a = 0; a < N; ++a) local[a] = i[a] - box.origin[a];
      std::memcpy(out + k * image_plane + row_major_offset<N>(i, image_ext),
                  tile_out + k * tile_plane + row_major_offset<N>(local, tile), sizeof(float) * width);
    });
  }
}

template <int N>
index_t product(const extents<N>& e) {
  index_t p = 1;
  for (auto v : e) p *= v;
  return p;
}

// The engine: image [C, E...] contiguous floats -> [K, E...].
template <int N, inference_model M>
xt::xtensor<float, N + 1> predict_contiguous(M& model, const float* image, index_t channels, const extents<N>& image_ext,
                                             const predict_options<N>& opt) {
  using B = typename M::backend_type;
  using T = scalar_t<B>;
  // Tiles are cut, flipped and stitched in host memory; a device backend gets each batch of tiles in one
  // upload and returns its outputs in one download.
  using host_b = std::conditional_t<B::host_memory, B, backend::reference>;
  require(channels >= 1, "predict", "the image has no channels");
  require(opt.batch >= 1, "predict", "batch must be at least 1, got " + std::to_string(opt.batch));
  const tile_plan<N> plan = plan_tiles<N>(image_ext, {opt.tile, opt.margin, opt.divisor});
  const index_t tile_size = product<N>(plan.tile);
  const index_t batch = std::min<index_t>(opt.batch, plan.count());
  const auto budget = static_cast<double>(limits().max_total_bytes);
  require(static_cast<double>(batch) * static_cast<double>(channels) * static_cast<double>(tile_size) * sizeof(T) <= budget,
          "predict", "a batch of " + std::to_string(batch) + " tiles of " + std::to_string(tile_size) +
                         " pixels x " + std::to_string(channels) + " channels exceeds the memory limit");

  model.set_mode(nn::mode::evaluation);
  const auto transforms = symmetries(opt.flips);
  const float scale = 1.0f / static_cast<float>(transforms.size());
  xt::xtensor<float, N + 1> output;
  index_t out_channels = 0;
  std::vector<float> acc;  // [n, K, t...] mean over the symmetries

  for (index_t first = 0; first < plan.count(); first += batch) {
    const index_t n = std::min(batch, plan.count() - first);
    shape in_shape{n, channels};
    in_shape.rank = N + 2;
    for (int a = 0; a < N; ++a) in_shape[2 + a] = plan.tile[a];
    nn::tensor_t<host_b> x(in_shape);  // [n, C, t...]
    for (index_t i = 0; i < n; ++i)
      gather_tile<N>(image, channels, image_ext, plan.tiles[first + i].origin, plan.tile, opt.pad,
                     x.data() + i * channels * tile_size);

    for (std::size_t g = 0; g < transforms.size(); ++g) {
      const auto sym = transforms[g];
      const auto run = [&](const nn::tensor_t<host_b>& in) {
        if constexpr (B::host_memory) return model.forward(in);
        else return transfer<host_b>(model.forward(transfer<B>(in)));
      };
      nn::tensor_t<host_b> y = sym.identity() ? run(x) : run(apply_symmetry<host_b>(x, sym));  // [n, K, t'...]
      shape expect = in_shape;
      if (sym.transpose) std::swap(expect[N], expect[N + 1]);
      expect[1] = y.rank() == N + 2 ? y.dim(1) : 0;
      require(y.shape() == expect && y.dim(1) >= 1, "predict",
              "the model maps tiles " + in_shape.str() + " to " + y.shape().str() +
                  "; tiled prediction needs an output with the input's batch and spatial extents");
      if (out_channels == 0) {
        out_channels = y.dim(1);
        require(static_cast<double>(out_channels) * static_cast<double>(product<N>(image_ext)) * sizeof(float) <= budget,
                "predict", "the output map (" + std::to_string(out_channels) + " channels) exceeds the memory limit");
        std::array<std::size_t, N + 1> out_shape{};
        out_shape[0] = static_cast<std::size_t>(out_channels);
        for (int a = 0; a < N; ++a) out_shape[1 + a] = static_cast<std::size_t>(image_ext[a]);
        output = xt::xtensor<float, N + 1>::from_shape(out_shape);
      }
      require(y.dim(1) == out_channels, "predict", "the model's output channel count changed between tiles");
      if (g == 0) acc.assign(static_cast<std::size_t>(y.size()), 0.0f);
      accumulate_inverse<host_b>(y, sym, acc, plan.tile[N - 2], plan.tile[N - 1]);
    }
    if (transforms.size() > 1)
      for (auto& v : acc) v *= scale;
    for (index_t i = 0; i < n; ++i)
      scatter_tile<N>(acc.data() + i * out_channels * tile_size, out_channels, plan.tile, plan.tiles[first + i], image_ext,
                      output.data());
    if (opt.progress) opt.progress(first + n, plan.count());
  }
  return output;
}

template <int N, class Shape>
extents<N> spatial_extents(const Shape& s) {
  extents<N> e{};
  for (int a = 0; a < N; ++a) e[a] = static_cast<index_t>(s[1 + a]);
  return e;
}

}  // namespace detail

// image [C, H, W] -> [K, H, W]
template <inference_model M>
xt::xtensor<float, 3> predict(M& model, const xt::xtensor<float, 3>& image, const predict_options<2>& options = {}) {
  return detail::predict_contiguous<2>(model, image.data(), static_cast<index_t>(image.shape()[0]),
                                       detail::spatial_extents<2>(image.shape()), options);
}

// movie [C, T, H, W] -> [K, T, H, W]
template <inference_model M>
xt::xtensor<float, 4> predict(M& model, const xt::xtensor<float, 4>& movie, const predict_options<3>& options = {}) {
  return detail::predict_contiguous<3>(model, movie.data(), static_cast<index_t>(movie.shape()[0]),
                                       detail::spatial_extents<3>(movie.shape()), options);
}

// A host tensor [C, H, W] or [C, T, H, W] (rank N + 1) -> xtensor [K, ...].
template <int N, inference_model M, backend_tag HB>
  requires(HB::host_memory)
xt::xtensor<float, N + 1> predict(M& model, const tensor<float, HB>& image, const predict_options<N>& options) {
  require(image.rank() == N + 1, "predict", "expected an image of rank " + std::to_string(N + 1) + " [C, spatial...], got " +
                                                image.shape().str());
  return detail::predict_contiguous<N>(model, image.data(), image.dim(0), detail::spatial_extents<N>(image.shape()), options);
}

// Every frame of a host image [F, C, H, W] (io::image::pixels) through a 2D model -> [F, K, H, W].
// Progress counts tiles over all frames.
template <inference_model M>
xt::xtensor<float, 4> predict_frames(M& model, const xt::xtensor<float, 4>& frames, const predict_options<2>& options = {}) {
  const auto& s = frames.shape();
  const index_t F = static_cast<index_t>(s[0]), C = static_cast<index_t>(s[1]);
  const extents<2> ext{static_cast<index_t>(s[2]), static_cast<index_t>(s[3])};
  xt::xtensor<float, 4> out;
  auto per_frame = options;
  for (index_t f = 0; f < F; ++f) {
    if (options.progress)
      per_frame.progress = [&, f](index_t done, index_t total) { options.progress(f * total + done, F * total); };
    const auto map = detail::predict_contiguous<2>(model, frames.data() + f * C * ext[0] * ext[1], C, ext, per_frame);  // [K, H, W]
    if (f == 0) out = xt::xtensor<float, 4>::from_shape({s[0], map.shape()[0], s[2], s[3]});
    std::copy(map.begin(), map.end(), out.begin() + f * static_cast<index_t>(map.size()));
  }
  return out;
}

// A movie as io stores it, [T, C, H, W], through a 3D (2D+t) model -> [T, K, H, W] (same layout back).
template <inference_model M>
xt::xtensor<float, 4> predict_movie(M& model, const xt::xtensor<float, 4>& frames, const predict_options<3>& options = {}) {
  const xt::xtensor<float, 4> movie = xt::transpose(frames, {1, 0, 2, 3});  // [C, T, H, W]
  return xt::transpose(predict(model, movie, options), {1, 0, 2, 3});
}

}  // namespace microcount::infer
