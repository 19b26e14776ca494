#pragma once
// Convolution and transposed convolution (2D, 3D) of backend::cudnn through cuDNN's legacy API:
// forward = cudnnConvolutionForward, backward_data = cudnnConvolutionBackwardData, backward_weights =
// cudnnConvolutionBackwardFilter (+ cudnnConvolutionBackwardBias for dbias), bias added with
// cudnnAddTensor. Same interface and semantics as backends/reference/conv.hpp. Anything else the cuda
// kernel offers (e.g. forward_fused) is inherited from kernel<op, backend::cuda>.
#include <array>
#include <string>
#include <type_traits>

#include "microcount/backends/cuda.hpp"
#include "microcount/backends/cudnn/runtime.cuh"
#include "microcount/nn/op.hpp"
#include "microcount/nn/ops.hpp"

namespace microcount::cudnn {

// kernel<Op, backend::cuda> when the cuda backend implements Op, else nothing: what cudnn's own
// kernels inherit, so they add to the cuda kernel instead of hiding it.
struct no_cuda_kernel {};
template <class Op>
using cuda_base = std::conditional_t<supports<Op, backend::cuda>, kernel<Op, backend::cuda>, no_cuda_kernel>;

// cuDNN refuses zero extents; empty problems (a batch of 0, no channels) go to the cuda kernel instead.
template <class... Views>
bool any_empty(const Views&... v) {
  return ((v.size() == 0) || ...);
}

template <int Rank, class T>
shape shape_of(const tensor_view<T, Rank>& v) {
  shape s;
  s.rank = Rank;
  for (int a = 0; a < Rank; ++a) s[a] = v.extent[a];
  return s;
}

// The three cuDNN convolution calls for one conv<Dims> geometry; every output is overwritten.
template <int Dims>
struct convolution {
  static constexpr int rank = Dims + 2;
  using in_view = tensor_view<const float, rank>;
  using out_view = tensor_view<float, rank>;

  // y = conv(x, w). x [N, IC, in...], w [OC, IC, k...], y [N, OC, out...]
  static void forward(const ops::conv<Dims>& p, in_view x, in_view w, out_view y) {
    require_shape(p, x, w, y, "forward");
    const tensor_desc xd(x), yd(y);
    const filter_desc wd(w);
    const convolution_desc cd(p.pad, p.stride, p.dilation);
    const choice c = cached(0, p, x.extent, w.extent, y.extent, [&] {
      cudnnConvolutionFwdAlgoPerf_t ranked[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
      int count = 0;
      MICROCOUNT_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(handle(), xd, wd, cd, yd,
                                                                    CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, ranked));
      choice c = pick(ranked, count, "forward");
      MICROCOUNT_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(
          handle(), xd, wd, cd, yd, static_cast<cudnnConvolutionFwdAlgo_t>(c.algorithm), &c.workspace));
      return c;
    });
    use_math(cd, c);
    const float one = 1.f, zero = 0.f;
    void* ws = this_thread().workspace(c.workspace);
    MICROCOUNT_CUDNN_CHECK(cudnnConvolutionForward(handle(), &one, xd, x.data, wd, w.data, cd,
                                                   static_cast<cudnnConvolutionFwdAlgo_t>(c.algorithm), ws, c.workspace,
                                                   &zero, yd, y.data));
  }

  // dx = conv^T(dy, w): dx [N, IC, in...] from dy [N, OC, out...].
  static void backward_data(const ops::conv<Dims>& p, in_view dy, in_view w, out_view dx) {
    require_shape(p, in_view(dx), w, out_view{const_cast<float*>(dy.data), dy.extent, dy.stride}, "backward_data");
    const tensor_desc dyd(dy), dxd(dx);
    const filter_desc wd(w);
    const convolution_desc cd(p.pad, p.stride, p.dilation);
    const choice c = cached(1, p, dx.extent, w.extent, dy.extent, [&] {
      cudnnConvolutionBwdDataAlgoPerf_t ranked[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
      int count = 0;
      MICROCOUNT_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
          handle(), wd, dyd, cd, dxd, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, ranked));
      choice c = pick(ranked, count, "backward-data");
      MICROCOUNT_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(
          handle(), wd, dyd, cd, dxd, static_cast<cudnnConvolutionBwdDataAlgo_t>(c.algorithm), &c.workspace));
      return c;
    });
    use_math(cd, c);
    const float one = 1.f, zero = 0.f;
    void* ws = this_thread().workspace(c.workspace);
    MICROCOUNT_CUDNN_CHECK(cudnnConvolutionBackwardData(handle(), &one, wd, w.data, dyd, dy.data, cd,
                                                        static_cast<cudnnConvolutionBwdDataAlgo_t>(c.algorithm), ws,
                                                        c.workspace, &zero, dxd, dx.data));
  }

  // dw = dL/dw from x [N, IC, in...] and dy [N, OC, out...].
  static void backward_filter(const ops::conv<Dims>& p, in_view x, in_view dy, out_view dw) {
    require_shape(p, x, in_view(dw), out_view{const_cast<float*>(dy.data), dy.extent, dy.stride}, "backward_weights");
    const tensor_desc xd(x), dyd(dy);
    const filter_desc wd(dw);
    const convolution_desc cd(p.pad, p.stride, p.dilation);
    const choice c = cached(2, p, x.extent, dw.extent, dy.extent, [&] {
      cudnnConvolutionBwdFilterAlgoPerf_t ranked[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
      int count = 0;
      MICROCOUNT_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
          handle(), xd, dyd, cd, wd, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, ranked));
      choice c = pick(ranked, count, "backward-filter");
      MICROCOUNT_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(
          handle(), xd, dyd, cd, wd, static_cast<cudnnConvolutionBwdFilterAlgo_t>(c.algorithm), &c.workspace));
      return c;
    });
    use_math(cd, c);
    const float one = 1.f, zero = 0.f;
    void* ws = this_thread().workspace(c.workspace);
    MICROCOUNT_CUDNN_CHECK(cudnnConvolutionBackwardFilter(handle(), &one, xd, x.data, dyd, dy.data, cd,
                                                          static_cast<cudnnConvolutionBwdFilterAlgo_t>(c.algorithm), ws,
                                                          c.workspace, &zero, wd, dw.data));
  }

  // y[:, c, ...] += bias[c]
  static void add_bias(const float* bias, out_view y) {
    const tensor_desc yd(y);
    const tensor_desc bd = tensor_desc::channel_vector(y.extent[1], rank);
    const float one = 1.f;
    MICROCOUNT_CUDNN_CHECK(cudnnAddTensor(handle(), &one, bd, bias, &one, yd, y.data));
  }

  // dbias[c] = Σ dy[:, c, ...] (overwritten).
  static void bias_grad(in_view dy, float* dbias) {
    const tensor_desc dyd(dy);
    const tensor_desc bd = tensor_desc::channel_vector(dy.extent[1], rank);
    const float one = 1.f, zero = 0.f;
    MICROCOUNT_CUDNN_CHECK(cudnnConvolutionBackwardBias(handle(), &one, dyd, dy.data, &zero, bd, dbias));
  }

 private:
  // Under TF32 the descriptor takes the math type the algorithm was ranked with; FP32 stays FMA-only.
  static void use_math(const convolution_desc& cd, const choice& c) {
    if (settings().allow_tf32) MICROCOUNT_CUDNN_CHECK(cudnnSetConvolutionMathType(cd, c.math));
  }
  // x, w, y must be what conv<Dims> makes: a wrong extent is an error naming the call, not garbage.
  static void require_shape(const ops::conv<Dims>& p, in_view x, in_view w, out_view y, const char* call) {
    const shape expected = p.output_shape(shape_of(x), shape_of(w));
    require(expected == shape_of(y), "cudnn conv", std::string(call) + ": input " + shape_of(x).str() + " and weight " +
                                                       shape_of(w).str() + " make output " + expected.str() + ", got " +
                                                       shape_of(y).str());
  }

  template <class Find>
  static choice cached(int direction, const ops::conv<Dims>& p, const std::array<index_t, rank>& x,
                       const std::array<index_t, rank>& w, const std::array<index_t, rank>& y, Find&& find) {
    const problem_key key = make_key<rank, Dims>(direction, x, w, y, p.stride, p.pad, p.dilation);
    auto& cache = algorithm_cache();
    if (auto it = cache.find(key); it != cache.end()) return it->second;
    const choice c = find();
    cache.emplace(key, c);
    return c;
  }
};

template <int Dims>
struct conv_kernel : cuda_base<ops::conv<Dims>> {
  using op = ops::conv<Dims>;
  static constexpr int rank = Dims + 2;
  using in_view = tensor_view<const float, rank>;
  using out_view = tensor_view<float, rank>;
  using engine = convolution<Dims>;
  using cuda_kernel = kernel<op, backend::cuda>;

  // y = conv(x, w) + bias. bias [OC] may be null.
  static void forward(const op& p, in_view x, in_view w, const float* bias, out_view y) {
    if (any_empty(x, w, y)) return cuda_kernel::forward(p, x, w, bias, y);
    engine::forward(p, x, w, y);
    if (bias) engine::add_bias(bias, y);
  }
  // dx = conv^T(dy, w), overwriting dx.
  static void backward_data(const op& p, in_view dy, in_view w, out_view dx) {
    if (any_empty(dy, w, dx)) return cuda_kernel::backward_data(p, dy, w, dx);
    engine::backward_data(p, dy, w, dx);
  }
  // dw and dbias (when non-null), overwriting both.
  static void backward_weights(const op& p, in_view x, in_view dy, out_view dw, float* dbias) {
    if (any_empty(x, dy, dw)) return cuda_kernel::backward_weights(p, x, dy, dw, dbias);
    engine::backward_filter(p, x, dy, dw);
    if (dbias) engine::bias_grad(dy, dbias);
  }
};

// The adjoint of conv: forward is conv's backward_data, backward_data is conv's forward, and the weight
// gradient is conv's with x and dy swapped (weights [IC, OC, k...] are conv's [OC', IC', k...]).
template <int Dims>
struct conv_transpose_kernel : cuda_base<ops::conv_transpose<Dims>> {
  using op = ops::conv_transpose<Dims>;
  static constexpr int rank = Dims + 2;
  using in_view = tensor_view<const float, rank>;
  using out_view = tensor_view<float, rank>;
  using engine = convolution<Dims>;
  using cuda_kernel = kernel<op, backend::cuda>;

  static void forward(const op& p, in_view x, in_view w, const float* bias, out_view y) {
    if (any_empty(x, w, y)) return cuda_kernel::forward(p, x, w, bias, y);
    require(shape_of(y) == p.output_shape(shape_of(x), shape_of(w)), "cudnn conv_transpose",
            "output " + shape_of(y).str() + " does not match input " + shape_of(x).str() + " and weight " + shape_of(w).str());
    engine::backward_data(p.forward_conv(), x, w, y);
    if (bias) engine::add_bias(bias, y);
  }
  static void backward_data(const op& p, in_view dy, in_view w, out_view dx) {
    if (any_empty(dy, w, dx)) return cuda_kernel::backward_data(p, dy, w, dx);
    engine::forward(p.forward_conv(), dy, w, dx);
  }
  static void backward_weights(const op& p, in_view x, in_view dy, out_view dw, float* dbias) {
    if (any_empty(x, dy, dw)) return cuda_kernel::backward_weights(p, x, dy, dw, dbias);
    engine::backward_filter(p.forward_conv(), dy, x, dw);
    if (dbias) engine::bias_grad(dy, dbias);
  }
};

}  // namespace microcount::cudnn

namespace microcount {

template <>
struct kernel<ops::conv<2>, backend::cudnn> : cudnn::conv_kernel<2> {};
template <>
struct kernel<ops::conv<3>, backend::cudnn> : cudnn::conv_kernel<3> {};
template <>
struct kernel<ops::conv_transpose<2>, backend::cudnn> : cudnn::conv_transpose_kernel<2> {};
template <>
struct kernel<ops::conv_transpose<3>, backend::cudnn> : cudnn::conv_transpose_kernel<3> {};

}  // namespace microcount
