#pragma once
// Upsampling (nearest, bi-/trilinear with align_corners=False; 2D and 3D) on backend::cuda. The per-axis
// source indices and weights are the reference's (resample_detail::axis_map, computed on the host and
// uploaded as small tables), so the index arithmetic agrees exactly.
//   forward   one thread per output: the weighted sum of its 2³ (lifted) corners, in the reference's
//             corner order, weight-0 corners skipped as the reference does
//   backward  a gather, not atomics: one thread per input element walks the outputs that can reference
//             it (per-axis ranges from the tables) in ascending order, corners in order, adding w·dy
//             where a corner lands on it: the reference scatter's additions in its order, so exact
#include <array>
#include <memory>
#include <vector>

#include "microcount/backends/cuda/launch.cuh"
#include "microcount/backends/cuda/ops_support.cuh"
#include "microcount/backends/reference/resample.hpp"

namespace microcount::cuda_ops {

// The device tables of the three lifted axes (D, H, W).
struct resample_tables {
  index_t in[3], out[3];
  const index_t* lo[3];     // [out[a]] source index of the lower neighbour
  const index_t* hi[3];     // [out[a]] of the upper one
  const index_t* first[3];  // [in[a]] the first output referencing input index i along axis a
  const index_t* last[3];   // [in[a]] the last (first > last: none)
  const double* w_lo[3];    // [out[a]]
  const double* w_hi[3];    // [out[a]]
  index_t planes;           // N·C
  [[nodiscard]] MICROCOUNT_HOST_DEVICE index_t in_size() const { return in[0] * in[1] * in[2]; }
  [[nodiscard]] MICROCOUNT_HOST_DEVICE index_t out_size() const { return out[0] * out[1] * out[2]; }
  // Corner k (bit 2: d, bit 1: h, bit 0: w) of output (od, oh, ow): its input offset and weight.
  MICROCOUNT_HOST_DEVICE void corner(int k, index_t od, index_t oh, index_t ow, index_t& at, double& weight) const {
    const bool hd = k & 4, hh = k & 2, hw = k & 1;
    const index_t d = hd ? hi[0][od] : lo[0][od], h = hh ? hi[1][oh] : lo[1][oh], w = hw ? hi[2][ow] : lo[2][ow];
    weight = (hd ? w_hi[0][od] : w_lo[0][od]) * (hh ? w_hi[1][oh] : w_lo[1][oh]) * (hw ? w_hi[2][ow] : w_lo[2][ow]);
    at = (d * in[1] + h) * in[2] + w;
  }
};

// Builds and owns the tables for one call.
class resample_plan {
 public:
  template <class Extent>
  resample_plan(const Extent& in_extent, const Extent& out_extent, const std::array<index_t, 3>& in,
                const std::array<index_t, 3>& out, const std::array<index_t, 3>& scale, ops::upsample_mode mode) {
    std::vector<index_t> indices;
    std::vector<double> weights;
    std::array<std::size_t, 3> lo_at{}, hi_at{}, first_at{}, last_at{}, wlo_at{}, whi_at{};
    for (int a = 0; a < 3; ++a) {
      const resample_detail::axis_map<double> map(in[a], int(scale[a]), mode);
      std::vector<index_t> first(static_cast<std::size_t>(in[a]), 1), last(static_cast<std::size_t>(in[a]), 0);
      for (index_t o = out[a] - 1; o >= 0; --o)
        for (const index_t i : {map.lo[o], map.hi[o]}) first[i] = o;
      for (index_t o = 0; o < out[a]; ++o)
        for (const index_t i : {map.lo[o], map.hi[o]}) last[i] = o;
      lo_at[a] = append(indices, map.lo);
      hi_at[a] = append(indices, map.hi);
      first_at[a] = append(indices, first);
      last_at[a] = append(indices, last);
      wlo_at[a] = append(weights, map.w_lo);
      whi_at[a] = append(weights, map.w_hi);
      tables_.in[a] = in[a];
      tables_.out[a] = out[a];
    }
    tables_.planes = in_extent[0] * in_extent[1];
    (void)out_extent;
    index_table_ = std::make_unique<device_buffer<index_t>>(indices);
    weight_table_ = std::make_unique<device_buffer<double>>(weights);
    for (int a = 0; a < 3; ++a) {
      tables_.lo[a] = index_table_->get() + lo_at[a];
      tables_.hi[a] = index_table_->get() + hi_at[a];
      tables_.first[a] = index_table_->get() + first_at[a];
      tables_.last[a] = index_table_->get() + last_at[a];
      tables_.w_lo[a] = weight_table_->get() + wlo_at[a];
      tables_.w_hi[a] = weight_table_->get() + whi_at[a];
    }
  }
  [[nodiscard]] const resample_tables& tables() const { return tables_; }

 private:
  template <class T>
  static std::size_t append(std::vector<T>& all, const std::vector<T>& part) {
    const std::size_t at = all.size();
    all.insert(all.end(), part.begin(), part.end());
    return at;
  }
  resample_tables tables_{};
  std::unique_ptr<device_buffer<index_t>> index_table_;
  std::unique_ptr<device_buffer<double>> weight_table_;
};

struct upsample_forward_kernel {
  static constexpr const char* name = "upsample_forward";
  resample_tables t;
  template <class Ctx>
  MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx, const float* x, float* y) const {
    const index_t out_size = t.out_size(), in_size = t.in_size(), total = t.planes * out_size;
    for (index_t o = global_index(ctx); o < total; o += global_stride(ctx)) {
      const index_t plane = o / out_size, r = o % out_size;
      const index_t ow = r % t.out[2], oh = r / t.out[2] % t.out[1], od = r / (t.out[1] * t.out[2]);
      float sum = 0;
      for (int k = 0; k < 8; ++k) {
        index_t at;
        double w;
        t.corner(k, od, oh, ow, at, w);
        if (w != 0) sum += float(w * x[plane * in_size + at]);  // weight 0 skipped: an unused inf stays out
      }
      y[o] = sum;
    }
  }
};

struct upsample_backward_kernel {
  static constexpr const char* name = "upsample_backward";
  resample_tables t;
  template <class Ctx>
  MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx, const float* dy, float* dx) const {
    const index_t out_size = t.out_size(), in_size = t.in_size(), total = t.planes * in_size;
    for (index_t e = global_index(ctx); e < total; e += global_stride(ctx)) {
      const index_t plane = e / in_size, at = e % in_size;
      const index_t w = at % t.in[2], h = at / t.in[2] % t.in[1], d = at / (t.in[1] * t.in[2]);
      const float* dyp = dy + plane * out_size;
      float sum = 0;
      // Which neighbour (lo, hi) of each output lands on this input decides the corners that count;
      // the corners are still visited in the reference's order, so the sum is the same.
      for (index_t od = t.first[0][d]; od <= t.last[0][d]; ++od) {
        const bool d_lo = t.lo[0][od] == d, d_hi = t.hi[0][od] == d;
        if (!d_lo && !d_hi) continue;
        for (index_t oh = t.first[1][h]; oh <= t.last[1][h]; ++oh) {
          const bool h_lo = t.lo[1][oh] == h, h_hi = t.hi[1][oh] == h;
          if (!h_lo && !h_hi) continue;
          for (index_t ow = t.first[2][w]; ow <= t.last[2][w]; ++ow) {
            const bool w_lo = t.lo[2][ow] == w, w_hi = t.hi[2][ow] == w;
            if (!w_lo && !w_hi) continue;
            const float g = dyp[(od * t.out[1] + oh) * t.out[2] + ow];
            for (int k = 0; k < 8; ++k) {
              const bool hd = k & 4, hh = k & 2, hw = k & 1;
              if (!((hd ? d_hi : d_lo) && (hh ? h_hi : h_lo) && (hw ? w_hi : w_lo))) continue;
              const double weight = (hd ? t.w_hi[0][od] : t.w_lo[0][od]) * (hh ? t.w_hi[1][oh] : t.w_lo[1][oh]) *
                                    (hw ? t.w_hi[2][ow] : t.w_lo[2][ow]);
              sum += float(weight * g);
            }
          }
        }
      }
      dx[e] = sum;
    }
  }
};

template <int Dims>
struct upsample {
  using op = ops::upsample<Dims>;
  static constexpr int rank = Dims + 2;
  using in_view = tensor_view<const float, rank>;
  using out_view = tensor_view<float, rank>;

  static void forward(const op& p, in_view x, out_view y) {
    require_contiguous(x, "upsample input");
    require_contiguous(y, "upsample output");
    if (elements(y) == 0) return;
    const resample_plan plan = make_plan(p, x.extent, y.extent);
    cuda::launch(upsample_forward_kernel{plan.tables()}, grid_for(elements(y)), {threads}, 0, x.data, y.data);
  }
  static void backward(const op& p, in_view dy, out_view dx) {
    require_contiguous(dy, "upsample gradient");
    require_contiguous(dx, "upsample input gradient");
    if (elements(dx) == 0) return;
    const resample_plan plan = make_plan(p, dx.extent, dy.extent);
    cuda::launch(upsample_backward_kernel{plan.tables()}, grid_for(elements(dx)), {threads}, 0, dy.data, dx.data);
  }

 private:
  template <class Extent>
  static resample_plan make_plan(const op& p, const Extent& in_extent, const Extent& out_extent) {
    return resample_plan(in_extent, out_extent, reference_detail::lift_spatial<Dims>(in_extent),
                         reference_detail::lift_spatial<Dims>(out_extent), reference_detail::lift_params<Dims>(p.scale),
                         p.mode);
  }
};

}  // namespace microcount::cuda_ops

namespace microcount {

template <int Dims>
struct kernel<ops::upsample<Dims>, backend::cuda> : cuda_ops::upsample<Dims> {};

}  // namespace microcount
