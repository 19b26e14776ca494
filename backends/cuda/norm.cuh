#pragma once
// Batch and group normalisation on backend::cuda. Every statistic is a deterministic two-level double sum
// (ops_support.cuh: per-block partials, then one thread per channel/group adds them in order); the mean
// and the centred squares are two passes, as in the reference, so float inputs with a large mean stay
// exact. The elementwise steps are one thread per element with the reference's double arithmetic.
// gamma / beta may be null (scale 1, shift 0); dgamma / dbeta may be null (not wanted). All pointers are
// device pointers.
#include "microcount/backends/cuda/launch.cuh"
#include "microcount/backends/cuda/ops_support.cuh"
#include "microcount/nn/op.hpp"
#include "microcount/nn/ops_layers.hpp"

namespace microcount::cuda_ops {

// ---- batch norm: segment = channel c, element e ↔ (i = e / S, j = e % S) ----------------------------

struct channel_values {  // x
  ncs_view<const float> x;
  MICROCOUNT_HOST_DEVICE double operator()(index_t c, index_t e) const { return x(e / x.s, c, e % x.s); }
};
struct channel_centred_squares {  // (x − mean[c])²
  ncs_view<const float> x;
  const double* mean;
  MICROCOUNT_HOST_DEVICE double operator()(index_t c, index_t e) const {
    const double d = x(e / x.s, c, e % x.s) - mean[c];
    return d * d;
  }
};
struct channel_dy_xhat {  // dy·(x − mean)·invstd with the saved (float) statistics
  ncs_view<const float> x, dy;
  const float *mean, *invstd;
  MICROCOUNT_HOST_DEVICE double operator()(index_t c, index_t e) const {
    const index_t i = e / x.s, j = e % x.s;
    return dy(i, c, j) * (x(i, c, j) - double(mean[c])) * double(invstd[c]);
  }
};
struct channel_dy_xhat_running {  // dy·(x − running_mean)·invstd: the reference's float product first
  ncs_view<const float> x, dy;
  const float* running_mean;
  const double* invstd;
  MICROCOUNT_HOST_DEVICE double operator()(index_t c, index_t e) const {
    const index_t i = e / x.s, j = e % x.s;
    const float product = dy(i, c, j) * (x(i, c, j) - running_mean[c]);
    return product * invstd[c];
  }
};
struct channel_dy {  // dy
  ncs_view<const float> dy;
  MICROCOUNT_HOST_DEVICE double operator()(index_t c, index_t e) const { return dy(e / dy.s, c, e % dy.s); }
};

// mean[c] = Σx / m
struct bn_mean_step {
  const double* partials;
  unsigned blocks;
  double count;
  double* mean;
  MICROCOUNT_HOST_DEVICE void operator()(index_t c) const { mean[c] = sum_partials(partials, blocks, c) / count; }
};
// invstd, the saved statistics and the running update from the centred squares.
struct bn_statistics_step {
  const double* partials;
  unsigned blocks;
  double count, eps, momentum;
  const double* mean;
  double* invstd;
  float *saved_mean, *saved_invstd, *running_mean, *running_var;
  MICROCOUNT_HOST_DEVICE void operator()(index_t c) const {
    const double squares = sum_partials(partials, blocks, c), var = squares / count;
    invstd[c] = 1.0 / math::sqrt(var + eps);
    saved_mean[c] = float(mean[c]);
    saved_invstd[c] = float(invstd[c]);
    const double unbiased = count > 1 ? squares / (count - 1) : var;
    running_mean[c] = float((1 - momentum) * running_mean[c] + momentum * mean[c]);
    running_var[c] = float((1 - momentum) * running_var[c] + momentum * unbiased);
  }
};
// mean, invstd from the running statistics (evaluation mode).
struct bn_running_step {
  const float *running_mean, *running_var;
  double eps;
  double *mean, *invstd;
  MICROCOUNT_HOST_DEVICE void operator()(index_t c) const {
    mean[c] = running_mean[c];
    invstd[c] = 1.0 / math::sqrt(double(running_var[c]) + eps);
  }
};
// y = γ·(x − mean)·invstd + β per element.
struct bn_normalise {
  ncs_view<const float> x;
  ncs_view<float> y;
  const double *mean, *invstd;
  const float *gamma, *beta;
  MICROCOUNT_HOST_DEVICE void operator()(index_t i, index_t c, index_t j) const {
    const double g = gamma ? double(gamma[c]) : 1.0, b = beta ? double(beta[c]) : 0.0;
    y(i, c, j) = float(g * (x(i, c, j) - mean[c]) * invstd[c] + b);
  }
};
// Σdy and Σdy·x̂ per channel → dbeta, dgamma (when wanted) and the two sums for dx.
struct bn_gradient_sums_step {
  const double *partials_dy, *partials_dy_xhat;
  unsigned blocks;
  double *sum_dy, *sum_dy_xhat;
  float *dgamma, *dbeta;
  MICROCOUNT_HOST_DEVICE void operator()(index_t c) const {
    sum_dy[c] = sum_partials(partials_dy, blocks, c);
    sum_dy_xhat[c] = sum_partials(partials_dy_xhat, blocks, c);
    if (dgamma) dgamma[c] = float(sum_dy_xhat[c]);
    if (dbeta) dbeta[c] = float(sum_dy[c]);
  }
};
// dx = γ·invstd·(dy − Σdy/m − x̂·Σdy·x̂/m) (training statistics depend on x).
struct bn_training_dx {
  ncs_view<const float> x, dy;
  ncs_view<float> dx;
  const float *gamma, *mean, *invstd;
  const double *sum_dy, *sum_dy_xhat;
  double count;
  MICROCOUNT_HOST_DEVICE void operator()(index_t i, index_t c, index_t j) const {
    const double m = mean[c], s = invstd[c], g = gamma ? double(gamma[c]) : 1.0;
    const double xhat = (x(i, c, j) - m) * s;
    dx(i, c, j) = float(g * s * (dy(i, c, j) - sum_dy[c] / count - xhat * sum_dy_xhat[c] / count));
  }
};
// dx = γ·invstd·dy (running statistics are constants).
struct bn_inference_dx {
  ncs_view<const float> dy;
  ncs_view<float> dx;
  const float* gamma;
  const double* invstd;
  MICROCOUNT_HOST_DEVICE void operator()(index_t i, index_t c, index_t j) const {
    const double g = gamma ? double(gamma[c]) : 1.0;
    dx(i, c, j) = float(g * invstd[c] * dy(i, c, j));
  }
};

struct batch_norm {
  using op = ops::batch_norm;
  using in_view = tensor_view<const float, 3>;  // [N, C, S]
  using out_view = tensor_view<float, 3>;

  static void forward_training(const op& p, in_view x, const float* gamma, const float* beta, out_view y,
                               float* saved_mean, float* saved_invstd, float* running_mean, float* running_var) {
    require_contiguous(x, "batch_norm input");
    const index_t n = x.extent[0], channels = x.extent[1], s = x.extent[2], m = n * s;
    if (channels == 0) return;
    const auto xv = plain(x);
    device_buffer<double> mean(channels), invstd(channels);  // [C] each
    {
      const segment_sums sums(channel_values{xv}, channels, m);
      for_each_index(bn_mean_step{sums.partials.get(), sums.blocks, double(m), mean.get()}, channels);
    }
    const segment_sums squares(channel_centred_squares{xv, mean.get()}, channels, m);
    for_each_index(bn_statistics_step{squares.partials.get(), squares.blocks, double(m), p.eps, p.momentum, mean.get(),
                                      invstd.get(), saved_mean, saved_invstd, running_mean, running_var},
                   channels);
    for_each_element(bn_normalise{xv, plain(y), mean.get(), invstd.get(), gamma, beta}, n, channels, s);
  }

  static void forward_inference(const op& p, in_view x, const float* gamma, const float* beta,
                                const float* running_mean, const float* running_var, out_view y) {
    const index_t channels = x.extent[1];
    if (channels == 0) return;
    device_buffer<double> mean(channels), invstd(channels);
    for_each_index(bn_running_step{running_mean, running_var, p.eps, mean.get(), invstd.get()}, channels);
    for_each_element(bn_normalise{plain(x), plain(y), mean.get(), invstd.get(), gamma, beta}, x.extent[0], channels,
                     x.extent[2]);
  }

  static void backward_training(const op&, in_view x, in_view dy, const float* gamma, const float* saved_mean,
                                const float* saved_invstd, out_view dx, float* dgamma, float* dbeta) {
    const index_t n = x.extent[0], channels = x.extent[1], s = x.extent[2], m = n * s;
    if (channels == 0) return;
    const auto xv = plain(x), dyv = plain(dy);
    device_buffer<double> sum_dy(channels), sum_dy_xhat(channels);
    const segment_sums a(channel_dy{dyv}, channels, m);
    const segment_sums b(channel_dy_xhat{xv, dyv, saved_mean, saved_invstd}, channels, m);
    for_each_index(bn_gradient_sums_step{a.partials.get(), b.partials.get(), a.blocks, sum_dy.get(), sum_dy_xhat.get(),
                                         dgamma, dbeta},
                   channels);
    for_each_element(bn_training_dx{xv, dyv, plain(dx), gamma, saved_mean, saved_invstd, sum_dy.get(),
                                    sum_dy_xhat.get(), double(m)},
                     n, channels, s);
  }

  static void backward_inference(const op& p, in_view x, in_view dy, const float* gamma, const float* running_mean,
                                 const float* running_var, out_view dx, float* dgamma, float* dbeta) {
    const index_t n = x.extent[0], channels = x.extent[1], s = x.extent[2], m = n * s;
    if (channels == 0) return;
    const auto xv = plain(x), dyv = plain(dy);
    device_buffer<double> mean(channels), invstd(channels), sum_dy(channels), sum_dy_xhat(channels);
    for_each_index(bn_running_step{running_mean, running_var, p.eps, mean.get(), invstd.get()}, channels);
    const segment_sums a(channel_dy{dyv}, channels, m);
    const segment_sums b(channel_dy_xhat_running{xv, dyv, running_mean, invstd.get()}, channels, m);
    for_each_index(bn_gradient_sums_step{a.partials.get(), b.partials.get(), a.blocks, sum_dy.get(), sum_dy_xhat.get(),
                                         dgamma, dbeta},
                   channels);
    for_each_element(bn_inference_dx{dyv, plain(dx), gamma, invstd.get()}, n, channels, s);
  }
};

// ---- group norm: segment = (sample i, group g) = i·G + g, element e ↔ (c = g·per_group + e / S, j = e % S) --

struct group_geometry {
  index_t groups, per_group;
  MICROCOUNT_HOST_DEVICE index_t channel(index_t segment, index_t e, index_t s) const {
    return segment % groups * per_group + e / s;
  }
};
struct group_values {
  ncs_view<const float> x;
  group_geometry geo;
  MICROCOUNT_HOST_DEVICE double operator()(index_t seg, index_t e) const {
    return x(seg / geo.groups, geo.channel(seg, e, x.s), e % x.s);
  }
};
struct group_centred_squares {
  ncs_view<const float> x;
  group_geometry geo;
  const double* mean;
  MICROCOUNT_HOST_DEVICE double operator()(index_t seg, index_t e) const {
    const double d = x(seg / geo.groups, geo.channel(seg, e, x.s), e % x.s) - mean[seg];
    return d * d;
  }
};
// u = γ·dy (the gradient reaching x̂) and u·x̂, per group.
struct group_u {
  ncs_view<const float> dy;
  group_geometry geo;
  const float* gamma;
  MICROCOUNT_HOST_DEVICE double operator()(index_t seg, index_t e) const {
    const index_t c = geo.channel(seg, e, dy.s);
    return (gamma ? double(gamma[c]) : 1.0) * dy(seg / geo.groups, c, e % dy.s);
  }
};
struct group_u_xhat {
  ncs_view<const float> x, dy;
  group_geometry geo;
  const float *gamma, *mean, *invstd;
  MICROCOUNT_HOST_DEVICE double operator()(index_t seg, index_t e) const {
    const index_t i = seg / geo.groups, c = geo.channel(seg, e, x.s), j = e % x.s;
    const double xhat = (x(i, c, j) - double(mean[seg])) * double(invstd[seg]);
    return (gamma ? double(gamma[c]) : 1.0) * dy(i, c, j) * xhat;
  }
};
// Per channel over (i, j): dy·x̂ (dgamma) and dy (dbeta, channel_dy above).
struct group_channel_dy_xhat {
  ncs_view<const float> x, dy;
  group_geometry geo;
  const float *mean, *invstd;
  MICROCOUNT_HOST_DEVICE double operator()(index_t c, index_t e) const {
    const index_t i = e / x.s, j = e % x.s, seg = i * geo.groups + c / geo.per_group;
    const double xhat = (x(i, c, j) - double(mean[seg])) * double(invstd[seg]);
    return dy(i, c, j) * xhat;
  }
};

struct gn_statistics_step {
  const double* partials;
  unsigned blocks;
  double count, eps;
  const double* mean;
  double* invstd;
  float *saved_mean, *saved_invstd;
  MICROCOUNT_HOST_DEVICE void operator()(index_t seg) const {
    invstd[seg] = 1.0 / math::sqrt(sum_partials(partials, blocks, seg) / count + eps);
    saved_mean[seg] = float(mean[seg]);
    saved_invstd[seg] = float(invstd[seg]);
  }
};
struct gn_normalise {
  ncs_view<const float> x;
  ncs_view<float> y;
  index_t groups, per_group;
  const double *mean, *invstd;
  const float *gamma, *beta;
  MICROCOUNT_HOST_DEVICE void operator()(index_t i, index_t c, index_t j) const {
    const index_t seg = i * groups + c / per_group;
    const double g = gamma ? double(gamma[c]) : 1.0, b = beta ? double(beta[c]) : 0.0;
    y(i, c, j) = float(g * (x(i, c, j) - mean[seg]) * invstd[seg] + b);
  }
};
// Writes the level-2 totals of two partial sets into two double arrays (and optionally floats).
struct totals_step {
  const double *partials_a, *partials_b;
  unsigned blocks_a, blocks_b;
  double *total_a, *total_b;
  MICROCOUNT_HOST_DEVICE void operator()(index_t k) const {
    total_a[k] = sum_partials(partials_a, blocks_a, k);
    total_b[k] = sum_partials(partials_b, blocks_b, k);
  }
};
struct gn_dx {
  ncs_view<const float> x, dy;
  ncs_view<float> dx;
  index_t groups, per_group;
  const float *gamma, *mean, *invstd;
  const double *sum_u, *sum_u_xhat;
  double count;
  MICROCOUNT_HOST_DEVICE void operator()(index_t i, index_t c, index_t j) const {
    const index_t seg = i * groups + c / per_group;
    const double s = invstd[seg], gc = gamma ? double(gamma[c]) : 1.0;
    const double xhat = (x(i, c, j) - double(mean[seg])) * s;
    dx(i, c, j) = float(s * (gc * dy(i, c, j) - sum_u[seg] / count - xhat * sum_u_xhat[seg] / count));
  }
};

struct group_norm {
  using op = ops::group_norm;
  using in_view = tensor_view<const float, 3>;  // [N, C, S]
  using out_view = tensor_view<float, 3>;

  // saved_mean, saved_invstd [N·groups].
  static void forward(const op& p, in_view x, const float* gamma, const float* beta, out_view y, float* saved_mean,
                      float* saved_invstd) {
    const index_t n = x.extent[0], channels = x.extent[1], s = x.extent[2];
    require(p.groups >= 1 && channels % p.groups == 0, "group_norm", "channels must split into the groups");
    const index_t per_group = channels / p.groups, segments = n * p.groups, m = per_group * s;
    if (segments == 0 || channels == 0) return;
    const auto xv = plain(x);
    const group_geometry geo{p.groups, per_group};
    device_buffer<double> mean(segments), invstd(segments);
    {
      const segment_sums sums(group_values{xv, geo}, segments, m);
      for_each_index(bn_mean_step{sums.partials.get(), sums.blocks, double(m), mean.get()}, segments);
    }
    const segment_sums squares(group_centred_squares{xv, geo, mean.get()}, segments, m);
    for_each_index(gn_statistics_step{squares.partials.get(), squares.blocks, double(m), p.eps, mean.get(), invstd.get(),
                                      saved_mean, saved_invstd},
                   segments);
    for_each_element(gn_normalise{xv, plain(y), p.groups, per_group, mean.get(), invstd.get(), gamma, beta}, n, channels,
                     s);
  }

  static void backward(const op& p, in_view x, in_view dy, const float* gamma, const float* saved_mean,
                       const float* saved_invstd, out_view dx, float* dgamma, float* dbeta) {
    const index_t n = x.extent[0], channels = x.extent[1], s = x.extent[2];
    require(p.groups >= 1 && channels % p.groups == 0, "group_norm", "channels must split into the groups");
    const index_t per_group = channels / p.groups, segments = n * p.groups, m = per_group * s;
    if (channels == 0) return;
    const auto xv = plain(x), dyv = plain(dy);
    const group_geometry geo{p.groups, per_group};
    if (dgamma || dbeta) {
      device_buffer<double> dg(channels), db(channels);
      const segment_sums a(group_channel_dy_xhat{xv, dyv, geo, saved_mean, saved_invstd}, channels, n * s);
      const segment_sums b(channel_dy{dyv}, channels, n * s);
      // The same step as batch norm's: dgamma = Σdy·x̂, dbeta = Σdy.
      for_each_index(bn_gradient_sums_step{b.partials.get(), a.partials.get(), a.blocks, db.get(), dg.get(), dgamma, dbeta},
                     channels);
    }
    if (segments == 0) return;
    device_buffer<double> sum_u(segments), sum_u_xhat(segments);
    const segment_sums u(group_u{dyv, geo, gamma}, segments, m);
    const segment_sums ux(group_u_xhat{xv, dyv, geo, gamma, saved_mean, saved_invstd}, segments, m);
    for_each_index(totals_step{u.partials.get(), ux.partials.get(), u.blocks, ux.blocks, sum_u.get(), sum_u_xhat.get()},
                   segments);
    for_each_element(gn_dx{xv, dyv, plain(dx), p.groups, per_group, gamma, saved_mean, saved_invstd, sum_u.get(),
                           sum_u_xhat.get(), double(m)},
                     n, channels, s);
  }
};

}  // namespace microcount::cuda_ops

namespace microcount {

template <>
struct kernel<ops::batch_norm, backend::cuda> : cuda_ops::batch_norm {};
template <>
struct kernel<ops::group_norm, backend::cuda> : cuda_ops::group_norm {};

}  // namespace microcount
