#pragma once
// Op parameter structs of the non-convolution layers, and the per-element bodies of the elementwise ones
// (written once, run by every backend's for_each launcher). Shapes follow NCHW / NCDHW; "S" below is the
// product of the spatial extents, so the per-channel ops see every tensor as [N, C, S]:
//   batch_norm, group_norm:  x [N, C, S]  -> y [N, C, S]      statistics per channel / per (sample, group)
//   relu, leaky_relu, sigmoid, add, dropout:  n elements -> n elements
//   softmax:                 x [N, C, S]  -> y [N, C, S]      normalised over the channel axis 1
//   max_pool<D>:             x [N, C, in...] -> y [N, C, out...], out = (in − window) / stride + 1 (floor)
//   upsample<D>:             x [N, C, in...] -> y [N, C, in·scale...]
//   concat:                  a [N, Ca, ...], b [N, Cb, ...] -> y [N, Ca + Cb, ...]
//   global_avg_pool:         x [N, C, S]  -> y [N, C]
//   linear:                  x [N, in], w [out, in] (+ b [out]) -> y [N, out]
#include <array>
#include <cstdint>
#include <string>

#include "microcount/core/config.hpp"
#include "microcount/core/elementwise.hpp"
#include "microcount/core/error.hpp"
#include "microcount/core/shape.hpp"

namespace microcount::ops {

namespace detail {
template <int Dims>
constexpr std::array<int, Dims> filled(int v) {
  std::array<int, Dims> a{};
  for (auto& e : a) e = v;
  return a;
}
}  // namespace detail

// ---- bodies the fast kernels share (constants per channel or per row) ------------------------------
namespace bodies {

// Centred forms keep float accurate when a channel's mean is large compared with its spread.
template <class T>
struct centered_scale {  // y = (x − center)·scale + shift (normalisation with folded statistics)
  T center, scale, shift;
  template <class V>
  MICROCOUNT_HOST_DEVICE void operator()(V& y, const V& x) const { y = (x - V(center)) * V(scale) + V(shift); }
};
template <class T>
struct norm_backward {  // dx = a·dy + b·(x − center) + c
  T a, b, center, c;
  template <class V>
  MICROCOUNT_HOST_DEVICE void operator()(V& dx, const V& dy, const V& x) const {
    dx = V(a) * dy + V(b) * (x - V(center)) + V(c);
  }
};
template <class T>
struct blend {  // y = a·u + b·v (linear interpolation between two rows)
  T a, b;
  template <class V>
  MICROCOUNT_HOST_DEVICE void operator()(V& y, const V& u, const V& v) const { y = V(a) * u + V(b) * v; }
};
template <class T>
struct axpy {  // y += a·x
  T a;
  template <class V>
  MICROCOUNT_HOST_DEVICE void operator()(V& y, const V& x) const { y = y + V(a) * x; }
};

}  // namespace bodies

// ---- normalisation ------------------------------------------------------------------------------

// Batch normalisation (PyTorch's BatchNorm{1,2,3}d). Training: normalise with the batch's per-channel mean
// and biased variance, and move the running statistics towards the batch's mean and unbiased variance:
//   running ← (1 − momentum)·running + momentum·batch.
// Evaluation: normalise with the running statistics.
struct batch_norm {
  double eps = 1e-5;
  double momentum = 0.1;
};

// Group normalisation (PyTorch's GroupNorm): per sample, the channels are split into `groups` consecutive
// groups normalised with their own mean and biased variance; the affine scale and shift are per channel.
struct group_norm {
  index_t groups = 1;
  double eps = 1e-5;

  void check(const shape& x) const {
    require(x.rank >= 2, "group_norm", "expects [N, C, ...], got " + x.str());
    require(groups >= 1 && x[1] % groups == 0, "group_norm",
            std::to_string(x[1]) + " channels cannot be split into " + std::to_string(groups) + " groups");
  }
};

// ---- activations (elementwise) -------------------------------------------------------------------
// Each has forward_body(y, x) and backward_body(dx, dy, saved); `saved` is the output y (relu, sigmoid)
// or the input x (leaky_relu), as `saves_output` says.

struct relu {
  static constexpr bool saves_output = true;
  struct forward_body {
    template <class V>
    MICROCOUNT_HOST_DEVICE void operator()(V& y, const V& x) const {
      using namespace microcount::math;
      y = max(x, V(0));
    }
  };
  struct backward_body {  // y > 0 exactly where x > 0
    template <class V>
    MICROCOUNT_HOST_DEVICE void operator()(V& dx, const V& dy, const V& y) const {
      using namespace microcount::math;
      dx = select(y > V(0), dy, V(0));
    }
  };
  template <class T>
  [[nodiscard]] forward_body forward() const { return {}; }
  template <class T>
  [[nodiscard]] backward_body backward() const { return {}; }
};

struct leaky_relu {
  static constexpr bool saves_output = false;  // a negative slope would make y's sign ambiguous
  double slope = 0.01;
  template <class T>
  struct forward_body {
    T slope;
    template <class V>
    MICROCOUNT_HOST_DEVICE void operator()(V& y, const V& x) const {
      using namespace microcount::math;
      y = select(x > V(0), x, x * V(slope));
    }
  };
  template <class T>
  struct backward_body {
    T slope;
    template <class V>
    MICROCOUNT_HOST_DEVICE void operator()(V& dx, const V& dy, const V& x) const {
      using namespace microcount::math;
      dx = select(x > V(0), dy, dy * V(slope));
    }
  };
  template <class T>
  [[nodiscard]] forward_body<T> forward() const { return {static_cast<T>(slope)}; }
  template <class T>
  [[nodiscard]] backward_body<T> backward() const { return {static_cast<T>(slope)}; }
};

struct sigmoid {
  static constexpr bool saves_output = true;
  struct forward_body {  // 1 / (1 + e^−x): e^−x overflows to +inf for very negative x, giving exactly 0
    template <class V>
    MICROCOUNT_HOST_DEVICE void operator()(V& y, const V& x) const {
      using namespace microcount::math;
      y = V(1) / (V(1) + exp(-x));
    }
  };
  struct backward_body {
    template <class V>
    MICROCOUNT_HOST_DEVICE void operator()(V& dx, const V& dy, const V& y) const {
      dx = dy * y * (V(1) - y);
    }
  };
  template <class T>
  [[nodiscard]] forward_body forward() const { return {}; }
  template <class T>
  [[nodiscard]] backward_body backward() const { return {}; }
};

// Softmax over the channel axis 1 (a class map's probabilities per pixel), computed as
// exp(x − max_c x) / Σ exp(x − max_c x) so large logits cannot overflow.
struct softmax {};

// ---- pooling ---------------------------------------------------------------------------------------

// Max pooling without padding (PyTorch's MaxPool{2,3}d with ceil_mode=False): windows that would cross the
// far border are dropped, so odd sizes floor. Ties keep the first maximum in scan order (d, h, w).
template <int Dims>
struct max_pool {
  static_assert(Dims == 2 || Dims == 3, "microcount: max_pool supports 2 or 3 spatial dimensions");
  static constexpr int dims = Dims;
  std::array<int, Dims> window = detail::filled<Dims>(2);
  std::array<int, Dims> stride = detail::filled<Dims>(2);

  [[nodiscard]] shape output_shape(const shape& x) const {
    require(x.rank == Dims + 2, "max_pool", "expects input of rank " + std::to_string(Dims + 2) + ", got " + x.str());
    shape y = x;
    for (int a = 0; a < Dims; ++a) {
      require(window[a] >= 1 && stride[a] >= 1, "max_pool", "window and stride must be at least 1");
      require(x[2 + a] >= window[a], "max_pool",
              "input " + x.str() + " is smaller than the window along axis " + std::to_string(2 + a));
      y[2 + a] = (x[2 + a] - window[a]) / stride[a] + 1;
    }
    return y;
  }
};

// Global average pooling: the mean of each channel over all spatial positions, x [N, C, ...] -> [N, C].
struct global_avg_pool {
  [[nodiscard]] shape output_shape(const shape& x) const {
    require(x.rank >= 3, "global_avg_pool", "expects [N, C, spatial...], got " + x.str());
    return shape{x[0], x[1]};
  }
};

// ---- resampling --------------------------------------------------------------------------------------

enum class upsample_mode {
  nearest,  // PyTorch's mode='nearest': y[o] = x[o / scale]
  linear,   // bilinear (2D) / trilinear (3D) with align_corners=False; an axis of scale 1 is copied
};

// Upsampling by integer factors per spatial axis. Linear mode follows PyTorch's
// F.interpolate(mode='bilinear'|'trilinear', scale_factor=s, align_corners=False): output position o maps to
// the input coordinate (o + ½)/s − ½, clamped below at 0, interpolated between its two neighbours
// (the upper one clamped to the last index).
template <int Dims>
struct upsample {
  static_assert(Dims == 2 || Dims == 3, "microcount: upsample supports 2 or 3 spatial dimensions");
  static constexpr int dims = Dims;
  std::array<int, Dims> scale = detail::filled<Dims>(2);
  upsample_mode mode = upsample_mode::nearest;

  [[nodiscard]] shape output_shape(const shape& x) const {
    require(x.rank == Dims + 2, "upsample", "expects input of rank " + std::to_string(Dims + 2) + ", got " + x.str());
    shape y = x;
    for (int a = 0; a < Dims; ++a) {
      require(scale[a] >= 1, "upsample", "scale factors must be at least 1");
      y[2 + a] = x[2 + a] * scale[a];
    }
    return y;
  }
};

// ---- merging -------------------------------------------------------------------------------------------

// Concatenation along the channel axis 1: y = [a, b] (a's channels first, as U-Net skips put the skip first).
struct concat {
  [[nodiscard]] shape output_shape(const shape& a, const shape& b) const {
    bool same = a.rank == b.rank && a.rank >= 2;
    for (int i = 0; same && i < a.rank; ++i) same = (i == 1) || a[i] == b[i];
    require(same, "concat", "cannot concatenate " + a.str() + " and " + b.str() + " along channels");
    shape y = a;
    y[1] = a[1] + b[1];
    return y;
  }
};

// Elementwise sum y = a + b (residual connections), and its accumulate form y += x.
struct add {
  struct forward_body {
    template <class V>
    MICROCOUNT_HOST_DEVICE void operator()(V& y, const V& a, const V& b) const { y = a + b; }
  };
  struct accumulate_body {
    template <class V>
    MICROCOUNT_HOST_DEVICE void operator()(V& y, const V& x) const { y = y + x; }
  };
};

// ---- regularisation ------------------------------------------------------------------------------------

// Inverted dropout: in training each element is kept with probability 1 − p and scaled by 1/(1 − p), so the
// expectation is unchanged and evaluation is the identity. Whether element i is kept is a counter-based hash
// of (key, i): the same key gives the same mask on every backend and thread count.
struct dropout {
  double p = 0.5;

  void check() const { require(p >= 0 && p <= 1, "dropout", "p must be in [0, 1], got " + std::to_string(p)); }
  // Elements whose 24-bit hash is below this are dropped: P(drop) = threshold / 2^24.
  [[nodiscard]] std::uint32_t threshold() const { return static_cast<std::uint32_t>(p * double(1u << 24) + 0.5); }
  template <class T>
  [[nodiscard]] T keep_scale() const { return p >= 1 ? T(0) : static_cast<T>(1.0 / (1.0 - p)); }

  // SplitMix64's finaliser of key + i·golden ratio: a well-mixed 64-bit value per element.
  MICROCOUNT_HOST_DEVICE static std::uint64_t hash(std::uint64_t key, std::uint64_t i) {
    std::uint64_t z = key + (i + 1) * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  MICROCOUNT_HOST_DEVICE static bool kept(std::uint64_t key, std::uint64_t i, std::uint32_t threshold) {
    return static_cast<std::uint32_t>(hash(key, i) >> 40) >= threshold;
  }

  struct apply_body {  // y = x · mask, mask ∈ {0, 1/(1 − p)} (forward and backward alike)
    template <class V>
    MICROCOUNT_HOST_DEVICE void operator()(V& y, const V& x, const V& mask) const { y = x * mask; }
  };
};

// ---- dense -----------------------------------------------------------------------------------------------

// Fully connected layer (PyTorch's nn.Linear): y = x·wᵀ + b.
struct linear {
  [[nodiscard]] shape output_shape(const shape& x, const shape& w) const {
    require(x.rank == 2 && w.rank == 2, "linear", "expects x [N, in] and w [out, in], got " + x.str() + " and " + w.str());
    require(x[1] == w[1], "linear", "input has " + std::to_string(x[1]) + " features but the weight expects " +
                                         std::to_string(w[1]));
    return shape{x[0], w[0]};
  }
};

}  // namespace microcount::ops
