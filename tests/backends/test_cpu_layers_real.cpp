// The layer kernels on real microscopy (../shared/data): 8-bit fluorescence cells (vgg-cells), RGB H&E
// (mbm) and a float16 TIRF movie (deep-events) — cpu against reference, and exact identities that must hold
// whatever the data: pooling undoes nearest upsampling, batch norm standardises, averages are averages.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "microcount/backends/cpu.hpp"
#include "microcount/io/tiff.hpp"
#include "microcount/nn/layers/activation.hpp"
#include "microcount/nn/layers/norm.hpp"
#include "microcount/nn/layers/pool.hpp"
#include "microcount/nn/layers/upsample.hpp"
#include "backend_compare.hpp"
#include "test_support.hpp"

using namespace microcount;

namespace {
using ref = backend::reference;
using cpu = backend::cpu;

// Images [F, C, H, W] stacked as a batch [N·F, C, H, W] (or, as_movie, [N, C, F, H, W]).
template <class B>
tensor<float, B> load(const std::vector<std::string>& files, bool as_movie = false) {
  std::vector<io::image> images;
  for (const auto& f : files) images.push_back(io::read_tiff(test::data_dir() / f));
  const auto& first = images.front();
  const auto f = index_t(first.frames()), c = index_t(first.channels()), h = index_t(first.height()),
             w = index_t(first.width());
  const shape s = as_movie ? shape{index_t(images.size()), c, f, h, w} : shape{index_t(images.size()) * f, c, h, w};
  tensor<float, B> t(s);
  index_t at = 0;
  for (const auto& im : images) {
    REQUIRE(im.pixels.shape() == first.pixels.shape());
    if (!as_movie) {
      for (float v : im.pixels) t[at++] = v;  // [F, C, H, W] row-major is [N·F, C, H, W]
      continue;
    }
    for (index_t ch = 0; ch < c; ++ch)  // [F, C, H, W] -> [C, F, H, W]
      for (index_t fr = 0; fr < f; ++fr)
        for (index_t i = 0; i < h * w; ++i) t[at++] = im.pixels(fr, ch, i / w, i % w);
  }
  return t;
}

using test::worst;
}  // namespace

TEST_CASE("real cells: batch norm on 8-bit fluorescence (cpu = reference, standardised per channel)") {
  MICROCOUNT_REQUIRE_DATA();
  const std::vector<std::string> files{"vgg-cells/image_001.tif", "vgg-cells/image_002.tif", "vgg-cells/image_101.tif"};
  auto xr = load<ref>(files);
  auto xc = load<cpu>(files);
  REQUIRE(xc.shape() == shape{3, 1, 256, 256});
  rng r(1);
  nn::batch_norm2d<ref> bn_r;
  nn::batch_norm2d<cpu> bn_c;
  bn_r.build(xr.shape(), r);
  bn_c.build(xc.shape(), r);
  auto yr = bn_r.forward(xr);
  auto yc = bn_c.forward(xc);
  CHECK(worst(yr, yc) < 1e-5);
  double sum = 0, squares = 0, mean_x = 0;
  for (index_t i = 0; i < yc.size(); ++i) {
    sum += yc[i];
    squares += double(yc[i]) * yc[i];
    mean_x += xr[i] / double(xr.size());
  }
  CHECK(std::abs(sum / double(yc.size())) < 1e-5);
  CHECK(squares / double(yc.size()) == doctest::Approx(1.0).epsilon(1e-4));
  CHECK(bn_c.running_mean[0] == doctest::Approx(0.1 * mean_x).epsilon(1e-5));
}

TEST_CASE("real cells: max pooling undoes nearest upsampling; global average is the image mean") {
  MICROCOUNT_REQUIRE_DATA();
  auto x = load<cpu>({"vgg-cells/image_150.tif", "vgg-cells/image_151.tif"});
  rng r(2);
  nn::upsample2d<cpu> up;  // nearest ×2
  nn::max_pool2d<cpu> pool;
  up.build(x.shape(), r);
  pool.build(up.forward(x).shape(), r);
  auto back = pool.forward(up.forward(x));
  CHECK(worst(x, back) == 0);
  nn::global_avg_pool<cpu> gap;
  gap.build(x.shape(), r);
  auto m = gap.forward(x);
  for (index_t n = 0; n < 2; ++n) {
    double mean = 0;
    for (index_t i = 0; i < 256 * 256; ++i) mean += x[n * 256 * 256 + i];
    CHECK(m[n] == doctest::Approx(mean / (256 * 256)).epsilon(1e-6));
  }
  // Each window of the upsampled image holds four copies of one pixel: the gradient goes to exactly one
  // of them (the first), so the total gradient is conserved.
  auto y = pool.forward(up.forward(x));
  tensor<float, cpu> dy(y.shape());
  for (index_t i = 0; i < dy.size(); ++i) dy[i] = 1.0f;
  auto dx = pool.backward(dy);
  double total = 0;
  for (index_t i = 0; i < dx.size(); ++i) total += dx[i];
  CHECK(total == double(dy.size()));
}

TEST_CASE("real H&E: softmax over the RGB channels and group norm (cpu = reference)") {
  MICROCOUNT_REQUIRE_DATA();
  auto xr = load<ref>({"mbm/BM_GRAZ_HE_0001_01_000.tif"});
  auto xc = load<cpu>({"mbm/BM_GRAZ_HE_0001_01_000.tif"});
  REQUIRE(xc.shape() == shape{1, 3, 600, 600});
  for (index_t i = 0; i < xc.size(); ++i) xr[i] = xc[i] = xc[i] / 16.0f;  // logits up to ~16
  rng r(3);
  nn::softmax<ref> sr;
  nn::softmax<cpu> sc;
  sr.build(xr.shape(), r);
  sc.build(xc.shape(), r);
  auto pr = sr.forward(xr);
  auto pc = sc.forward(xc);
  CHECK(worst(pr, pc) < 1e-6);
  for (index_t j = 0; j < 600 * 600; j += 997)
    CHECK(pc[j] + pc[360000 + j] + pc[720000 + j] == doctest::Approx(1.0).epsilon(1e-6));
  nn::group_norm2d<ref> gr(3);
  nn::group_norm2d<cpu> gc(3);
  gr.build(xr.shape(), r);
  gc.build(xc.shape(), r);
  CHECK(worst(gr.forward(xr), gc.forward(xc)) < 1e-5);
}

TEST_CASE("real movie: per-frame and trilinear upsampling, (1,2,2) pooling of a float16 TIRF movie") {
  MICROCOUNT_REQUIRE_DATA();
  auto xr = load<ref>({"formats/deep-events/event1_images.tif"}, true);
  auto xc = load<cpu>({"formats/deep-events/event1_images.tif"}, true);
  REQUIRE(xc.shape() == shape{1, 1, 5, 256, 256});
  rng r(4);
  for (const std::array<int, 3> scale : {std::array<int, 3>{1, 2, 2}, std::array<int, 3>{2, 2, 2}}) {
    nn::upsample3d<ref> ur(scale, ops::upsample_mode::linear);
    nn::upsample3d<cpu> uc(scale, ops::upsample_mode::linear);
    ur.build(xr.shape(), r);
    uc.build(xc.shape(), r);
    auto yr = ur.forward(xr);
    auto yc = uc.forward(xc);
    CHECK(worst(yr, yc) < 1e-6);
    // Interpolation never leaves the range of the data.
    float lo = xc[0], hi = xc[0];
    for (index_t i = 0; i < xc.size(); ++i) lo = std::min(lo, xc[i]), hi = std::max(hi, xc[i]);
    index_t outside = 0;
    for (index_t i = 0; i < yc.size(); ++i) outside += yc[i] < lo || yc[i] > hi;
    CHECK(outside == 0);
  }
  nn::max_pool3d<cpu> pool({1, 2, 2});
  nn::upsample3d<cpu> up({1, 2, 2});
  pool.build({1, 1, 5, 512, 512}, r);
  up.build(xc.shape(), r);
  CHECK(worst(xc, pool.forward(up.forward(xc))) == 0);
}
