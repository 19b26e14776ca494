#pragma once
// Reference batch and group normalisation: plain loops over [N, C, S] views, statistics accumulated in double.
// gamma / beta may be null (no affine transform: scale 1, shift 0); dgamma / dbeta may be null (not wanted).
#include <cmath>
#include <vector>

#include "microcount/backends/reference/conv.hpp"
#include "microcount/core/tensor.hpp"
#include "microcount/nn/op.hpp"
#include "microcount/nn/ops_layers.hpp"

namespace microcount::reference_detail {

template <class T>
struct batch_norm_kernel {
  using op = ops::batch_norm;
  using in_view = tensor_view<const T, 3>;  // [N, C, S]
  using out_view = tensor_view<T, 3>;

  // y = γ·(x − mean)/sqrt(var + eps) + β with the batch statistics; saved_mean, saved_invstd [C] receive
  // the mean and 1/sqrt(var + eps) for backward; running_mean, running_var [C] are updated.
  static void forward_training(const op& p, in_view x, const T* gamma, const T* beta, out_view y, T* saved_mean,
                               T* saved_invstd, T* running_mean, T* running_var) {
    require_contiguous(x, "batch_norm input");
    const index_t n = x.extent[0], channels = x.extent[1], s = x.extent[2], m = n * s;
    for (index_t c = 0; c < channels; ++c) {
      double sum = 0, squares = 0;
      for (index_t i = 0; i < n; ++i)
        for (index_t j = 0; j < s; ++j) sum += x(i, c, j);
      const double mean = sum / double(m);
      for (index_t i = 0; i < n; ++i)
        for (index_t j = 0; j < s; ++j) squares += (x(i, c, j) - mean) * (x(i, c, j) - mean);
      const double var = squares / double(m), invstd = 1.0 / std::sqrt(var + p.eps);
      saved_mean[c] = T(mean);
      saved_invstd[c] = T(invstd);
      const double unbiased = m > 1 ? squares / double(m - 1) : var;
      running_mean[c] = T((1 - p.momentum) * running_mean[c] + p.momentum * mean);
      running_var[c] = T((1 - p.momentum) * running_var[c] + p.momentum * unbiased);
      normalise_channel(x, c, mean, invstd, gamma, beta, y);
    }
  }

  // y = γ·(x − running_mean)/sqrt(running_var + eps) + β.
  static void forward_inference(const op& p, in_view x, const T* gamma, const T* beta, const T* running_mean,
                                const T* running_var, out_view y) {
    for (index_t c = 0; c < x.extent[1]; ++c)
      normalise_channel(x, c, running_mean[c], 1.0 / std::sqrt(double(running_var[c]) + p.eps), gamma, beta, y);
  }

  // Gradients of the training-mode forward (the batch statistics depend on x).
  static void backward_training(const op&, in_view x, in_view dy, const T* gamma, const T* saved_mean,
                                const T* saved_invstd, out_view dx, T* dgamma, T* dbeta) {
    const index_t n = x.extent[0], channels = x.extent[1], s = x.extent[2];
    const double m = double(n * s);
    for (index_t c = 0; c < channels; ++c) {
      const double mean = saved_mean[c], invstd = saved_invstd[c], g = gamma ? double(gamma[c]) : 1.0;
      double sum_dy = 0, sum_dy_xhat = 0;
      for (index_t i = 0; i < n; ++i)
        for (index_t j = 0; j < s; ++j) {
          sum_dy += dy(i, c, j);
          sum_dy_xhat += dy(i, c, j) * (x(i, c, j) - mean) * invstd;
        }
      if (dgamma) dgamma[c] = T(sum_dy_xhat);
      if (dbeta) dbeta[c] = T(sum_dy);
      for (index_t i = 0; i < n; ++i)
        for (index_t j = 0; j < s; ++j) {
          const double xhat = (x(i, c, j) - mean) * invstd;
          dx(i, c, j) = T(g * invstd * (dy(i, c, j) - sum_dy / m - xhat * sum_dy_xhat / m));
        }
    }
  }

  // Gradients of the evaluation-mode forward (running statistics are constants).
  static void backward_inference(const op& p, in_view x, in_view dy, const T* gamma, const T* running_mean,
                                 const T* running_var, out_view dx, T* dgamma, T* dbeta) {
    const index_t n = x.extent[0], channels = x.extent[1], s = x.extent[2];
    for (index_t c = 0; c < channels; ++c) {
      const double invstd = 1.0 / std::sqrt(double(running_var[c]) + p.eps), g = gamma ? double(gamma[c]) : 1.0;
      double sum_dy = 0, sum_dy_xhat = 0;
      for (index_t i = 0; i < n; ++i)
        for (index_t j = 0; j < s; ++j) {
          sum_dy += dy(i, c, j);
          sum_dy_xhat += dy(i, c, j) * (x(i, c, j) - running_mean[c]) * invstd;
          dx(i, c, j) = T(g * invstd * dy(i, c, j));
        }
      if (dgamma) dgamma[c] = T(sum_dy_xhat);
      if (dbeta) dbeta[c] = T(sum_dy);
    }
  }

 private:
  static void normalise_channel(in_view x, index_t c, double mean, double invstd, const T* gamma, const T* beta,
                                out_view y) {
    const double g = gamma ? double(gamma[c]) : 1.0, b = beta ? double(beta[c]) : 0.0;
    for (index_t i = 0; i < x.extent[0]; ++i)
      for (index_t j = 0; j < x.extent[2]; ++j) y(i, c, j) = T(g * (x(i, c, j) - mean) * invstd + b);
  }
};

template <class T>
struct group_norm_kernel {
  using op = ops::group_norm;
  using in_view = tensor_view<const T, 3>;  // [N, C, S]
  using out_view = tensor_view<T, 3>;

  // saved_mean, saved_invstd [N·groups] receive each (sample, group)'s mean and 1/sqrt(var + eps).
  static void forward(const op& p, in_view x, const T* gamma, const T* beta, out_view y, T* saved_mean,
                      T* saved_invstd) {
    const index_t n = x.extent[0], channels = x.extent[1], s = x.extent[2], per_group = channels / p.groups;
    const double m = double(per_group * s);
    for (index_t i = 0; i < n; ++i)
      for (index_t g = 0; g < p.groups; ++g) {
        double sum = 0, squares = 0;
        for (index_t c = g * per_group; c < (g + 1) * per_group; ++c)
          for (index_t j = 0; j < s; ++j) sum += x(i, c, j);
        const double mean = sum / m;
        for (index_t c = g * per_group; c < (g + 1) * per_group; ++c)
          for (index_t j = 0; j < s; ++j) squares += (x(i, c, j) - mean) * (x(i, c, j) - mean);
        const double invstd = 1.0 / std::sqrt(squares / m + p.eps);
        saved_mean[i * p.groups + g] = T(mean);
        saved_invstd[i * p.groups + g] = T(invstd);
        for (index_t c = g * per_group; c < (g + 1) * per_group; ++c) {
          const double gc = gamma ? double(gamma[c]) : 1.0, bc = beta ? double(beta[c]) : 0.0;
          for (index_t j = 0; j < s; ++j) y(i, c, j) = T(gc * (x(i, c, j) - mean) * invstd + bc);
        }
      }
  }

  static void backward(const op& p, in_view x, in_view dy, const T* gamma, const T* saved_mean, const T* saved_invstd,
                       out_view dx, T* dgamma, T* dbeta) {
    const index_t n = x.extent[0], channels = x.extent[1], s = x.extent[2], per_group = channels / p.groups;
    const double m = double(per_group * s);
    std::vector<double> dg(channels, 0.0), db(channels, 0.0);
    for (index_t i = 0; i < n; ++i)
      for (index_t g = 0; g < p.groups; ++g) {
        const double mean = saved_mean[i * p.groups + g], invstd = saved_invstd[i * p.groups + g];
        // With u = γ·dy (the gradient reaching x̂): dx = invstd·(u − mean(u) − x̂·mean(u·x̂)).
        double sum_u = 0, sum_u_xhat = 0;
        for (index_t c = g * per_group; c < (g + 1) * per_group; ++c) {
          const double gc = gamma ? double(gamma[c]) : 1.0;
          for (index_t j = 0; j < s; ++j) {
            const double xhat = (x(i, c, j) - mean) * invstd;
            sum_u += gc * dy(i, c, j);
            sum_u_xhat += gc * dy(i, c, j) * xhat;
            dg[c] += dy(i, c, j) * xhat;
            db[c] += dy(i, c, j);
          }
        }
        for (index_t c = g * per_group; c < (g + 1) * per_group; ++c) {
          const double gc = gamma ? double(gamma[c]) : 1.0;
          for (index_t j = 0; j < s; ++j) {
            const double xhat = (x(i, c, j) - mean) * invstd;
            dx(i, c, j) = T(invstd * (gc * dy(i, c, j) - sum_u / m - xhat * sum_u_xhat / m));
          }
        }
      }
    for (index_t c = 0; c < channels; ++c) {
      if (dgamma) dgamma[c] = T(dg[c]);
      if (dbeta) dbeta[c] = T(db[c]);
    }
  }
};

}  // namespace microcount::reference_detail

namespace microcount {

template <>
struct kernel<ops::batch_norm, backend::reference> : reference_detail::batch_norm_kernel<float> {};
template <>
struct kernel<ops::batch_norm, backend::reference_f64> : reference_detail::batch_norm_kernel<double> {};
template <>
struct kernel<ops::group_norm, backend::reference> : reference_detail::group_norm_kernel<float> {};
template <>
struct kernel<ops::group_norm, backend::reference_f64> : reference_detail::group_norm_kernel<double> {};

}  // namespace microcount
