// Tiled prediction against whole-image forwards: exact (up to float reordering) when the margin covers the
// network's receptive field, for odd sizes, tiles that do not divide the image, 2D and 2D+t, real images;
// padding against hand-padded images; flip TTA against flips done by hand with xtensor.
#include <doctest/doctest.h>

#include <cmath>
#include <xtensor/xmanipulation.hpp>
#include <xtensor/xview.hpp>

#include "microcount/backends/cpu.hpp"
#include "microcount/infer/predict.hpp"
#include "microcount/io/tiff.hpp"
#include "microcount/nn/layers/activation.hpp"
#include "microcount/nn/layers/conv.hpp"
#include "test_support.hpp"

using namespace microcount;

namespace {

template <int D, class B>
using two_convs = nn::seq<nn::conv_layer<D, B>, nn::relu<B>, nn::conv_layer<D, B>>;

// conv 3×3 (or 3×3×3) "same" -> ReLU -> conv 3×3 "same": receptive radius 2, size divisor 1.
template <int D, class B>
two_convs<D, B> make_two_convs(index_t in, index_t hidden, index_t out, rng& r) {
  ops::conv<D> same;
  same.pad = ops::conv<D>::filled(1);
  two_convs<D, B> net(nn::conv_layer<D, B>(hidden, ops::conv<D>::filled(3), same), nn::relu<B>(),
                      nn::conv_layer<D, B>(out, ops::conv<D>::filled(3), same));
  shape s{1, in};
  s.rank = D + 2;
  for (int a = 0; a < D; ++a) s[2 + a] = 8;
  net.build(s, r);
  // Non-zero biases: a zero bias would hide a wrongly zero-padded tile border less well.
  net.template get<0>().bias[0] = 0.3f;
  net.template get<2>().bias[0] = -0.2f;
  return net;
}

template <std::size_t R>
xt::xtensor<float, R> random_image(const std::array<std::size_t, R>& s, rng& r) {
  xt::xtensor<float, R> x = xt::xtensor<float, R>::from_shape(s);
  for (auto& v : x) v = static_cast<float>(r.uniform(-1, 1));
  return x;
}

// The whole image [C, spatial...] through the model as one batch of one: [K, spatial...].
template <class Model, std::size_t R>
xt::xtensor<float, R> whole_forward(Model& model, const xt::xtensor<float, R>& image) {
  using B = typename Model::backend_type;
  model.set_mode(nn::mode::evaluation);
  shape s{1};
  s.rank = R + 1;
  for (std::size_t a = 0; a < R; ++a) s[1 + a] = static_cast<index_t>(image.shape()[a]);
  nn::tensor_t<B> x(s);
  std::copy(image.begin(), image.end(), x.data());
  auto y = model.forward(x);
  std::array<std::size_t, R> out_shape{};
  for (std::size_t a = 0; a < R; ++a) out_shape[a] = static_cast<std::size_t>(y.dim(1 + a));
  xt::xtensor<float, R> out = xt::xtensor<float, R>::from_shape(out_shape);
  std::copy(y.data(), y.data() + y.size(), out.begin());
  return out;
}

template <class A, class C>
double max_abs_diff(const A& a, const C& b) {
  REQUIRE(a.shape() == b.shape());
  return static_cast<double>(xt::amax(xt::abs(a - b))());
}

// [C, H, W] padded at the end to [C, PH, PW] by numpy-style reflection or zeros, written out by hand.
xt::xtensor<float, 3> pad_by_hand(const xt::xtensor<float, 3>& x, std::size_t PH, std::size_t PW, bool reflect) {
  const std::size_t C = x.shape()[0], H = x.shape()[1], W = x.shape()[2];
  auto mirror = [](std::size_t i, std::size_t n) {  // n >= 2 here
    while (i >= n) i = 2 * (n - 1) - i;             // one bounce suffices for padding < n
    return i;
  };
  xt::xtensor<float, 3> p = xt::zeros<float>({C, PH, PW});
  for (std::size_t c = 0; c < C; ++c)
    for (std::size_t y = 0; y < PH; ++y)
      for (std::size_t z = 0; z < PW; ++z) {
        if (!reflect && (y >= H || z >= W)) continue;
        p(c, y, z) = x(c, mirror(y, H), mirror(z, W));
      }
  return p;
}

}  // namespace

TEST_CASE_TEMPLATE("predict: two 3x3 convs, margin >= 2: tiled equals the whole-image forward", B, backend::reference,
                   backend::cpu) {
  rng r(11);
  auto net = make_two_convs<2, B>(2, 5, 3, r);
  const auto image = random_image<3>({2, 37, 53}, r);  // odd sizes; 16-tiles divide neither
  const auto whole = whole_forward(net, image);          // [3, 37, 53]
  for (index_t margin : {2, 3, 5}) {
    CAPTURE(margin);
    index_t calls = 0, last_done = 0, total = 0;
    const auto tiled = infer::predict(net, image,
                                      {.tile = {16, 13}, .margin = {margin, margin}, .batch = 3, .progress = [&](index_t done, index_t n) {
                                         CHECK(done > last_done);
                                         last_done = done;
                                         total = n;
                                         ++calls;
                                       }});
    CHECK(max_abs_diff(tiled, whole) < 1e-5);
    const auto plan = infer::plan_tiles<2>({37, 53}, {{16, 13}, {margin, margin}, {1, 1}});
    CHECK(total == plan.count());
    CHECK(last_done == plan.count());
    CHECK(calls == (plan.count() + 2) / 3);
  }
  // A margin below the receptive radius shows at the tile seams: the test can see a wrong stitch.
  const auto short_margin = infer::predict(net, image, {.tile = {16, 13}, .margin = {1, 1}});
  CHECK(max_abs_diff(short_margin, whole) > 1e-3);
}

TEST_CASE("predict: divisor padding equals a whole-image forward of the hand-padded image, cropped") {
  rng r(12);
  auto net = make_two_convs<2, backend::cpu>(2, 4, 2, r);
  const auto image = random_image<3>({2, 37, 53}, r);
  for (bool reflect : {true, false}) {
    CAPTURE(reflect);
    const auto padded = pad_by_hand(image, 40, 56, reflect);  // divisor 8
    const xt::xtensor<float, 3> expected = xt::view(whole_forward(net, padded), xt::all(), xt::range(0, 37), xt::range(0, 53));
    const auto pad = reflect ? infer::padding::reflect : infer::padding::zero;
    // One tile (the image is smaller than a tile) and many tiles (origins on the divisor grid).
    for (index_t tile : {64, 24}) {
      CAPTURE(tile);
      const auto tiled = infer::predict(net, image, {.tile = {tile, tile}, .margin = {4, 4}, .divisor = {8, 8}, .pad = pad});
      CHECK(max_abs_diff(tiled, expected) < 1e-5);
    }
  }
}

TEST_CASE("predict: depth-2 U-Net (eval-mode BN): exact from margin 23 (its receptive radius), seams below") {
  rng r(13);
  using spec = nn::unet2d<nn::norm::batch, nn::up::transposed, 2>;
  const spec::config cfg{.in_channels = 1, .out_channels = 2, .base_width = 4};
  auto net = spec::make<backend::cpu>(cfg);
  net.build({1, 1, 16, 16}, r);
  // Non-trivial running statistics, so evaluation-mode BN really shifts and scales.
  net.for_each_buffer([&](std::string_view name, nn::tensor_t<backend::cpu>& t) {
    const bool var = name.find("running_var") != std::string_view::npos;
    for (index_t i = 0; i < t.size(); ++i) t[i] = static_cast<float>(var ? r.uniform(0.5, 2.0) : r.uniform(-0.3, 0.3));
  });
  const auto divisor = infer::size_divisor<spec>(cfg);
  CHECK(divisor == infer::extents<2>{4, 4});
  const auto image = random_image<3>({1, 100, 92}, r);  // divisible by 4: the whole forward needs no padding
  const auto whole = whole_forward(net, image);
  const double scale = static_cast<double>(xt::amax(xt::abs(whole))());
  CHECK(infer::receptive_radius<spec>(cfg) == infer::extents<2>{23, 23});
  for (index_t margin : {4, 8, 16, 23, 24}) {
    const auto tiled = infer::predict(net, image, {.tile = {64, 64}, .margin = {margin, margin}, .divisor = divisor, .batch = 4});
    const double err = max_abs_diff(tiled, whole) / scale;
    MESSAGE("depth-2 U-Net, 64-tiles, margin " << margin << ": max |tiled - whole| / max |whole| = " << err);
    if (margin >= 23) CHECK(err < 1e-5);
    else CHECK(err > 1e-4);  // the seams are real below the receptive radius
  }
}

TEST_CASE("predict: flip TTA of equivariant models equals the plain prediction") {
  rng r(14);
  const auto image = random_image<3>({2, 37, 53}, r);
  SUBCASE("1x1 convolution") {
    nn::conv_layer<2, backend::cpu> net(3, {1, 1});
    net.build({1, 2, 8, 8}, r);
    const auto plain = infer::predict(net, image, {.tile = {16, 16}, .margin = {0, 0}});
    for (auto t : {infer::tta::flips, infer::tta::d4})
      CHECK(max_abs_diff(infer::predict(net, image, {.tile = {16, 16}, .margin = {0, 0}, .flips = t}), plain) < 1e-6);
  }
  SUBCASE("3x3 kernels symmetric under the square's symmetries, tiled with non-square tiles") {
    ops::conv<2> same;
    same.pad = {1, 1};
    nn::conv_layer<2, backend::cpu> net(3, {3, 3}, same);
    net.build({1, 2, 8, 8}, r);
    for (index_t oi = 0; oi < 6; ++oi) {  // w = [[a, b, a], [b, c, b], [a, b, a]] per (out, in) pair
      const float a = static_cast<float>(r.uniform(-1, 1)), b = static_cast<float>(r.uniform(-1, 1)),
                  c = static_cast<float>(r.uniform(-1, 1));
      const float k[9] = {a, b, a, b, c, b, a, b, a};
      for (int i = 0; i < 9; ++i) net.weight[oi * 9 + i] = k[i];
    }
    const auto plain = infer::predict(net, image, {.tile = {16, 24}, .margin = {1, 1}});
    CHECK(max_abs_diff(infer::predict(net, image, {.tile = {16, 24}, .margin = {1, 1}, .flips = infer::tta::d4}), plain) < 1e-5);
    CHECK(max_abs_diff(infer::predict(net, image, {.tile = {16, 24}, .margin = {1, 1}, .flips = infer::tta::flips}), plain) < 1e-5);
  }
}

TEST_CASE("predict: flip TTA of a random U-Net is the mean of predictions on flipped images, flipped back") {
  rng r(15);
  using spec = nn::unet2d<nn::norm::batch, nn::up::transposed, 2>;
  const spec::config cfg{.in_channels = 2, .out_channels = 2, .base_width = 4};
  auto net = spec::make<backend::cpu>(cfg);
  net.build({1, 2, 16, 16}, r);
  const auto image = random_image<3>({2, 32, 40}, r);  // one tile: the flipped images get the same layout
  const infer::predict_options<2> plain_opts{.tile = {64, 64}, .margin = {0, 0}, .divisor = infer::size_divisor<spec>(cfg)};
  const auto plain = infer::predict(net, image, plain_opts);

  xt::xtensor<float, 3> mean_flips = xt::zeros<float>(plain.shape()), mean_d4 = xt::zeros<float>(plain.shape());
  for (int g = 0; g < 8; ++g) {
    const bool flip_rows = g & 1, flip_cols = g & 2, transpose = g & 4;
    xt::xtensor<float, 3> x = image;
    if (flip_rows) x = xt::flip(x, 1);
    if (flip_cols) x = xt::flip(x, 2);
    if (transpose) x = xt::transpose(x, {0, 2, 1});
    xt::xtensor<float, 3> y = infer::predict(net, x, plain_opts);
    if (transpose) y = xt::transpose(y, {0, 2, 1});
    if (flip_cols) y = xt::flip(y, 2);
    if (flip_rows) y = xt::flip(y, 1);
    mean_d4 += y / 8.0f;
    if (!transpose) mean_flips += y / 4.0f;
  }
  auto opts = plain_opts;
  opts.flips = infer::tta::flips;
  const auto tta4 = infer::predict(net, image, opts);
  opts.flips = infer::tta::d4;
  const auto tta8 = infer::predict(net, image, opts);
  CHECK(max_abs_diff(tta4, mean_flips) < 1e-5);
  CHECK(max_abs_diff(tta8, mean_d4) < 1e-5);
  CHECK(max_abs_diff(tta4, plain) > 1e-3);  // a random U-Net is not flip-equivariant: TTA changed something
}

TEST_CASE("predict: 2D+t movie (real deep-events float16 TIFF), tiles in time too, equals the whole forward") {
  MICROCOUNT_REQUIRE_DATA();
  const auto movie_file = io::read_tiff(test::data_dir() / "formats/deep-events/event2_images.tif");  // [7, 1, 256, 256]
  REQUIRE(movie_file.frames() == 7);
  const xt::xtensor<float, 4> movie = xt::transpose(movie_file.pixels, {1, 0, 2, 3}) / 600.0f;  // [C=1, T=7, H, W]
  rng r(16);
  auto net = make_two_convs<3, backend::cpu>(1, 4, 2, r);
  const auto whole = whole_forward(net, movie);  // [2, 7, 256, 256]
  const infer::predict_options<3> opts{.tile = {5, 96, 80}, .margin = {2, 2, 2}, .batch = 4};
  const auto plan = infer::plan_tiles<3>({7, 256, 256}, {opts.tile, opts.margin, opts.divisor});
  CHECK(plan.tile[0] == 5);
  CHECK(plan.count() > 3 * 4);  // several tiles along t, y and x
  const auto tiled = infer::predict(net, movie, opts);
  CHECK(max_abs_diff(tiled, whole) < 1e-5);
}

TEST_CASE("predict: real RGB image (mbm H&E 600x600), host tensor input, equals the whole forward") {
  MICROCOUNT_REQUIRE_DATA();
  const auto picture = io::read_tiff(test::data_dir() / "mbm/BM_GRAZ_HE_0001_01_000.tif");  // [1, 3, 600, 600]
  REQUIRE(picture.channels() == 3);
  const xt::xtensor<float, 3> image = xt::view(picture.pixels, 0) / 255.0f;  // [3, 600, 600]
  rng r(17);
  auto net = make_two_convs<2, backend::cpu>(3, 6, 1, r);
  const auto whole = whole_forward(net, image);
  tensor<float, backend::cpu> host({3, 600, 600});
  std::copy(image.begin(), image.end(), host.data());
  const auto tiled = infer::predict<2>(net, host, infer::predict_options<2>{.tile = {128, 128}, .margin = {4, 4}, .batch = 8});
  CHECK(max_abs_diff(tiled, whole) < 1e-5);
}

TEST_CASE("predict: readable errors") {
  rng r(18);
  const auto image = random_image<3>({1, 20, 20}, r);
  SUBCASE("a model that shrinks its input cannot be tiled") {
    nn::conv_layer<2, backend::cpu> valid(1, {3, 3});  // no padding: 16 -> 14
    valid.build({1, 1, 8, 8}, r);
    CHECK_THROWS_WITH_AS(infer::predict(valid, image, {.tile = {16, 16}, .margin = {2, 2}}), doctest::Contains("spatial extents"), error);
  }
  SUBCASE("bad options") {
    nn::conv_layer<2, backend::cpu> net(1, {1, 1});
    net.build({1, 1, 8, 8}, r);
    CHECK_THROWS_WITH_AS(infer::predict(net, image, {.tile = {8, 8}, .margin = {4, 4}}), doctest::Contains("margin"), error);
    CHECK_THROWS_WITH_AS(infer::predict(net, image, {.batch = 0}), doctest::Contains("batch"), error);
  }
  SUBCASE("channel mismatch is named by the network") {
    nn::conv_layer<2, backend::cpu> net(1, {1, 1});
    net.build({1, 3, 8, 8}, r);
    CHECK_THROWS_WITH_AS(infer::predict(net, image), doctest::Contains("channels"), error);
  }
}

TEST_CASE("predict: movie flip TTA flips height and width of every frame, never time") {
  rng r(19);
  auto net = make_two_convs<3, backend::cpu>(1, 3, 2, r);
  const auto movie = random_image<4>({1, 4, 12, 10}, r);  // [C, T, H, W], one tile
  const infer::predict_options<3> plain{.tile = {8, 16, 16}, .margin = {0, 0, 0}};
  xt::xtensor<float, 4> expected = xt::zeros<float>({std::size_t{2}, std::size_t{4}, std::size_t{12}, std::size_t{10}});
  for (int g = 0; g < 4; ++g) {
    xt::xtensor<float, 4> x = movie;
    if (g & 1) x = xt::flip(x, 2);
    if (g & 2) x = xt::flip(x, 3);
    xt::xtensor<float, 4> y = infer::predict(net, x, plain);
    if (g & 2) y = xt::flip(y, 3);
    if (g & 1) y = xt::flip(y, 2);
    expected += y / 4.0f;
  }
  auto opts = plain;
  opts.flips = infer::tta::flips;
  const auto tta = infer::predict(net, movie, opts);
  CHECK(max_abs_diff(tta, expected) < 1e-5);
  CHECK(max_abs_diff(tta, infer::predict(net, movie, plain)) > 1e-3);
}

TEST_CASE("receptive_radius of U-Nets: closed values for 3x3 kernels, 2x2 pooling; time axis of a 3D U-Net") {
  CHECK(infer::receptive_radius<nn::unet2d<nn::norm::batch, nn::up::transposed, 1>>({}) == infer::extents<2>{9, 9});
  CHECK(infer::receptive_radius<nn::unet2d<nn::norm::batch, nn::up::transposed, 3>>({}) == infer::extents<2>{51, 51});
  CHECK(infer::receptive_radius<nn::unet2d<nn::norm::group, nn::up::nearest, 4>>({}) == infer::extents<2>{107, 107});
  // Pooling (1, 2, 2) keeps time: 2 convolutions per block, 2·Depth + 1 blocks, radius 1 each.
  CHECK(infer::receptive_radius<nn::unet3d<nn::norm::batch, nn::up::transposed, 2>>({}) == infer::extents<3>{10, 23, 23});
  CHECK(infer::size_divisor<nn::unet3d<nn::norm::batch, nn::up::transposed, 2>>({}) == infer::extents<3>{1, 4, 4});
}

// Brute force: the farthest column distance at which perturbing one input pixel changes the output at
// (row, col), over the pooling phases col = first … first + phases − 1; distances tried up to `limit`.
template <class Model>
index_t measured_reach(Model& net, const xt::xtensor<float, 3>& image, std::size_t row, std::size_t first, std::size_t phases,
                       index_t limit) {
  const auto base = whole_forward(net, image);
  index_t reach = 0;
  for (std::size_t col = first; col < first + phases; ++col)
    for (index_t d = 1; d <= limit; ++d)
      for (int side : {-1, 1}) {
        auto x = image;
        x(0, row, static_cast<std::size_t>(static_cast<index_t>(col) + side * d)) += 5.0f;
        const auto y = whole_forward(net, x);
        if (xt::amax(xt::abs(xt::view(y, xt::all(), row, col) - xt::view(base, xt::all(), row, col)))() > 1e-6f)
          reach = std::max(reach, d);
      }
  return reach;
}

TEST_CASE("receptive_radius equals the reach measured by perturbing single pixels (transposed and bilinear U-Nets)") {
  rng r(20);
  SUBCASE("depth 2, batch norm, transposed: 23") {
    using spec = nn::unet2d<nn::norm::batch, nn::up::transposed, 2>;
    const spec::config cfg{.base_width = 3};
    auto net = spec::make<backend::cpu>(cfg);
    net.build({1, 1, 16, 16}, r);
    const auto image = random_image<3>({1, 8, 88}, r);
    CHECK(measured_reach(net, image, 4, 40, 4, 26) == infer::receptive_radius<spec>(cfg)[1]);
  }
  SUBCASE("depth 1, no norm, bilinear: one deeper pixel further than transposed") {
    using spec = nn::unet2d<nn::norm::none, nn::up::bilinear, 1>;
    const spec::config cfg{.base_width = 3};
    auto net = spec::make<backend::cpu>(cfg);
    net.build({1, 1, 16, 16}, r);
    const index_t radius = infer::receptive_radius<spec>(cfg)[1];
    CHECK(radius == 10);  // the transposed-conv depth-1 U-Net reaches 9
    const auto image = random_image<3>({1, 8, 48}, r);
    CHECK(measured_reach(net, image, 4, 20, 2, radius + 3) == radius);
    const auto exact = infer::predict(net, image, {.tile = {16, 32}, .margin = {radius, radius}, .divisor = {2, 2}});
    CHECK(max_abs_diff(exact, whole_forward(net, image)) < 1e-5);
  }
}

TEST_CASE("predict_frames and predict_movie take io's [F, C, H, W] layout (real deep-events movie)") {
  MICROCOUNT_REQUIRE_DATA();
  const auto file = io::read_tiff(test::data_dir() / "formats/deep-events/event1_images.tif");  // [5, 1, 256, 256]
  const xt::xtensor<float, 4> frames = file.pixels / 600.0f;
  rng r(21);
  auto net2 = make_two_convs<2, backend::cpu>(1, 3, 2, r);
  index_t last = 0, total = 0;
  const auto per_frame = infer::predict_frames(net2, frames, {.tile = {96, 96}, .margin = {2, 2}, .progress = [&](index_t d, index_t n) {
                                                   CHECK(d > last);
                                                   last = d;
                                                   total = n;
                                                 }});  // [5, 2, 256, 256]
  CHECK(last == total);
  CHECK(total == 5 * infer::plan_tiles<2>({256, 256}, {{96, 96}, {2, 2}, {1, 1}}).count());
  for (std::size_t f = 0; f < 5; ++f) {
    const xt::xtensor<float, 3> frame = xt::view(frames, f);
    const xt::xtensor<float, 3> got = xt::view(per_frame, f);
    CHECK(max_abs_diff(got, whole_forward(net2, frame)) < 1e-5);
  }
  auto net3 = make_two_convs<3, backend::cpu>(1, 3, 2, r);
  const auto movie_map = infer::predict_movie(net3, frames, {.tile = {3, 128, 128}, .margin = {1, 2, 2}});  // [5, 2, 256, 256]
  const xt::xtensor<float, 4> whole = xt::transpose(whole_forward(net3, xt::xtensor<float, 4>(xt::transpose(frames, {1, 0, 2, 3}))), {1, 0, 2, 3});
  CHECK(max_abs_diff(movie_map, whole) > 1e-4);  // margin 1 in time is below the radius 2: seams in time
  const auto exact = infer::predict_movie(net3, frames, {.tile = {5, 128, 128}, .margin = {2, 2, 2}});
  CHECK(max_abs_diff(exact, whole) < 1e-5);
}
