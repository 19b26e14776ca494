#pragma once
// Reference upsampling (nearest, and bi-/trilinear with align_corners=False): every output is written
// directly as the weighted sum of its 1, 2^Dims source elements; backward is the exact adjoint (scatter).
#include <array>
#include <cmath>
#include <vector>

#include "microcount/backends/reference/pool.hpp"
#include "microcount/core/tensor.hpp"
#include "microcount/nn/op.hpp"
#include "microcount/nn/ops_layers.hpp"

namespace microcount::resample_detail {

// For every output index along one axis: the two source indices and their weights. Nearest mode and
// axes of scale 1 use lo only (weight 1). Shared by backends so their index arithmetic agrees.
template <class W>
struct axis_map {
  std::vector<index_t> lo, hi;
  std::vector<W> w_lo, w_hi;

  axis_map(index_t in, int scale, ops::upsample_mode mode) {
    const index_t out = in * scale;
    lo.resize(out);
    hi.resize(out);
    w_lo.resize(out);
    w_hi.resize(out);
    for (index_t o = 0; o < out; ++o) {
      if (mode == ops::upsample_mode::nearest || scale == 1) {
        lo[o] = hi[o] = o / scale;
        w_lo[o] = W(1);
        w_hi[o] = W(0);
        continue;
      }
      // PyTorch's area_pixel_compute_source_index with align_corners=False, clamped below at 0.
      W src = (W(o) + W(0.5)) / W(scale) - W(0.5);
      if (src < W(0)) src = W(0);
      const auto i0 = static_cast<index_t>(src);  // floor, src >= 0
      lo[o] = i0;
      hi[o] = i0 + 1 < in ? i0 + 1 : in - 1;
      w_hi[o] = src - W(i0);
      w_lo[o] = W(1) - w_hi[o];
    }
  }
};

}  // namespace microcount::resample_detail

namespace microcount::reference_detail {

template <int Dims, class T>
struct upsample_kernel {
  using op = ops::upsample<Dims>;
  static constexpr int rank = Dims + 2;
  using in_view = tensor_view<const T, rank>;
  using out_view = tensor_view<T, rank>;

  static void forward(const op& p, in_view x, out_view y) {
    require_contiguous(x, "upsample input");
    for (index_t i = 0; i < y.size(); ++i) y.data[i] = T(0);
    visit(p, x.extent, y.extent, [&](index_t in_at, index_t out_at, double w) {
      if (w != 0) y.data[out_at] += T(w * x.data[in_at]);  // skipping weight 0 keeps an unused inf out
    });
  }

  static void backward(const op& p, in_view dy, out_view dx) {
    for (index_t i = 0; i < dx.size(); ++i) dx.data[i] = T(0);
    visit(p, dx.extent, dy.extent, [&](index_t in_at, index_t out_at, double w) {
      dx.data[in_at] += T(w * dy.data[out_at]);
    });
  }

 private:
  // Calls f(input offset, output offset, weight) for each of the 2^3 (lifted) source corners of every output.
  template <class Extent, class F>
  static void visit(const op& p, const Extent& in_extent, const Extent& out_extent, F&& f) {
    const auto in = lift_spatial<Dims>(in_extent), out = lift_spatial<Dims>(out_extent);
    const auto scale = lift_params<Dims>(p.scale);
    std::array<resample_detail::axis_map<double>, 3> map{
        resample_detail::axis_map<double>(in[0], int(scale[0]), p.mode),
        resample_detail::axis_map<double>(in[1], int(scale[1]), p.mode),
        resample_detail::axis_map<double>(in[2], int(scale[2]), p.mode)};
    const index_t planes = in_extent[0] * in_extent[1], in_size = in[0] * in[1] * in[2];
    const index_t out_size = out[0] * out[1] * out[2];
    for (index_t plane = 0; plane < planes; ++plane)
      for (index_t od = 0; od < out[0]; ++od)
        for (index_t oh = 0; oh < out[1]; ++oh)
          for (index_t ow = 0; ow < out[2]; ++ow)
            for (int corner = 0; corner < 8; ++corner) {
              const bool hd = corner & 4, hh = corner & 2, hw = corner & 1;
              const index_t d = hd ? map[0].hi[od] : map[0].lo[od];
              const index_t h = hh ? map[1].hi[oh] : map[1].lo[oh];
              const index_t w = hw ? map[2].hi[ow] : map[2].lo[ow];
              const double weight = (hd ? map[0].w_hi[od] : map[0].w_lo[od]) *
                                    (hh ? map[1].w_hi[oh] : map[1].w_lo[oh]) *
                                    (hw ? map[2].w_hi[ow] : map[2].w_lo[ow]);
              f(plane * in_size + (d * in[1] + h) * in[2] + w, plane * out_size + (od * out[1] + oh) * out[2] + ow,
                weight);
            }
  }
};

}  // namespace microcount::reference_detail

namespace microcount {

template <int Dims>
struct kernel<ops::upsample<Dims>, backend::reference> : reference_detail::upsample_kernel<Dims, float> {};
template <int Dims>
struct kernel<ops::upsample<Dims>, backend::reference_f64> : reference_detail::upsample_kernel<Dims, double> {};

}  // namespace microcount
