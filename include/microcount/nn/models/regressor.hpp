#pragma once
// Count regressor (DeepEM style): a convolutional trunk, global average pooling and a fully connected head
// with one output per class — the predicted count of each class in the input crop.
//
//   using spec = nn::count_regressor<2, nn::norm::batch, 3>;
//   auto net = spec::make<backend::cpu>({.in_channels = 1, .classes = 3, .base_width = 16});
//   net.build({8, 1, 128, 128}, rng);   // -> [8, 3]
//
// Structure: stage<0> = block(width), then Depth times (max-pool 2, block(2·width)); then
// global_avg_pool -> linear(classes). A count grows with the crop's area while the pooled features are
// means, so the head's output is multiplied by the input's pixel count / reference_pixels (a fixed,
// run-time constant): crops of another size then predict proportionally larger or smaller counts.
#include <string>

#include "microcount/nn/compose.hpp"
#include "microcount/nn/layers/linear.hpp"
#include "microcount/nn/layers/pool.hpp"
#include "microcount/nn/models/blocks.hpp"

namespace microcount::nn {

// Multiplies by (spatial size of the input that reached the trunk) / reference_pixels; set by the model.
template <class B>
struct area_scale : layer_base<B> {
  static constexpr std::string_view kind = "area_scale";
  double factor = 1.0;
  shape build(const shape& in, rng&) { return in; }
  tensor_t<B> forward(const tensor_t<B>& x) { return scaled(x); }
  tensor_t<B> backward(const tensor_t<B>& dy) { return scaled(dy); }

 private:
  struct scale_body {
    scalar_t<B> s;
    template <class V>
    MICROCOUNT_HOST_DEVICE void operator()(V& y, const V& x) const { y = x * V(s); }
  };
  tensor_t<B> scaled(const tensor_t<B>& x) const {
    tensor_t<B> y(x.shape());
    for_each<B>(x.size(), scale_body{static_cast<scalar_t<B>>(factor)}, y.data(), x.data());
    return y;
  }
};

template <int Dims>
struct regressor_config {
  index_t in_channels = 1;
  index_t classes = 1;
  index_t base_width = 16;
  index_t groups = 8;
  std::array<int, Dims> pool = unet_config_pool();
  std::array<int, Dims> kernel = ops::conv<Dims>::filled(3);
  double reference_pixels = 128.0 * 128.0;  // the crop area at which the head's raw output is the count

  static constexpr std::array<int, Dims> unet_config_pool() {
    if constexpr (Dims == 2) return {2, 2};
    else return {1, 2, 2};
  }
};

template <int Dims, norm_choice Norm = norm::batch, int Depth = 3>
struct count_regressor {
  static_assert(Depth >= 0 && Depth <= 6, "microcount: count_regressor Depth (pooling steps) must be 0..6");
  using config = regressor_config<Dims>;

  template <class B>
  using block = conv_block<Dims, Norm, B>;
  template <class B, int Stages>
  struct trunk_t {
    using type = seq<typename trunk_t<B, Stages - 1>::type, max_pool_layer<Dims, B>, block<B>>;
  };
  template <class B>
  struct trunk_t<B, 0> {
    using type = block<B>;
  };

  template <class B>
  struct network : seq<typename trunk_t<B, Depth>::type, global_avg_pool<B>, linear<B>, area_scale<B>> {
    using base = seq<typename trunk_t<B, Depth>::type, global_avg_pool<B>, linear<B>, area_scale<B>>;
    using base::base;
    double reference_pixels = 128.0 * 128.0;
    tensor_t<B> forward(const tensor_t<B>& x) {
      this->template get<3>().factor = static_cast<double>(x.shape().size_from(2)) / reference_pixels;
      return base::forward(x);
    }
  };

  static std::string name() {
    return "count_regressor" + std::to_string(Dims) + "d<" + std::string(Norm::name) + "," + std::to_string(Depth) + ">";
  }

  template <class B>
  static network<B> make(const config& c) {
    require(c.in_channels >= 1 && c.classes >= 1 && c.base_width >= 1 && c.reference_pixels > 0, name(),
            "channel counts, classes and reference_pixels must be positive");
    network<B> net(make_trunk<B, Depth>(c), global_avg_pool<B>(), linear<B>(c.classes), area_scale<B>());
    net.reference_pixels = c.reference_pixels;
    return net;
  }

 private:
  template <class B, int Stages>
  static typename trunk_t<B, Stages>::type make_trunk(const config& c) {
    if constexpr (Stages == 0) {
      return make_conv_block<Dims, Norm, B>(c.kernel, c.base_width, c.groups);
    } else {
      const index_t width = c.base_width << Stages;
      return typename trunk_t<B, Stages>::type(make_trunk<B, Stages - 1>(c), max_pool_layer<Dims, B>(c.pool),
                                               make_conv_block<Dims, Norm, B>(c.kernel, width, c.groups));
    }
  }
};

}  // namespace microcount::nn
