#pragma once
// U-Nets for 2D images (NCHW) and 2D+t movies (NCDHW, anisotropic pooling in time).
//
//   using spec = nn::unet<2, nn::norm::batch, nn::up::transposed, 3>;   // the reference counting U-Net
//   auto net = spec::make<backend::cpu>({.in_channels = 1, .out_channels = 1, .base_width = 16});
//   shape out = net.build({8, 1, 256, 256}, rng);                      // [N, out_channels, H, W]
//
// Structure (fixed at compile time): Depth pooling steps; every level is two conv-norm-ReLU units (3×3, or
// 3×3×3 in 3D), the skip is concatenated first, then the upsampled deeper features; a 1×1 head.
//   level<L>  = seq<block, skip_concat<seq<pool, level<L−1>, up>>, block>      level<0> = block
// Numbers a user tunes are run-time: channel counts (width doubles per level), pooling window, groups.
// With norm::batch, convolutions have no bias (BatchNorm's shift replaces it), as in the reference model.
#include <array>
#include <string>
#include <type_traits>

#include "microcount/nn/compose.hpp"
#include "microcount/nn/models/blocks.hpp"
#include "microcount/nn/layers/activation.hpp"
#include "microcount/nn/layers/conv.hpp"
#include "microcount/nn/layers/conv_transpose.hpp"
#include "microcount/nn/layers/norm.hpp"
#include "microcount/nn/layers/pool.hpp"
#include "microcount/nn/layers/upsample.hpp"

namespace microcount::nn {

template <int Dims>
struct unet_config {
  index_t in_channels = 1;
  index_t out_channels = 1;
  index_t base_width = 16;               // channels of level 0; doubled at every pooling step
  index_t groups = 8;                    // GroupNorm groups (norm::group), clamped to the width
  std::array<int, Dims> pool = pool_default();  // pooling window = stride (2D: 2×2; 3D: 1×2×2, time kept)
  std::array<int, Dims> kernel = kernel_default();

  static constexpr std::array<int, Dims> pool_default() {
    if constexpr (Dims == 2) return {2, 2};
    else return {1, 2, 2};
  }
  static constexpr std::array<int, Dims> kernel_default() {
    if constexpr (Dims == 2) return {3, 3};
    else return {3, 3, 3};
  }
};

template <int Dims, norm_choice Norm = norm::batch, up_choice Up = up::transposed, int Depth = 3>
struct unet {
  static_assert(Dims == 2 || Dims == 3, "microcount: unet<Dims> is 2D (NCHW) or 3D (NCDHW)");
  static_assert(Depth >= 1 && Depth <= 6, "microcount: unet Depth (pooling steps) must be 1..6");
  using config = unet_config<Dims>;

  template <class B>
  using unit = conv_unit<Dims, Norm, B>;
  template <class B>
  using block = conv_block<Dims, Norm, B>;
  template <class B>
  using upsampler = std::conditional_t<std::is_same_v<Up, up::transposed>, conv_transpose_layer<Dims, B>,
                                       seq<upsample_layer<Dims, B>, conv_layer<Dims, B>>>;

  template <class B, int Levels>
  struct level {
    using type = seq<block<B>, skip_concat<seq<max_pool_layer<Dims, B>, typename level<B, Levels - 1>::type, upsampler<B>>>, block<B>>;
  };
  template <class B>
  struct level<B, 0> {
    using type = block<B>;
  };

  template <class B>
  using network = seq<typename level<B, Depth>::type, conv_layer<Dims, B>>;

  // "unet2d<batch,transposed,3>": the architecture name stored in checkpoints.
  static std::string name() {
    return "unet" + std::to_string(Dims) + "d<" + std::string(Norm::name) + "," + std::string(Up::name) + "," +
           std::to_string(Depth) + ">";
  }

  template <class B>
  static network<B> make(const config& c) {
    require(c.in_channels >= 1 && c.out_channels >= 1 && c.base_width >= 1, name(), "channel counts must be positive");
    return network<B>(make_level<B, Depth>(c, c.base_width), conv_layer<Dims, B>(c.out_channels, filled(1), {}, true));
  }

 private:
  static constexpr std::array<int, Dims> filled(int v) { return ops::conv<Dims>::filled(v); }

  template <class B>
  static block<B> make_block(const config& c, index_t width) {
    return make_conv_block<Dims, Norm, B>(c.kernel, width, c.groups);
  }
  template <class B>
  static upsampler<B> make_up(const config& c, index_t width) {
    if constexpr (std::is_same_v<Up, up::transposed>) {
      ops::conv_transpose<Dims> t;
      t.stride = c.pool;
      return upsampler<B>(width, c.pool, t, true);
    } else {
      const auto mode = std::is_same_v<Up, up::nearest> ? ops::upsample_mode::nearest : ops::upsample_mode::linear;
      return upsampler<B>(upsample_layer<Dims, B>(c.pool, mode), conv_layer<Dims, B>(width, filled(1), {}, true));
    }
  }
  template <class B, int Levels>
  static typename level<B, Levels>::type make_level(const config& c, index_t width) {
    if constexpr (Levels == 0) {
      return make_block<B>(c, width);
    } else {
      using inner_t = seq<max_pool_layer<Dims, B>, typename level<B, Levels - 1>::type, upsampler<B>>;
      return typename level<B, Levels>::type(
          make_block<B>(c, width),
          skip_concat<inner_t>(inner_t(max_pool_layer<Dims, B>(c.pool), make_level<B, Levels - 1>(c, 2 * width),
                                       make_up<B>(c, width))),
          make_block<B>(c, width));
    }
  }
};

template <norm_choice Norm = norm::batch, up_choice Up = up::transposed, int Depth = 3>
using unet2d = unet<2, Norm, Up, Depth>;
template <norm_choice Norm = norm::batch, up_choice Up = up::transposed, int Depth = 3>
using unet3d = unet<3, Norm, Up, Depth>;

// Number of trainable values in a model.
template <class Model>
index_t parameter_count(Model& m) {
  index_t n = 0;
  m.for_each_parameter([&](const auto& p) { n += p.value->size(); });
  return n;
}

}  // namespace microcount::nn
