// nn::mode::inspection on a whole U-Net (fused conv_bn_relu units, transposed-conv upsampling, skips):
// forward = evaluation forward, backward = dx of the evaluation-mode network (finite differences in
// double), parameter gradients untouched; cpu equals reference in inspection mode.
#include <doctest/doctest.h>

#include <cmath>

#include "inspection_check.hpp"
#include "microcount/backends/cpu.hpp"
#include "microcount/nn/models/unet.hpp"

using namespace microcount;
using f64 = test::f64;
using small_unet = nn::unet2d<nn::norm::batch, nn::up::transposed, 2>;

TEST_CASE("inspection: a whole small U-Net gives dx of its evaluation-mode function") {
  rng r(411);
  auto net = small_unet::make<f64>({.in_channels = 2, .out_channels = 2, .base_width = 2});
  const shape in{2, 2, 8, 12};
  net.build(in, r);
  // Non-trivial BatchNorm state: the evaluation function then differs from the training one.
  net.for_each_buffer([&](std::string_view name, tensor<double, f64>& t) {
    for (index_t i = 0; i < t.size(); ++i) t[i] = name.ends_with("running_var") ? r.uniform(0.5, 1.5) : r.uniform(-0.3, 0.3);
  });
  auto x = test::random_tensor(in, r);
  auto res = test::inspection_check(net, x, r, 1e-6, 1e-5, 96);
  CHECK(res.worst < 1e-5);
  // The training-mode function is another one: its dx differs (BatchNorm with batch statistics).
  net.set_mode(nn::mode::training);
  net.forward(x);
  auto dx_train = net.backward(res.g);
  double differs = 0;
  for (index_t i = 0; i < dx_train.size(); ++i) differs = std::max(differs, std::abs(dx_train[i] - res.dx[i]));
  CHECK(differs > 1e-3);
}

TEST_CASE("inspection: the U-Net on cpu equals the reference backend, forward and dx") {
  rng r(412);
  auto on_cpu = small_unet::make<backend::cpu>({.base_width = 8});
  auto on_ref = small_unet::make<backend::reference>({.base_width = 8});
  const shape in{1, 1, 20, 28};
  on_cpu.build(in, r);
  on_ref.build(in, r);
  std::vector<float*> a, b;
  std::vector<index_t> n;
  on_cpu.for_each_parameter([&](const auto& p) { a.push_back(p.value->data()), n.push_back(p.value->size()); });
  on_cpu.for_each_buffer([&](std::string_view, auto& t) { a.push_back(t.data()), n.push_back(t.size()); });
  on_ref.for_each_parameter([&](const auto& p) { b.push_back(p.value->data()); });
  on_ref.for_each_buffer([&](std::string_view, auto& t) { b.push_back(t.data()); });
  REQUIRE(a.size() == b.size());
  for (std::size_t k = 0; k < a.size(); ++k)
    for (index_t i = 0; i < n[k]; ++i) a[k][i] = b[k][i] = static_cast<float>(r.uniform(0.3, 1.2) * (k % 2 ? 1 : 0.5));
  tensor<float, backend::cpu> xc(in);
  tensor<float, backend::reference> xr(in);
  for (index_t i = 0; i < xc.size(); ++i) xc[i] = xr[i] = static_cast<float>(r.normal());
  on_cpu.set_mode(nn::mode::inspection);
  on_ref.set_mode(nn::mode::inspection);
  auto yc = on_cpu.forward(xc);
  auto yr = on_ref.forward(xr);
  double scale = 0, worst = 0;
  for (index_t i = 0; i < yc.size(); ++i) {
    scale = std::max(scale, double(std::abs(yr[i])));
    worst = std::max(worst, double(std::abs(yc[i] - yr[i])));
  }
  CHECK(worst <= 1e-4 * std::max(1.0, scale));
  tensor<float, backend::cpu> gc(yc.shape());
  tensor<float, backend::reference> gr(yc.shape());
  for (index_t i = 0; i < gc.size(); ++i) gc[i] = gr[i] = static_cast<float>(r.uniform(-1, 1));
  auto dc = on_cpu.backward(gc);
  auto dr = on_ref.backward(gr);
  scale = 0, worst = 0;
  for (index_t i = 0; i < dc.size(); ++i) {
    scale = std::max(scale, double(std::abs(dr[i])));
    worst = std::max(worst, double(std::abs(dc[i] - dr[i])));
  }
  CHECK(scale > 0);
  CHECK(worst <= 1e-4 * std::max(1.0, scale));
}
