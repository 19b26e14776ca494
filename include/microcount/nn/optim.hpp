#pragma once
// Optimizers over a list of nn::parameter<B> (value, grad, decay flag), with PyTorch's update rules:
//   sgd<B>     momentum (PyTorch's buffer rule), optional Nesterov, L2 weight decay
//   adam<B>    Adam with bias correction; weight decay as L2 added to the gradient (torch.optim.Adam)
//   adamw<B>   Adam with decoupled weight decay (torch.optim.AdamW)
// Weight decay touches only parameters whose `decay` flag is true (PyTorch with a "no decay" group for
// biases and norm parameters). Each update is ONE elementwise body run by for_each<B>.
//
// Checkpoints: for_each_state(f) visits the whole optimizer state in a fixed order,
//   f(std::string_view name, std::int64_t& value)   for "step" (optimizer steps taken)
//   f(std::string_view name, tensor<T, B>& value)   for each moment tensor, named
//                                                   "<i>.<parameter name>.<momentum_buffer|exp_avg|exp_avg_sq>"
// so a generic lambda (or an overload set) can write it out and read it back in place; a restored
// optimizer continues exactly as the saved one would have.
//
// clip_grad_norm(params, max_norm) rescales all gradients together (global L2 norm), deterministically.
#include <cmath>
#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "microcount/core/elementwise.hpp"
#include "microcount/core/error.hpp"
#include "microcount/nn/layer.hpp"
#include "microcount/nn/loss/common.hpp"

namespace microcount::nn {

template <class B>
using parameter_list = std::vector<parameter<B>>;

// The parameters of a model (or layer), in its for_each_parameter order.
template <class Model>
parameter_list<typename Model::backend_type> parameters_of(Model& model) {
  parameter_list<typename Model::backend_type> out;
  model.for_each_parameter([&](const parameter<typename Model::backend_type>& p) { out.push_back(p); });
  return out;
}

template <class O>
concept optimizer = requires(O o, const O& c, double lr) {
  o.step();
  o.set_learning_rate(lr);
  { c.learning_rate() } -> std::convertible_to<double>;
  { c.steps() } -> std::convertible_to<std::int64_t>;
};

namespace optim_detail {

template <class B>
void check_parameters(const parameter_list<B>& params, std::string_view who) {
  for (std::size_t i = 0; i < params.size(); ++i) {
    const auto& p = params[i];
    const std::string name = "parameter " + std::to_string(i) + " (" + p.name + ")";
    require(p.value && p.grad, who, name + " has no value or no gradient tensor");
    require(p.value->shape() == p.grad->shape(), who,
            name + ": value " + p.value->shape().str() + " and gradient " + p.grad->shape().str() + " differ in shape");
  }
}
inline void check_rate(double v, std::string_view who, std::string_view what) {
  require(std::isfinite(v) && v >= 0, who, std::string(what) + " must be finite and ≥ 0, got " + std::to_string(v));
}
inline void check_beta(double v, std::string_view who, std::string_view what) {
  require(v >= 0 && v < 1, who, std::string(what) + " must be in [0, 1), got " + std::to_string(v));
}
inline std::string state_name(std::size_t i, const std::string& parameter, std::string_view what) {
  return std::to_string(i) + "." + parameter + "." + std::string(what);
}

// p ← p − lr·(g + λp)
template <class T>
struct sgd_body {
  T lr, l2;
  template <class V>
  MICROCOUNT_HOST_DEVICE void operator()(V& p, const V& g) const { p = p - V(lr) * (g + V(l2) * p); }
};
// d = g + λp;  buf ← first ? d : μ·buf + (1 − τ)·d;  p ← p − lr·(nesterov ? d + μ·buf : buf)
template <class T>
struct sgd_momentum_body {
  T lr, l2, momentum, keep;  // keep = 1 − dampening
  bool nesterov, first;
  template <class V>
  MICROCOUNT_HOST_DEVICE void operator()(V& p, V& buf, const V& g) const {
    const V d = g + V(l2) * p;
    buf = first ? d : V(momentum) * buf + V(keep) * d;
    p = p - V(lr) * (nesterov ? d + V(momentum) * buf : buf);
  }
};
// d = g + λ₂p;  p ← shrink·p;  m ← β1 m + (1 − β1) d;  v ← β2 v + (1 − β2) d²;
// p ← p − step_size · m / (√v / √bc2 + eps),   step_size = lr / bc1
template <class T>
struct adam_body {
  T l2, shrink, beta1, beta2, step_size, sqrt_bc2, eps;
  template <class V>
  MICROCOUNT_HOST_DEVICE void operator()(V& p, V& m, V& v, const V& g) const {
    using namespace microcount::math;
    const V d = g + V(l2) * p;
    p = V(shrink) * p;
    m = V(beta1) * m + V(T(1) - beta1) * d;
    v = V(beta2) * v + V(T(1) - beta2) * d * d;
    p = p - V(step_size) * (m / (sqrt(v) / V(sqrt_bc2) + V(eps)));
  }
};
template <class T>
struct scale_body {
  T factor;
  template <class V>
  MICROCOUNT_HOST_DEVICE void operator()(V& x) const { x = V(factor) * x; }
};

}  // namespace optim_detail

// ---- gradient norm --------------------------------------------------------------------------------

// √(Σ over all parameters of Σ g²), summed per tensor in double and over tensors in list order.
template <class B>
double gradient_norm(const parameter_list<B>& params) {
  optim_detail::check_parameters(params, "gradient_norm");
  double squares = 0;
  for (const auto& p : params)
    if (p.grad->size())
      squares += loss_detail::channel_sums<B>(p.grad->data(), loss_detail::flat_layout(p.grad->size()), true)[0];
  return std::sqrt(squares);
}

// Scales every gradient by max_norm / (norm + 1e-6) when the global norm exceeds max_norm
// (torch.nn.utils.clip_grad_norm_). Returns the norm before clipping. A NaN or infinite norm is an error:
// applying it would destroy the weights.
template <class B>
double clip_grad_norm(const parameter_list<B>& params, double max_norm) {
  require(max_norm > 0 && std::isfinite(max_norm), "clip_grad_norm", "max_norm must be finite and > 0");
  const double norm = gradient_norm(params);
  require(std::isfinite(norm), "clip_grad_norm", "the gradient norm is not finite (NaN or infinite gradients)");
  const double factor = max_norm / (norm + 1e-6);
  if (factor < 1) {
    using T = scalar_t<B>;
    for (const auto& p : params) for_each<B>(p.grad->size(), optim_detail::scale_body<T>{static_cast<T>(factor)}, p.grad->data());
  }
  return norm;
}

// ---- SGD ------------------------------------------------------------------------------------------

struct sgd_options {
  double lr = 1e-2;
  double momentum = 0;
  double dampening = 0;
  double weight_decay = 0;
  bool nesterov = false;
};

template <class B>
class sgd {
 public:
  using backend_type = B;
  using T = scalar_t<B>;
  static constexpr std::string_view kind = "sgd";

  explicit sgd(parameter_list<B> params, sgd_options o = {}) : params_(std::move(params)), options_(o) {
    optim_detail::check_parameters(params_, kind);
    optim_detail::check_rate(o.lr, kind, "lr");
    optim_detail::check_rate(o.momentum, kind, "momentum");
    optim_detail::check_rate(o.dampening, kind, "dampening");
    optim_detail::check_rate(o.weight_decay, kind, "weight_decay");
    require(!o.nesterov || (o.momentum > 0 && o.dampening == 0), kind, "Nesterov momentum requires momentum > 0 and no dampening");
    if (o.momentum > 0)
      for (const auto& p : params_) buffers_.push_back(tensor_t<B>::zeros(p.value->shape()));
  }

  void step() {
    for (std::size_t i = 0; i < params_.size(); ++i) {
      const auto& p = params_[i];
      const T l2 = static_cast<T>(p.decay ? options_.weight_decay : 0.0);
      if (buffers_.empty()) {
        for_each<B>(p.value->size(), optim_detail::sgd_body<T>{static_cast<T>(options_.lr), l2}, p.value->data(),
                    static_cast<const T*>(p.grad->data()));
      } else {
        const optim_detail::sgd_momentum_body<T> body{static_cast<T>(options_.lr), l2, static_cast<T>(options_.momentum),
                                                      static_cast<T>(1 - options_.dampening), options_.nesterov, steps_ == 0};
        for_each<B>(p.value->size(), body, p.value->data(), buffers_[i].data(), static_cast<const T*>(p.grad->data()));
      }
    }
    ++steps_;
  }

  [[nodiscard]] double learning_rate() const { return options_.lr; }
  void set_learning_rate(double lr) {
    optim_detail::check_rate(lr, kind, "lr");
    options_.lr = lr;
  }
  // OneCycle-style momentum cycling (a momentum buffer must exist: momentum > 0 at construction).
  void set_momentum(double m) {
    require(!buffers_.empty() && m > 0 && m < 1, kind, "set_momentum needs momentum enabled at construction and a value in (0, 1)");
    options_.momentum = m;
  }
  [[nodiscard]] const sgd_options& options() const { return options_; }
  [[nodiscard]] std::int64_t steps() const { return steps_; }
  [[nodiscard]] const parameter_list<B>& parameters() const { return params_; }

  template <class F>
  void for_each_state(F&& f) {
    f(std::string_view("step"), steps_);
    for (std::size_t i = 0; i < buffers_.size(); ++i)
      f(std::string_view(optim_detail::state_name(i, params_[i].name, "momentum_buffer")), buffers_[i]);
  }

 private:
  parameter_list<B> params_;
  sgd_options options_;
  std::vector<tensor_t<B>> buffers_;  // per parameter, same shape (only with momentum)
  std::int64_t steps_ = 0;
};

// ---- Adam / AdamW ---------------------------------------------------------------------------------

struct adam_options {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;  // Adam: L2 added to the gradient
};
struct adamw_options {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;  // AdamW: decoupled, p ← p·(1 − lr·weight_decay) before the Adam step
};

namespace optim_detail {
template <class B, class Options, bool Decoupled>
class adam_family {
 public:
  using backend_type = B;
  using T = scalar_t<B>;
  static constexpr std::string_view kind = Decoupled ? "adamw" : "adam";

  explicit adam_family(parameter_list<B> params, Options o = {}) : params_(std::move(params)), options_(o) {
    check_parameters(params_, kind);
    check_rate(o.lr, kind, "lr");
    check_beta(o.beta1, kind, "beta1");
    check_beta(o.beta2, kind, "beta2");
    check_rate(o.eps, kind, "eps");
    check_rate(o.weight_decay, kind, "weight_decay");
    for (const auto& p : params_) {
      exp_avg_.push_back(tensor_t<B>::zeros(p.value->shape()));
      exp_avg_sq_.push_back(tensor_t<B>::zeros(p.value->shape()));
    }
  }

  void step() {
    ++steps_;
    const double t = static_cast<double>(steps_);
    const double bc1 = 1 - std::pow(options_.beta1, t), bc2 = 1 - std::pow(options_.beta2, t);
    for (std::size_t i = 0; i < params_.size(); ++i) {
      const auto& p = params_[i];
      const double decay = p.decay ? options_.weight_decay : 0.0;
      const adam_body<T> body{static_cast<T>(Decoupled ? 0.0 : decay),
                              static_cast<T>(Decoupled ? 1 - options_.lr * decay : 1.0),
                              static_cast<T>(options_.beta1),
                              static_cast<T>(options_.beta2),
                              static_cast<T>(options_.lr / bc1),
                              static_cast<T>(std::sqrt(bc2)),
                              static_cast<T>(options_.eps)};
      for_each<B>(p.value->size(), body, p.value->data(), exp_avg_[i].data(), exp_avg_sq_[i].data(),
                  static_cast<const T*>(p.grad->data()));
    }
  }

  [[nodiscard]] double learning_rate() const { return options_.lr; }
  void set_learning_rate(double lr) {
    check_rate(lr, kind, "lr");
    options_.lr = lr;
  }
  // β1 as "momentum" (what OneCycleLR cycles for Adam-type optimizers).
  void set_momentum(double beta1) {
    check_beta(beta1, kind, "beta1");
    options_.beta1 = beta1;
  }
  [[nodiscard]] const Options& options() const { return options_; }
  [[nodiscard]] std::int64_t steps() const { return steps_; }
  [[nodiscard]] const parameter_list<B>& parameters() const { return params_; }

  template <class F>
  void for_each_state(F&& f) {
    f(std::string_view("step"), steps_);
    for (std::size_t i = 0; i < params_.size(); ++i) {
      f(std::string_view(state_name(i, params_[i].name, "exp_avg")), exp_avg_[i]);
      f(std::string_view(state_name(i, params_[i].name, "exp_avg_sq")), exp_avg_sq_[i]);
    }
  }

 private:
  parameter_list<B> params_;
  Options options_;
  std::vector<tensor_t<B>> exp_avg_, exp_avg_sq_;  // per parameter, same shape: first and second moments
  std::int64_t steps_ = 0;
};
}  // namespace optim_detail

template <class B>
class adam : public optim_detail::adam_family<B, adam_options, false> {
  using optim_detail::adam_family<B, adam_options, false>::adam_family;
};
template <class B>
class adamw : public optim_detail::adam_family<B, adamw_options, true> {
  using optim_detail::adam_family<B, adamw_options, true>::adam_family;
};

}  // namespace microcount::nn
