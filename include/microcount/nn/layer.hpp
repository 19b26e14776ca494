#pragma once
// What a layer is. A layer is a struct, bound to a backend B, with
//   shape build(const shape& in, rng&)       // check the input shape, allocate + initialise parameters,
//                                            //   return the output shape (errors name the layer)
//   tensor forward(const tensor& x)          // in training mode keeps what backward needs
//   tensor backward(const tensor& dy)        // returns dx; sets (overwrites) every parameter's grad
//   void for_each_parameter(F&& f)           // f(const parameter<B>&) for each trainable tensor
//   void for_each_buffer(F&& f)              // f(std::string_view name, tensor&) for non-trained state
//                                            //   (BatchNorm running statistics) saved in checkpoints
//   void set_mode(mode m)                    // training / evaluation / inspection
//   static constexpr std::string_view kind   // a short name used in architecture signatures
// Gradients are explicit per layer (no tape). Composites (seq, skip_concat, residual) forward all of it.
//
// Modes:
//   training    batch statistics, dropout masks; forward keeps what backward needs; backward sets every
//               parameter's gradient.
//   evaluation  running statistics, no dropout; forward keeps nothing (backward is refused, except by
//               BatchNorm, which supports fine-tuning with frozen statistics).
//   inspection  the evaluation-mode function, but forward keeps what backward needs: backward returns dx of
//               that function (BatchNorm: dy·γ/sqrt(running_var + eps), dropout: dy). Parameter gradients
//               are NOT computed and keep their values, so explaining a prediction (explain/gradcam.hpp)
//               costs one forward and one input-gradient pass and never disturbs a training step.
#include <concepts>
#include <string>
#include <string_view>

#include "microcount/core/rng.hpp"
#include "microcount/core/shape.hpp"
#include "microcount/core/tensor.hpp"

namespace microcount::nn {

enum class mode { training, evaluation, inspection };

template <class B>
using tensor_t = tensor<scalar_t<B>, B>;

// A trainable tensor and its gradient (same shape).
template <class B>
struct parameter {
  std::string name;       // e.g. "weight", "bias"; composites prefix their path ("3.conv.weight")
  tensor_t<B>* value = nullptr;
  tensor_t<B>* grad = nullptr;
  bool decay = true;      // whether weight decay applies (false for norms' scale/shift and biases)
};

template <class L>
concept layer = requires(L l, const shape& s, rng& r, const tensor_t<typename L::backend_type>& t, mode m) {
  typename L::backend_type;
  { l.build(s, r) } -> std::same_as<shape>;
  { l.forward(t) } -> std::same_as<tensor_t<typename L::backend_type>>;
  { l.backward(t) } -> std::same_as<tensor_t<typename L::backend_type>>;
  l.set_mode(m);
  { L::kind } -> std::convertible_to<std::string_view>;
};

// Convenience base: holds the backend type and the mode; layers without parameters or buffers get
// empty visitors.
template <class B>
struct layer_base {
  using backend_type = B;
  mode current_mode = mode::training;
  void set_mode(mode m) { current_mode = m; }
  // Whether forward computes the training-mode function (batch statistics, dropout).
  [[nodiscard]] bool training() const { return current_mode == mode::training; }
  // Whether forward keeps what backward needs (training and inspection).
  [[nodiscard]] bool keeps_for_backward() const { return current_mode != mode::evaluation; }
  // Whether backward is for dx only (parameter gradients left as they are).
  [[nodiscard]] bool inspecting() const { return current_mode == mode::inspection; }
  [[nodiscard]] mode get_mode() const { return current_mode; }
  template <class F>
  void for_each_parameter(F&&) {}
  template <class F>
  void for_each_buffer(F&&) {}
};

}  // namespace microcount::nn
