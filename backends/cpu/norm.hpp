#pragma once
// cpu batch and group normalisation: SIMD moments (blocks of float, totals in double), the per-element work
// as one-body launches on each contiguous plane, threads over channels (batch norm) or over
// (sample, group) pairs (group norm). Every sum has a fixed order, so results do not depend on threads.
#include "microcount/backends/cpu/simd.hpp"  // first: see simd.hpp
#include <algorithm>
#include <cmath>
#include <vector>

#include "microcount/backends/cpu/launch.hpp"
#include "microcount/backends/cpu/reduce.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/core/tensor.hpp"
#include "microcount/nn/op.hpp"
#include "microcount/nn/ops_layers.hpp"

namespace microcount::cpu_layer_detail {

// A value near the channel's mean (the mean of its first elements): the one-pass moments are taken
// around it, so their difference loses nothing to a large mean.
template <class T>
T pilot_mean(const T* x, index_t n) {
  const index_t k = std::min<index_t>(n, 64);
  double s = 0;
  for (index_t i = 0; i < k; ++i) s += x[i];
  return k ? T(s / double(k)) : T(0);
}

struct batch_norm_cpu {
  using op = ops::batch_norm;
  using T = float;
  using in_view = tensor_view<const T, 3>;  // [N, C, S]
  using out_view = tensor_view<T, 3>;

  static void forward_training(const op& p, in_view x, const T* gamma, const T* beta, out_view y, T* saved_mean,
                               T* saved_invstd, T* running_mean, T* running_var) {
    require(x.is_contiguous() && y.is_contiguous(), "batch_norm", "views must be contiguous");
    const index_t n = x.extent[0], channels = x.extent[1], s = x.extent[2];
    const double m = double(n * s);
    parallel_for(0, channels, [&](index_t c) {
      const T pilot = pilot_mean(x.data + c * s, s);
      double sum = 0, squares = 0;
      for (index_t i = 0; i < n; ++i) add_moments(x.data + (i * channels + c) * s, s, pilot, sum, squares);
      const double offset = sum / m, var = std::max(0.0, squares / m - offset * offset);
      const double mean = double(pilot) + offset, invstd = 1.0 / std::sqrt(var + p.eps);
      saved_mean[c] = T(mean);
      saved_invstd[c] = T(invstd);
      running_mean[c] = T((1 - p.momentum) * running_mean[c] + p.momentum * mean);
      running_var[c] = T((1 - p.momentum) * running_var[c] + p.momentum * (m > 1 ? var * m / (m - 1) : var));
      // Centred at the pilot (a float near the mean, so x − pilot is exact); the small remainder of the mean
      // goes into the shift, computed in double.
      const double scale = (gamma ? gamma[c] : 1) * invstd;
      const ops::bodies::centered_scale<T> body{pilot, T(scale), T((beta ? beta[c] : 0) - offset * scale)};
      for (index_t i = 0; i < n; ++i) {
        const index_t at = (i * channels + c) * s;
        cpu_detail::run_range(0, s, body, y.data + at, x.data + at);
      }
    });
  }

  static void forward_inference(const op& p, in_view x, const T* gamma, const T* beta, const T* running_mean,
                                const T* running_var, out_view y) {
    require(x.is_contiguous() && y.is_contiguous(), "batch_norm", "views must be contiguous");
    const index_t channels = x.extent[1], s = x.extent[2];
    parallel_for(0, x.extent[0] * channels, [&](index_t plane) {
      const index_t c = plane % channels;
      const double invstd = 1.0 / std::sqrt(double(running_var[c]) + p.eps);
      const ops::bodies::centered_scale<T> body{running_mean[c], T((gamma ? gamma[c] : 1) * invstd),
                                                beta ? beta[c] : T(0)};
      cpu_detail::run_range(0, s, body, y.data + plane * s, x.data + plane * s);
    });
  }

  static void backward_training(const op&, in_view x, in_view dy, const T* gamma, const T* saved_mean,
                                const T* saved_invstd, out_view dx, T* dgamma, T* dbeta) {
    backward(x, dy, gamma, saved_mean, saved_invstd, nullptr, 0.0, dx, dgamma, dbeta, true);
  }

  static void backward_inference(const op& p, in_view x, in_view dy, const T* gamma, const T* running_mean,
                                 const T* running_var, out_view dx, T* dgamma, T* dbeta) {
    backward(x, dy, gamma, running_mean, nullptr, running_var, p.eps, dx, dgamma, dbeta, false);
  }

 private:
  // Statistics from (mean, invstd) in training or (mean, var, eps) in evaluation, where they are constants.
  static void backward(in_view x, in_view dy, const T* gamma, const T* mean_of, const T* invstd_of, const T* var_of,
                       double eps, out_view dx, T* dgamma, T* dbeta, bool batch_statistics) {
    require(x.is_contiguous() && dy.is_contiguous() && dx.is_contiguous(), "batch_norm", "views must be contiguous");
    const index_t n = x.extent[0], channels = x.extent[1], s = x.extent[2];
    const double m = double(n * s);
    parallel_for(0, channels, [&](index_t c) {
      const double mean = mean_of[c];
      const double invstd = invstd_of ? double(invstd_of[c]) : 1.0 / std::sqrt(double(var_of[c]) + eps);
      double sum_dy = 0, sum_dy_centered = 0;
      // Evaluation-mode dx needs no moments; skip them when no parameter gradient is wanted (inspection).
      const bool moments = batch_statistics || dgamma || dbeta;
      for (index_t i = 0; moments && i < n; ++i) {
        const index_t at = (i * channels + c) * s;
        add_gradient_moments(x.data + at, dy.data + at, s, T(mean), sum_dy, sum_dy_centered);
      }
      const double sum_dy_xhat = sum_dy_centered * invstd, k = (gamma ? gamma[c] : 1) * invstd;
      if (dgamma) dgamma[c] = T(sum_dy_xhat);
      if (dbeta) dbeta[c] = T(sum_dy);
      // Training: dx = k·(dy − Σdy/m − x̂·Σ(dy·x̂)/m); evaluation: dx = k·dy.
      const ops::bodies::norm_backward<T> body =
          batch_statistics ? ops::bodies::norm_backward<T>{T(k), T(-k * invstd * sum_dy_xhat / m), T(mean), T(-k * sum_dy / m)}
                           : ops::bodies::norm_backward<T>{T(k), T(0), T(0), T(0)};
      for (index_t i = 0; i < n; ++i) {
        const index_t at = (i * channels + c) * s;
        cpu_detail::run_range(0, s, body, dx.data + at, dy.data + at, x.data + at);
      }
    });
  }
};

struct group_norm_cpu {
  using op = ops::group_norm;
  using T = float;
  using in_view = tensor_view<const T, 3>;  // [N, C, S]
  using out_view = tensor_view<T, 3>;

  static void forward(const op& p, in_view x, const T* gamma, const T* beta, out_view y, T* saved_mean,
                      T* saved_invstd) {
    require(x.is_contiguous() && y.is_contiguous(), "group_norm", "views must be contiguous");
    const index_t channels = x.extent[1], s = x.extent[2], per_group = channels / p.groups;
    const index_t group_size = per_group * s;
    parallel_for(0, x.extent[0] * p.groups, [&](index_t ng) {
      const T* xg = x.data + ng * group_size;  // a group's channels are one contiguous run
      const T pilot = pilot_mean(xg, group_size);
      double sum = 0, squares = 0;
      add_moments(xg, group_size, pilot, sum, squares);
      const double offset = sum / double(group_size);
      const double var = std::max(0.0, squares / double(group_size) - offset * offset);
      const double mean = double(pilot) + offset, invstd = 1.0 / std::sqrt(var + p.eps);
      saved_mean[ng] = T(mean);
      saved_invstd[ng] = T(invstd);
      for (index_t k = 0; k < per_group; ++k) {
        const index_t c = (ng % p.groups) * per_group + k;
        const double scale = (gamma ? gamma[c] : 1) * invstd;
        const ops::bodies::centered_scale<T> body{pilot, T(scale), T((beta ? beta[c] : 0) - offset * scale)};
        cpu_detail::run_range(0, s, body, y.data + ng * group_size + k * s, xg + k * s);
      }
    });
  }

  static void backward(const op& p, in_view x, in_view dy, const T* gamma, const T* saved_mean, const T* saved_invstd,
                       out_view dx, T* dgamma, T* dbeta) {
    require(x.is_contiguous() && dy.is_contiguous() && dx.is_contiguous(), "group_norm", "views must be contiguous");
    const index_t n = x.extent[0], channels = x.extent[1], s = x.extent[2], per_group = channels / p.groups;
    const index_t group_size = per_group * s;
    // Per (sample, channel) Σdy and Σdy·x̂, reduced over samples afterwards in a fixed order.
    std::vector<double> part_dy(n * channels), part_dy_xhat(n * channels);
    parallel_for(0, n * p.groups, [&](index_t ng) {
      const double mean = saved_mean[ng], invstd = saved_invstd[ng];
      double sum_u = 0, sum_u_xhat = 0;  // u = γ·dy, the gradient reaching x̂
      for (index_t k = 0; k < per_group; ++k) {
        const index_t plane = ng * per_group + k, c = plane % channels;
        double sum_dy = 0, sum_dy_centered = 0;
        add_gradient_moments(x.data + plane * s, dy.data + plane * s, s, T(mean), sum_dy, sum_dy_centered);
        const double g = gamma ? double(gamma[c]) : 1.0;
        part_dy[plane] = sum_dy;
        part_dy_xhat[plane] = sum_dy_centered * invstd;
        sum_u += g * sum_dy;
        sum_u_xhat += g * sum_dy_centered * invstd;
      }
      const double m = double(group_size);
      for (index_t k = 0; k < per_group; ++k) {
        const index_t plane = ng * per_group + k, c = plane % channels;
        const double g = gamma ? double(gamma[c]) : 1.0;
        const ops::bodies::norm_backward<T> body{T(invstd * g), T(-invstd * invstd * sum_u_xhat / m), T(mean),
                                                 T(-invstd * sum_u / m)};
        cpu_detail::run_range(0, s, body, dx.data + plane * s, dy.data + plane * s, x.data + plane * s);
      }
    });
    for (index_t c = 0; c < channels; ++c) {
      double total_dy = 0, total_dy_xhat = 0;
      for (index_t i = 0; i < n; ++i) {
        total_dy += part_dy[i * channels + c];
        total_dy_xhat += part_dy_xhat[i * channels + c];
      }
      if (dgamma) dgamma[c] = T(total_dy_xhat);
      if (dbeta) dbeta[c] = T(total_dy);
    }
  }
};

}  // namespace microcount::cpu_layer_detail

namespace microcount {

template <>
struct kernel<ops::batch_norm, backend::cpu> : cpu_layer_detail::batch_norm_cpu {};
template <>
struct kernel<ops::group_norm, backend::cpu> : cpu_layer_detail::group_norm_cpu {};

}  // namespace microcount
