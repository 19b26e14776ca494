// The pipeline kernels of backends/cuda/pipeline.cuh (density targets, peaks, tiles) against their host
// functions, the oracle: random points and maps with odd sizes, borders, several classes and sigmas,
// plateaus and ties, tile sizes that do not divide the image; and the real vgg-cells annotations.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include <xtensor/xview.hpp>

#include "cuda_test_support.hpp"
#include "microcount/backends/cuda/pipeline.cuh"
#include "microcount/infer/predict.hpp"
#include "microcount/io/annotation_files.hpp"
#include "microcount/io/tiff.hpp"
#include "microcount/post/peaks.hpp"
#include "microcount/target/gaussian.hpp"
#include "test_support.hpp"

using namespace cuda_test;
namespace cu = microcount::cuda;

namespace {

std::vector<float> download(const cu::device_tensor& d) { return d.to_vector(); }

// Points with x, y in [lo, W − 1 − lo] … including the edges ±0.5 and (when lo < −0.5) points outside.
std::vector<io::point> random_points(rng& g, std::size_t n, std::size_t h, std::size_t w, int classes, double lo = -0.5) {
  std::vector<io::point> pts;
  for (std::size_t i = 0; i < n; ++i) {
    io::point p;
    p.x = g.uniform(lo, static_cast<double>(w) - 1 - lo);
    p.y = g.uniform(lo, static_cast<double>(h) - 1 - lo);
    if (i % 7 == 0) p.x = (i % 2) ? -0.5 : static_cast<double>(w) - 0.5;  // exactly on the edges
    if (i % 11 == 0) p.y = std::round(p.y);                                // on a pixel centre
    p.label = static_cast<int>(g.below(static_cast<std::uint64_t>(classes)));
    pts.push_back(p);
  }
  return pts;
}

// Per pixel |host − device| <= 1e-5 × |host| (+ a denormal floor): the exps differ by an ulp or two.
void check_close(const float* host, const std::vector<float>& device, std::size_t n) {
  REQUIRE(device.size() == n);
  double worst_rel = 0;
  std::size_t bad = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double a = host[i], b = device[i];
    const double diff = std::abs(a - b);
    if (diff > 1e-5 * std::abs(a) + 1e-30) ++bad;
    if (a != 0) worst_rel = std::max(worst_rel, diff / std::abs(a));
  }
  CHECK(bad == 0);
  CHECK(worst_rel <= 1e-5);
}

double sum_of(const std::vector<float>& v, std::size_t from, std::size_t n) {
  double s = 0;
  for (std::size_t i = from; i < from + n; ++i) s += v[i];
  return s;
}

void check_same_peaks(const std::vector<post::scored_point>& want, const std::vector<post::scored_point>& got) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    INFO("peak " << i);
    CHECK(got[i].point.x == want[i].point.x);
    CHECK(got[i].point.y == want[i].point.y);
    CHECK(got[i].point.label == want[i].point.label);
    CHECK(got[i].point.frame == want[i].point.frame);
    CHECK(got[i].score == want[i].score);
  }
}

// A smooth random map [C, H, W] with bumps, noise, and (quantised) plateaus and ties.
xt::xtensor<float, 3> random_map(rng& g, std::size_t c, std::size_t h, std::size_t w, int bumps, float step) {
  auto m = xt::xtensor<float, 3>::from_shape({c, h, w});
  for (std::size_t k = 0; k < c; ++k) {
    std::vector<std::array<double, 4>> b;
    for (int i = 0; i < bumps; ++i) b.push_back({g.uniform(-2, double(w) + 1), g.uniform(-2, double(h) + 1), g.uniform(0.8, 3), g.uniform(0.2, 2)});
    for (std::size_t y = 0; y < h; ++y)
      for (std::size_t x = 0; x < w; ++x) {
        double v = 0.02 * g.uniform(-1, 1);
        for (const auto& [bx, by, s, a] : b) v += a * std::exp(-((x - bx) * (x - bx) + (y - by) * (y - by)) / (2 * s * s));
        float f = static_cast<float>(v);
        if (step > 0) f = std::round(f / step) * step;  // plateaus
        m(k, y, x) = f;
      }
  }
  return m;
}

cu::device_tensor to_device(const float* data, const shape& s) {
  cu::device_tensor d(s);
  d.upload(data);
  return d;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
TEST_CASE("cuda density: unit-mass and peak-1 Gaussians equal target::gaussian_density per pixel") {
  rng g(5);
  struct shape_case {
    std::size_t h, w;
    double sigma, truncate;
    int classes;
    std::size_t points;
  };
  const shape_case cases[] = {{37, 29, 1.0, 4.0, 3, 40}, {23, 41, 2.3, 4.0, 2, 25}, {33, 35, 5.0, 2.0, 1, 12},
                              {17, 19, 3.7, 1.0, 4, 30}, {1, 9, 1.2, 4.0, 1, 3}};
  const target::normalization norms[] = {target::normalization::unit_mass, target::normalization::peak_one,
                                         target::normalization::peak_one};
  for (const auto& c : cases)
    for (int variant = 0; variant < 3; ++variant) {
      CAPTURE(c.h);
      CAPTURE(c.w);
      CAPTURE(c.sigma);
      CAPTURE(variant);
      const auto pts = random_points(g, c.points, c.h, c.w, c.classes);
      target::gaussian_options o;
      o.sigma = c.sigma;
      o.truncate = c.truncate;
      o.classes = static_cast<std::size_t>(c.classes);
      o.norm = norms[variant];
      o.combine = variant == 2 ? target::overlap::sum : target::overlap::max;
      const auto want = target::gaussian_density(pts, c.h, c.w, o);  // [C, H, W]
      const auto got = cu::gaussian_density(pts, c.h, c.w, o);       // [C, H, W]
      REQUIRE(got.shape() == shape{c.classes, index_t(c.h), index_t(c.w)});
      const auto values = download(got);
      check_close(want.data(), values, want.size());
      if (variant == 0)
        for (int k = 0; k < c.classes; ++k) {
          const auto n = std::count_if(pts.begin(), pts.end(), [&](const io::point& p) { return p.label == k; });
          CHECK(sum_of(values, std::size_t(k) * c.h * c.w, c.h * c.w) == doctest::Approx(double(n)).epsilon(1e-5));
        }
    }
}

TEST_CASE("cuda density: a batch with scale, skipped outside points and adaptive sigma equals the host maps × scale") {
  rng g(11);
  const std::size_t h = 45, w = 38, classes = 3;
  std::vector<std::vector<io::point>> lists = {random_points(g, 60, h, w, 3, -4.0), random_points(g, 0, h, w, 3),
                                               random_points(g, 35, h, w, 2, -2.0)};
  lists[1].push_back({w - 0.5, h - 0.5, 2, -1, -1});  // one point in the last pixel's corner
  for (bool adaptive : {false, true}) {
    CAPTURE(adaptive);
    target::gaussian_options o;
    o.sigma = 2.0;
    o.classes = classes;
    o.skip_outside = true;
    if (adaptive) o.adaptive = target::adaptive_sigma{.k = 3, .beta = 0.3, .min_sigma = 1.0, .max_sigma = 4.0};
    const float scale = 100.0f;
    std::vector<std::span<const io::point>> spans(lists.begin(), lists.end());
    const auto got = cu::gaussian_density_batch(spans, h, w, o, scale);  // [N, C, H, W]
    REQUIRE(got.shape() == shape{3, index_t(classes), index_t(h), index_t(w)});
    const auto values = download(got);
    std::vector<float> want;
    for (const auto& pts : lists) {
      const auto d = target::gaussian_density(pts, h, w, o);
      for (float v : d) want.push_back(v * scale);  // what data::make_batch stores
    }
    check_close(want.data(), values, want.size());
    for (std::size_t n = 0; n < lists.size(); ++n) {
      const auto inside = std::count_if(lists[n].begin(), lists[n].end(), [&](const io::point& p) {
        return p.x >= -0.5 && p.x <= double(w) - 0.5 && p.y >= -0.5 && p.y <= double(h) - 0.5;
      });
      CHECK(sum_of(values, n * classes * h * w, classes * h * w) == doctest::Approx(scale * double(inside)).epsilon(1e-5));
    }
  }
}

TEST_CASE("cuda density: a movie [C, T, H, W] equals target::gaussian_density_movie, fixed and adaptive sigma") {
  rng g(17);
  const std::size_t frames = 4, h = 21, w = 26;
  auto pts = random_points(g, 50, h, w, 2, -1.5);
  for (auto& p : pts) p.frame = static_cast<int>(g.below(frames + 1));  // frame 4 is past the movie: skipped
  for (bool adaptive : {false, true}) {
    CAPTURE(adaptive);
    target::gaussian_options o;
    o.sigma = 1.7;
    o.skip_outside = true;
    if (adaptive) o.adaptive = target::adaptive_sigma{};
    const auto want = target::gaussian_density_movie(pts, frames, h, w, o);  // [C, T, H, W]
    const auto got = cu::gaussian_density_movie(pts, frames, h, w, o, 1.0f);
    REQUIRE(got.shape() == shape{2, index_t(frames), index_t(h), index_t(w)});
    check_close(want.data(), download(got), want.size());
  }
  // Without skip_outside the first bad point is an error, with the host's message.
  std::string host_message, device_message;
  try {
    (void)target::gaussian_density_movie(pts, frames, h, w);
  } catch (const error& e) {
    host_message = e.what();
  }
  try {
    (void)cu::gaussian_density_movie(pts, frames, h, w);
  } catch (const error& e) {
    device_message = e.what();
  }
  CHECK(host_message.find("gaussian_density_movie: point") != std::string::npos);
  CHECK(device_message == host_message);
}

TEST_CASE("cuda density: bad points and options fail as on the host") {
  const std::vector<io::point> outside = {{3, 3, 0, -1, -1}, {30, 2, 0, -1, -1}};
  CHECK_THROWS_WITH_AS(cu::gaussian_density(outside, 10, 20), doctest::Contains("outside the 20x10 image"), error);
  const std::vector<io::point> nan = {{NAN, 1, 0, -1, -1}};
  CHECK_THROWS_WITH_AS(cu::gaussian_density(nan, 10, 20), doctest::Contains("non-finite"), error);
  target::gaussian_options o;
  o.classes = 1;
  const std::vector<io::point> label = {{1, 1, 2, -1, -1}};
  CHECK_THROWS_WITH_AS(cu::gaussian_density(label, 10, 20, o), doctest::Contains("label 2"), error);
  o.sigma = 0.01;
  CHECK_THROWS_WITH_AS(cu::gaussian_density(outside, 10, 20, o), doctest::Contains("sigma must be"), error);
  // No points at all: zero maps.
  target::gaussian_options two;
  two.classes = 2;
  const auto empty = download(cu::gaussian_density(std::vector<io::point>{}, 5, 7, two));
  CHECK(empty.size() == 70);
  CHECK(std::all_of(empty.begin(), empty.end(), [](float v) { return v == 0.0f; }));
}

// ---------------------------------------------------------------------------------------------------
TEST_CASE("cuda peaks: the same points, scores and order as post::find_peaks_per_class") {
  rng g(23);
  struct peak_case {
    std::size_t c, h, w;
    int bumps;
    float step;
  };
  const peak_case maps[] = {{3, 37, 29, 6, 0.0f}, {2, 31, 45, 8, 0.25f}, {1, 20, 17, 30, 0.5f}, {2, 3, 50, 4, 0.0f}};
  int configurations = 0;
  for (const auto& m : maps) {
    const auto host = random_map(g, m.c, m.h, m.w, m.bumps, m.step);  // [C, H, W]
    const auto dev = to_device(host.data(), {index_t(m.c), index_t(m.h), index_t(m.w)});
    for (int d : {1, 4})
      for (int variant = 0; variant < 4; ++variant) {
        post::peak_options o;
        o.min_distance = d;
        o.refine = static_cast<post::subpixel>(variant);
        o.exclude_border = variant == 1 ? -1 : (variant == 2 ? 2 : 0);
        if (variant == 0) o.threshold_abs = 0.3f;
        if (variant == 1) o.threshold_rel = 0.2f;
        if (variant == 3) {
          o.norm = post::spacing_norm::euclidean;
          o.max_peaks = 3;
        }
        CAPTURE(m.h);
        CAPTURE(m.w);
        CAPTURE(d);
        CAPTURE(variant);
        const auto want = post::find_peaks_per_class(host, o);
        check_same_peaks(want, cu::find_peaks_per_class(dev, o));
        ++configurations;
      }
  }
  CHECK(configurations == 32);
}

TEST_CASE("cuda peaks: plateaus, ties, a flat map, a window wider than the shared tile, and bad maps") {
  // A plateau of equal values is one peak at its centroid; two equal separate peaks keep raster order.
  auto m = xt::xtensor<float, 2>::from_shape({15, 21});
  m.fill(0.0f);
  for (int y = 4; y <= 6; ++y)
    for (int x = 3; x <= 8; ++x) m(y, x) = 2.0f;
  m(10, 15) = 2.0f;
  m(2, 17) = 2.0f;
  m(12, 2) = 1.5f;
  const auto dev = to_device(m.data(), {15, 21});
  for (int d : {1, 3}) {
    post::peak_options o;
    o.min_distance = d;
    o.exclude_border = 0;
    const auto want = post::find_peaks(m, o, 4);
    CHECK(want.size() >= 3);
    check_same_peaks(want, cu::find_peaks(dev, o, 4));
  }
  // Flat map: every pixel is a candidate when the threshold is below it (capacity grows to hold them).
  auto flat = xt::xtensor<float, 3>::from_shape({1, 40, 52});
  flat.fill(1.0f);
  post::peak_options low;
  low.threshold_abs = 0.0f;
  low.exclude_border = 0;
  check_same_peaks(post::find_peaks_per_class(flat, low), cu::find_peaks_per_class(to_device(flat.data(), {1, 40, 52}), low));
  // d = 45: the (16 + 90)² window does not fit shared memory; the kernel reads the map directly.
  rng g(3);
  const auto wide = random_map(g, 1, 60, 70, 12, 0.0f);
  post::peak_options far;
  far.min_distance = 45;
  far.exclude_border = 0;
  check_same_peaks(post::find_peaks_per_class(wide, far), cu::find_peaks_per_class(to_device(wide.data(), {1, 60, 70}), far));
  // Non-finite values and bad options: the host's errors.
  auto bad = m;
  bad(7, 9) = NAN;
  CHECK_THROWS_WITH_AS(cu::find_peaks(to_device(bad.data(), {15, 21})), doctest::Contains("non-finite value at index 156"), error);
  post::peak_options zero;
  zero.min_distance = 0;
  CHECK_THROWS_WITH_AS(cu::find_peaks(dev, zero), doctest::Contains("min_distance must be >= 1"), error);
}

TEST_CASE("cuda peaks: a batch [N, K, H, W] gives each image's find_peaks_per_class") {
  rng g(41);
  const auto host = random_map(g, 6, 27, 33, 7, 0.125f);  // [N·K, H, W], N = 3, K = 2
  const auto dev = to_device(host.data(), {3, 2, 27, 33});
  post::peak_options o;
  o.min_distance = 2;
  o.threshold_abs = 0.25f;
  const auto got = cu::find_peaks_per_class_batch(dev, o);
  REQUIRE(got.size() == 3);
  for (std::size_t n = 0; n < 3; ++n) {
    const xt::xtensor<float, 3> image = xt::view(host, xt::range(2 * n, 2 * n + 2), xt::all(), xt::all());
    check_same_peaks(post::find_peaks_per_class(image, o), got[n]);
  }
}

TEST_CASE("cuda peaks: per-frame peaks of the real deep-events ground truth equal post::find_peaks_per_frame") {
  MICROCOUNT_REQUIRE_DATA();
  const auto img = io::read_tiff(test::data_dir() / "formats" / "deep-events" / "event1_ground_truth.tif");
  REQUIRE(img.pixels.shape() == std::array<std::size_t, 4>{5, 1, 256, 256});  // float16 frames
  // Frames 0 and 2 (the emulator is slow): three of skimage's four peaks.
  auto movie = xt::xtensor<float, 3>::from_shape({2, 256, 256});
  std::copy_n(img.pixels.begin(), 65536, movie.begin());
  std::copy_n(img.pixels.begin() + 2 * 65536, 65536, movie.begin() + 65536);
  const auto dev = to_device(movie.data(), {2, 256, 256});
  post::peak_options o;
  o.min_distance = 3;
  o.threshold_abs = 10.0f;
  const auto want = post::find_peaks_per_frame(movie, o, 1);
  CHECK(want.size() >= 3);  // skimage: (72, 222) and (127, 128) on frame 0, (128, 128) on frame 2
  check_same_peaks(want, cu::find_peaks_per_frame(dev, o, 1));
}

// ---------------------------------------------------------------------------------------------------
TEST_CASE("cuda tiles: gathered tiles and stitched outputs are bit-equal to the host's, 2D and 3D") {
  rng g(7);
  // 2D: image [3, 37, 53], tiles that do not divide it, divisors, both paddings, an image smaller than a tile.
  struct plan_case {
    infer::extents<2> image, tile, margin, divisor;
  };
  const plan_case cases[] = {{{37, 53}, {16, 24}, {3, 4}, {4, 8}}, {{37, 53}, {20, 20}, {2, 2}, {1, 1}},
                             {{9, 11}, {32, 32}, {4, 4}, {8, 8}}, {{40, 8}, {12, 8}, {1, 0}, {2, 2}}};
  for (const auto& c : cases)
    for (auto pad : {infer::padding::reflect, infer::padding::zero}) {
      const index_t channels = 3, out_channels = 2;
      const auto plan = infer::plan_tiles<2>(c.image, {c.tile, c.margin, c.divisor});
      const auto image = random_tensor({channels, c.image[0], c.image[1]}, g);  // [C, H, W]
      const auto dev_image = cuda_test::to_device(image);
      const index_t per_tile = plan.tile[0] * plan.tile[1];
      CAPTURE(plan.count());
      // All tiles in two uneven batches, as predict runs them.
      const index_t first_batch = (plan.count() + 1) / 2;
      cu::device_tensor stitched({out_channels, c.image[0], c.image[1]});  // [K, H, W]
      std::vector<float> want_stitched(static_cast<std::size_t>(out_channels * c.image[0] * c.image[1]), NAN);
      for (auto [first, count] : {std::pair{index_t(0), first_batch}, std::pair{first_batch, plan.count() - first_batch}}) {
        if (count == 0) continue;
        const auto tiles = cu::gather_tiles<2>(dev_image, plan, first, count, pad);  // [count, C, th, tw]
        REQUIRE(tiles.shape() == shape{count, channels, plan.tile[0], plan.tile[1]});
        const auto got = download(tiles);
        std::vector<float> want(got.size());
        for (index_t i = 0; i < count; ++i)
          infer::detail::gather_tile<2>(image.data(), channels, c.image, plan.tiles[first + i].origin, plan.tile, pad,
                                        want.data() + i * channels * per_tile);
        CHECK(got == want);
        // A stand-in network output [count, K, th, tw]: values that depend on the tile, channel and pixel.
        ref_t outputs({count, out_channels, plan.tile[0], plan.tile[1]});
        for (index_t i = 0; i < outputs.size(); ++i) outputs[i] = static_cast<float>(i % 977) * 0.5f + float(first);
        cu::stitch_tiles<2>(cuda_test::to_device(outputs), plan, first, stitched);
        for (index_t i = 0; i < count; ++i)
          infer::detail::scatter_tile<2>(outputs.data() + i * out_channels * per_tile, out_channels, plan.tile,
                                         plan.tiles[first + i], c.image, want_stitched.data());
      }
      CHECK(download(stitched) == want_stitched);  // every pixel written once (NaN would differ)
      // Identity network: stitching the gathered tiles gives the image back.
      const auto all = cu::gather_tiles<2>(dev_image, plan, 0, plan.count(), pad);
      cu::device_tensor back({channels, c.image[0], c.image[1]});
      cu::stitch_tiles<2>(all, plan, 0, back);
      CHECK(worst(image, back) == 0.0);
    }
  // 3D: movie [2, 7, 19, 23] with tiles in time too.
  const infer::extents<3> ext{7, 19, 23};
  const auto plan = infer::plan_tiles<3>(ext, {{4, 8, 16}, {1, 2, 3}, {1, 2, 4}});
  const auto movie = random_tensor({2, 7, 19, 23}, g);  // [C, T, H, W]
  const auto tiles = cu::gather_tiles<3>(cuda_test::to_device(movie), plan, 0, plan.count(), infer::padding::reflect);
  const index_t per_tile = plan.tile[0] * plan.tile[1] * plan.tile[2];
  std::vector<float> want(static_cast<std::size_t>(plan.count() * 2 * per_tile));
  for (index_t i = 0; i < plan.count(); ++i)
    infer::detail::gather_tile<3>(movie.data(), 2, ext, plan.tiles[i].origin, plan.tile, infer::padding::reflect,
                                  want.data() + i * 2 * per_tile);
  CHECK(download(tiles) == want);
  cu::device_tensor back({2, 7, 19, 23});
  cu::stitch_tiles<3>(tiles, plan, 0, back);
  CHECK(worst(movie, back) == 0.0);
  // Mismatched shapes are errors, not out-of-bounds writes.
  cu::device_tensor wrong({2, 7, 19, 22});
  CHECK_THROWS_WITH_AS(cu::stitch_tiles<3>(tiles, plan, 0, wrong), doctest::Contains("plan's extents"), error);
  CHECK_THROWS_WITH_AS(cu::gather_tiles<3>(cuda_test::to_device(movie), plan, 1, plan.count(), infer::padding::zero),
                       doctest::Contains("not in the plan"), error);
}

TEST_CASE("cuda tiles: the 8 test-time symmetries and their inverse accumulation are bit-equal to the host's") {
  rng g(13);
  const auto x = random_tensor({2, 3, 5, 7}, g);  // [n, C, rows, cols], rows != cols so transposes show
  const auto dev_x = cuda_test::to_device(x);
  ref_t acc_host = ref_t::zeros({2, 3, 5, 7});
  std::vector<float> acc_vec(static_cast<std::size_t>(acc_host.size()), 0.0f);
  cu::device_tensor acc_dev({2, 3, 5, 7});
  acc_dev.fill_zero();
  const auto all = infer::symmetries(infer::tta::d4);
  REQUIRE(all.size() == 8);
  for (const auto& sym : all) {
    CAPTURE(sym.flip_rows);
    CAPTURE(sym.flip_cols);
    CAPTURE(sym.transpose);
    const auto want = infer::detail::apply_symmetry<ref>(x, sym);  // [2, 3, 5 or 7, 7 or 5]
    const auto got = cu::apply_symmetry(dev_x, sym);
    REQUIRE(got.shape() == want.shape());
    CHECK(worst(want, got) == 0.0);
    // A stand-in model output for g(x): a value-dependent map, then both sides undo the symmetry.
    ref_t y(want.shape());
    for (index_t i = 0; i < y.size(); ++i) y[i] = want[i] * 3.0f + static_cast<float>(i % 5);
    infer::detail::accumulate_inverse<ref>(y, sym, acc_vec, 5, 7);
    cu::accumulate_inverse(cuda_test::to_device(y), sym, acc_dev);
    CHECK(download(acc_dev) == acc_vec);
  }
  // Undoing each symmetry of x itself gives 8·x exactly (small integers times 8 are exact in float).
  cu::device_tensor sum({2, 3, 5, 7});
  sum.fill_zero();
  for (const auto& sym : all) cu::accumulate_inverse(cu::apply_symmetry(dev_x, sym), sym, sum);
  const auto back = download(sum);
  for (index_t i = 0; i < x.size(); ++i) CHECK(back[static_cast<std::size_t>(i)] == doctest::Approx(8.0 * x[i]).epsilon(1e-6));
  cu::device_tensor wrong({2, 3, 7, 7});
  CHECK_THROWS_WITH_AS(cu::accumulate_inverse(cu::apply_symmetry(dev_x, all[4]), all[4], wrong), doctest::Contains("does not match"), error);
}

// ---------------------------------------------------------------------------------------------------
TEST_CASE("cuda pipeline on real vgg-cells annotations: densities and their peaks equal the host's") {
  MICROCOUNT_REQUIRE_DATA();
  const auto ann = io::read_annotations(test::data_dir() / "vgg-cells" / "annotations.xml");
  REQUIRE(ann.images.size() == 200);
  // Two images in one batch (256 × 256, 74–317 cells each, some on the image edge).
  std::vector<std::span<const io::point>> spans;
  for (std::size_t i : {57u, 143u}) spans.emplace_back(ann.images[i].points);
  target::gaussian_options o;
  o.sigma = 2.0;
  o.classes = 1;
  const auto dev = cu::gaussian_density_batch(spans, 256, 256, o, 100.0f);  // [2, 1, 256, 256]
  const auto values = download(dev);
  post::peak_options po;
  po.min_distance = 3;
  po.threshold_rel = 0.2f;
  po.exclude_border = 0;
  const auto peaks = cu::find_peaks_per_class_batch(dev, po);
  for (std::size_t n = 0; n < spans.size(); ++n) {
    auto host = target::gaussian_density(spans[n], 256, 256, o);  // [1, 256, 256]
    for (auto& v : host) v *= 100.0f;
    check_close(host.data(), std::vector<float>(values.begin() + n * 65536, values.begin() + (n + 1) * 65536), 65536);
    CHECK(sum_of(values, n * 65536, 65536) == doctest::Approx(100.0 * double(spans[n].size())).epsilon(1e-5));
    // Peaks of the device map equal the host's peaks of the same map (the oracle sees the device values).
    auto same = xt::xtensor<float, 3>::from_shape({1, 256, 256});
    std::copy(values.begin() + n * 65536, values.begin() + (n + 1) * 65536, same.begin());
    check_same_peaks(post::find_peaks_per_class(same, po), peaks[n]);
    CHECK(peaks[n].size() > spans[n].size() / 2);  // touching cells merge; most stay separate
  }
}
