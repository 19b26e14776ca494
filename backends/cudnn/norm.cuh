#pragma once
// Batch normalisation of backend::cudnn through cuDNN (CUDNN_BATCHNORM_SPATIAL: one mean and variance per
// channel over N and the spatial axes), with the reference backend's semantics (backends/reference/norm.hpp):
//   - running ← (1 − momentum)·running + momentum·batch: cuDNN's exponentialAverageFactor is momentum;
//   - running_var moves towards the UNBIASED batch variance (cuDNN applies the m/(m−1) factor, as PyTorch's
//     cuDNN path relies on), the normalisation uses the biased one;
//   - saved_invstd = 1/sqrt(var + eps) is cuDNN's "saved inverse variance".
// One difference is handled explicitly: with a single value per channel (N·S = 1) the unbiased variance is
// undefined; the reference keeps the biased one (0). cuDNN is not asked; the cuda kernel runs instead, as it
// does for empty tensors (cuDNN refuses zero extents).
// backward_inference and group_norm come from the cuda kernels (cuDNN has no equivalent worth a call).
#include <string>

#include "microcount/backends/cudnn/conv.cuh"
#include "microcount/nn/ops_layers.hpp"

namespace microcount::cudnn {

struct batch_norm_kernel : cuda_base<ops::batch_norm> {
  using op = ops::batch_norm;
  using in_view = tensor_view<const float, 3>;  // [N, C, S]
  using out_view = tensor_view<float, 3>;
  using cuda_kernel = kernel<op, backend::cuda>;

  // y = γ·(x − mean)/sqrt(var + eps) + β with the batch statistics; saved_mean, saved_invstd [C] receive
  // the mean and 1/sqrt(var + eps); running_mean, running_var [C] are updated. γ, β may be null.
  static void forward_training(const op& p, in_view x, const float* gamma, const float* beta, out_view y,
                               float* saved_mean, float* saved_invstd, float* running_mean, float* running_var) {
    const index_t channels = x.extent[1];
    if (x.size() == 0 || x.extent[0] * x.extent[2] == 1)
      return cuda_kernel::forward_training(p, x, gamma, beta, y, saved_mean, saved_invstd, running_mean, running_var);
    require_same(x, y, "forward_training");
    const tensor_desc xd(x), yd(y);
    const tensor_desc bn = derived(xd);
    thread_state& t = this_thread();
    const float* g = gamma ? gamma : t.constant(channels, 1.f);
    const float* b = beta ? beta : t.constant(channels, 0.f);
    const float one = 1.f, zero = 0.f;
    MICROCOUNT_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(t.handle(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, xd,
                                                                  x.data, yd, y.data, bn, g, b, p.momentum, running_mean,
                                                                  running_var, p.eps, saved_mean, saved_invstd));
  }

  // y = γ·(x − running_mean)/sqrt(running_var + eps) + β.
  static void forward_inference(const op& p, in_view x, const float* gamma, const float* beta, const float* running_mean,
                                const float* running_var, out_view y) {
    if (x.size() == 0) return cuda_kernel::forward_inference(p, x, gamma, beta, running_mean, running_var, y);
    require_same(x, y, "forward_inference");
    const tensor_desc xd(x), yd(y);
    const tensor_desc bn = derived(xd);
    thread_state& t = this_thread();
    const float* g = gamma ? gamma : t.constant(x.extent[1], 1.f);
    const float* b = beta ? beta : t.constant(x.extent[1], 0.f);
    const float one = 1.f, zero = 0.f;
    MICROCOUNT_CUDNN_CHECK(cudnnBatchNormalizationForwardInference(t.handle(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, xd,
                                                                   x.data, yd, y.data, bn, g, b, running_mean,
                                                                   running_var, p.eps));
  }

  // Gradients of the training-mode forward from the statistics it saved; dγ, dβ may be null (not wanted).
  static void backward_training(const op& p, in_view x, in_view dy, const float* gamma, const float* saved_mean,
                                const float* saved_invstd, out_view dx, float* dgamma, float* dbeta) {
    if (x.size() == 0)
      return cuda_kernel::backward_training(p, x, dy, gamma, saved_mean, saved_invstd, dx, dgamma, dbeta);
    require_same(x, dx, "backward_training");
    require_same(dy, dx, "backward_training");
    const index_t channels = x.extent[1];
    const tensor_desc xd(x), dyd(dy), dxd(dx);
    const tensor_desc bn = derived(xd);
    thread_state& t = this_thread();
    const float* g = gamma ? gamma : t.constant(channels, 1.f);
    // Unwanted parameter gradients still need somewhere to go: both into one scratch of 2·C.
    float* unwanted = (dgamma && dbeta) ? nullptr : t.scratch(2 * channels);
    float* dg = dgamma ? dgamma : unwanted;
    float* db = dbeta ? dbeta : unwanted + channels;
    const float one = 1.f, zero = 0.f;
    MICROCOUNT_CUDNN_CHECK(cudnnBatchNormalizationBackward(t.handle(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &zero,
                                                           xd, x.data, dyd, dy.data, dxd, dx.data, bn, g, dg, db, p.eps,
                                                           saved_mean, saved_invstd));
  }

 private:
  // The [1, C, 1, 1] descriptor of γ, β and the statistics.
  static tensor_desc derived(const tensor_desc& xd) {
    tensor_desc d = tensor_desc::blank();
    MICROCOUNT_CUDNN_CHECK(cudnnDeriveBNTensorDescriptor(d, xd, CUDNN_BATCHNORM_SPATIAL));
    return d;
  }
  template <class A, class B>
  static void require_same(const A& a, const B& b, const char* call) {
    require(a.extent == b.extent, "cudnn batch_norm", std::string(call) + ": tensors of different extents " +
                                                          shape_of(a).str() + " and " + shape_of(b).str());
  }
};

}  // namespace microcount::cudnn

namespace microcount {

template <>
struct kernel<ops::batch_norm, backend::cudnn> : cudnn::batch_norm_kernel {};

}  // namespace microcount
