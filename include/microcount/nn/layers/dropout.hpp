#pragma once
// Inverted dropout (PyTorch's Dropout(p)): in training each element is zeroed with probability p and the
// survivors scaled by 1/(1 − p); in evaluation and inspection the layer is the identity.
//   nn::dropout<B> d(0.2);
// The masks come from a generator seeded at build() from the model's rng: one 64-bit key per training
// forward, expanded by a counter-based hash, so a seed fixes every mask on every backend and thread count.
#include <string>

#include "microcount/nn/layer.hpp"
#include "microcount/nn/layers/views.hpp"
#include "microcount/nn/op.hpp"
#include "microcount/nn/ops_layers.hpp"

namespace microcount::nn {

template <class B>
struct dropout : layer_base<B> {
  static constexpr std::string_view kind = "dropout";
  using op_t = ops::dropout;
  using kernel_t = kernel<op_t, B>;

  op_t op{};
  rng generator{0};
  tensor_t<B> mask;  // 0 or 1/(1 − p) per element, of the last training-mode forward

  dropout() = default;
  explicit dropout(double p) : op{p} {}

  shape build(const shape& in, rng& r) {
    require_op<op_t, B>();
    op.check();
    generator.reseed(r.next());
    return in;
  }

  tensor_t<B> forward(const tensor_t<B>& x) {
    if (!this->training()) {
      mask = tensor_t<B>();
      return x.clone();  // outputs never alias inputs
    }
    mask.resize(x.shape());
    kernel_t::make_mask(op, generator.next(), x.size(), mask.data());
    tensor_t<B> y(x.shape());
    kernel_t::apply(op, x.size(), x.data(), mask.data(), y.data());
    return y;
  }

  // dx = dy ⊙ mask after a training forward; dy itself after an evaluation or inspection forward.
  tensor_t<B> backward(const tensor_t<B>& dy) {
    if (!detail::holds(mask)) return dy.clone();
    require(dy.shape() == mask.shape(), std::string(kind),
            "dy has shape " + dy.shape().str() + ", expected " + mask.shape().str());
    tensor_t<B> dx(dy.shape());
    kernel_t::apply(op, dy.size(), dy.data(), mask.data(), dx.data());
    return dx;
  }
};

}  // namespace microcount::nn
