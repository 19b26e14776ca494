// Synthetic TIRF movies (data/synth_movie.hpp) against their model's closed forms, and per-frame
// normalisation (data/movie.hpp) against sorted-array percentiles.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <vector>

#include "microcount/core/parallel.hpp"
#include "microcount/data/movie.hpp"
#include "microcount/data/synth_movie.hpp"
#include "microcount/io/movie.hpp"
#include "test_support.hpp"

using namespace microcount;
using post::event_object;

namespace {

data::movie_synth_options small_options() {
  return {.frames = 24, .height = 64, .width = 64, .bright_spots = 4, .events = 5, .seed = 7};
}

// numpy's default percentile by a full sort (the oracle for data::percentile inside normalize_frames).
double sorted_percentile(std::vector<float> v, double q) {
  std::sort(v.begin(), v.end());
  const double at = q / 100 * static_cast<double>(v.size() - 1);
  const auto k = static_cast<std::size_t>(std::floor(at));
  if (k + 1 >= v.size()) return v[k];
  return v[k] + (at - static_cast<double>(k)) * (v[k + 1] - v[k]);
}

}  // namespace

TEST_CASE("synthetic movie: seeded, thread-count independent, whole 16-bit values, objects inside") {
  const auto o = small_options();
  const auto a = data::make_synthetic_movie(o);
  REQUIRE(a.frames.shape() == std::array<std::size_t, 3>{24, 64, 64});
  const int threads = max_threads();
  set_threads(1);
  const auto b = data::make_synthetic_movie(o);
  set_threads(threads);
  CHECK(a.frames == b.frames);
  REQUIRE(a.objects.size() == b.objects.size());
  auto other = o;
  other.seed = 8;
  CHECK_FALSE(data::make_synthetic_movie(other).frames == a.frames);
  for (const float v : a.frames) {
    REQUIRE(v == std::round(v));
    REQUIRE(v >= 0.0f);
    REQUIRE(v <= 65535.0f);
  }
  std::size_t events = 0;
  for (const auto& obj : a.objects) {
    CHECK((obj.label == 1 || obj.label == 2));
    CHECK(obj.frame >= 0);
    CHECK(obj.frame < 24);
    CHECK(obj.y >= 0);
    CHECK(obj.y <= 63);
    CHECK(obj.x >= 0);
    CHECK(obj.x <= 63);
    events += obj.label == 2;
  }
  CHECK(events == 5);
  CHECK(std::is_sorted(a.objects.begin(), a.objects.end(),
                       [](const event_object& p, const event_object& q) { return p.frame < q.frame; }));
  // Spots are listed once per visible frame: at least spot_frames_min frames for each of the 4.
  CHECK(a.objects.size() - events >= 4 * 8);
}

TEST_CASE("synthetic movie: events keep min_distance from every object visible with them") {
  auto o = small_options();
  o.events = 8;
  o.bright_spots = 6;
  o.min_distance = 12;
  const auto m = data::make_synthetic_movie(o);
  for (const auto& e : m.objects) {
    if (e.label != 2) continue;
    for (const auto& other : m.objects) {
      if (&other == &e || other.frame != e.frame) continue;
      // A docked vesicle sits where its own event fuses, but never in the fusion frame itself.
      CHECK(std::hypot(other.y - e.y, other.x - e.x) >= 12.0);
    }
  }
  o.events = 200;  // cannot fit: a clear error instead of an endless search
  CHECK_THROWS_WITH_AS(data::make_synthetic_movie(o), doctest::Contains("cannot place every event"), microcount::error);
}

TEST_CASE("synthetic movie: an event's brightening, spreading and fading follow the model") {
  // No background, no camera noise but Poisson: the recorded value is Poisson(the model's photons).
  const data::movie_synth_options o{.frames = 12,
                                    .height = 40,
                                    .width = 40,
                                    .bright_spots = 0,
                                    .events = 1,
                                    .background = 0,
                                    .event_brightness_min = 20000,
                                    .event_brightness_max = 20000,
                                    .docked_share = 0,
                                    .offset = 0,
                                    .read_noise = 0,
                                    .seed = 3};
  const auto m = data::make_synthetic_movie(o);
  REQUIRE(m.objects.size() == 1);
  const event_object e = m.objects[0];
  const auto f = static_cast<std::size_t>(e.frame);
  const auto r = static_cast<std::size_t>(std::lround(e.y)), c = static_cast<std::size_t>(std::lround(e.x));
  if (f > 0) CHECK(m.frames(f - 1, r, c) == 0.0f);  // nothing before the fusion: a sudden brightening
  const double s0 = o.psf_sigma * o.psf_sigma, d2 = (r - e.y) * (r - e.y) + (c - e.x) * (c - e.x);
  for (std::size_t k = 0; f + k < o.frames && k < 3; ++k) {
    const double s2 = s0 + 2 * o.diffusion * static_cast<double>(k);
    const double expected = 20000 * std::exp(-static_cast<double>(k) / o.event_decay) * s0 / s2 * std::exp(-d2 / (2 * s2));
    CAPTURE(k);
    CHECK(std::abs(m.frames(f + k, r, c) - expected) <= 5 * std::sqrt(expected) + 1);  // 5 Poisson σ
  }
  // The spread: the summed signal of frame f + 1 over its peak is wider than at the fusion frame.
  if (f + 1 < o.frames) {
    double sum0 = 0, sum1 = 0;
    for (std::size_t i = 0; i < 40 * 40; ++i) {
      sum0 += m.frames.data()[f * 1600 + i];
      sum1 += m.frames.data()[(f + 1) * 1600 + i];
    }
    CHECK(sum1 / m.frames(f + 1, r, c) > 1.3 * sum0 / m.frames(f, r, c));
    CHECK(sum1 < sum0);  // and it fades
  }
}

TEST_CASE("synthetic movie: the background bleaches as (1 - bleaching)^t") {
  const data::movie_synth_options o{
      .frames = 30, .height = 48, .width = 48, .bright_spots = 0, .events = 0, .background = 400, .bleaching = 0.02, .offset = 0};
  const auto m = data::make_synthetic_movie(o);
  double first = 0, last = 0;
  for (std::size_t i = 0; i < 48 * 48; ++i) {
    first += m.frames.data()[i];
    last += m.frames.data()[29 * 48 * 48 + i];
  }
  CHECK(last / first == doctest::Approx(std::pow(0.98, 29)).epsilon(0.01));
  CHECK(m.objects.empty());
}

TEST_CASE("synthetic movies on disk: movie_001.tif + movie_001.xml read back exactly") {
  const auto dir = test::scratch("synth_movies");
  auto o = small_options();
  o.frames = 8;
  const auto counts = data::write_synthetic_movies(dir, o, 2);
  CHECK(counts.movies == 2);
  CHECK(counts.events == 10);
  const auto pairs = io::find_annotated_movies(dir);
  REQUIRE(pairs.size() == 2);
  CHECK(pairs[0].first.filename() == "movie_001.tif");
  CHECK(pairs[1].second.filename() == "movie_002.xml");
  auto second = o;
  second.seed = o.seed + 1;  // movie k uses seed + k - 1
  const auto m = data::make_synthetic_movie(second);
  CHECK(io::read_movie(pairs[1].first).frames == m.frames);
  const auto objects = io::read_movie_objects(pairs[1].second);
  REQUIRE(objects.size() == m.objects.size());
  for (std::size_t i = 0; i < objects.size(); ++i) {
    CHECK(objects[i].x == m.objects[i].x);
    CHECK(objects[i].frame == m.objects[i].frame);
  }
  o.psf_sigma = -1;
  CHECK_THROWS_WITH_AS(data::write_synthetic_movies(dir, o, 1), doctest::Contains("psf_sigma"), microcount::error);
  o.psf_sigma = 1;
  o.events = 1u << 20;  // would take hours to place: refused at once
  CHECK_THROWS_WITH_AS(data::make_synthetic_movie(o), doctest::Contains("at most 20000"), microcount::error);
}

TEST_CASE("normalize_frames: each frame by its own percentiles (bleaching-invariant)") {
  auto frames = xt::xtensor<float, 3>::from_shape({3, 10, 13});  // [T, H, W]
  rng random(5);
  for (auto& v : frames) v = static_cast<float>(random.uniform(0, 1000));
  // Frame 1 is frame 0 bleached to a third plus an offset; frame 2 is flat with a NaN.
  for (std::size_t i = 0; i < 130; ++i) frames.data()[130 + i] = frames.data()[i] / 3 + 50;
  for (std::size_t i = 0; i < 130; ++i) frames.data()[260 + i] = 7;
  frames(2, 0, 0) = NAN;
  const std::vector<float> frame0(frames.data(), frames.data() + 130);
  auto normalized = frames;
  data::normalize_frames(normalized);
  const double lo = sorted_percentile(frame0, 1), hi = sorted_percentile(frame0, 99.8);
  for (std::size_t i = 0; i < 130; ++i) {
    CHECK(normalized.data()[i] == doctest::Approx((frame0[i] - lo) / (hi - lo)).epsilon(1e-5));
    CHECK(normalized.data()[130 + i] == doctest::Approx(normalized.data()[i]).epsilon(1e-4));  // bleaching gone
  }
  CHECK(std::isnan(normalized(2, 0, 0)));
  CHECK(normalized(2, 5, 5) == 0.0f);  // flat frame: (v - p) / 1e-6 with v == p
  CHECK_THROWS_AS(data::normalize_frames(normalized, 50, 10), microcount::error);
}

TEST_CASE("normalize_frames: the radix selection equals data::percentile on awkward frames") {
  rng random(11);
  for (int trial = 0; trial < 60; ++trial) {
    const std::size_t n = 1 + random.below(3000);
    auto frames = xt::xtensor<float, 3>::from_shape({1, 1, n});  // [T, H, W]
    const auto kind = trial % 5;
    for (auto& v : frames) {
      if (kind == 0) v = static_cast<float>(random.below(4));                    // heavy duplicates
      else if (kind == 1) v = static_cast<float>(random.normal(0, 1e-3));        // around ±0, tiny values
      else if (kind == 2) v = static_cast<float>(std::ldexp(random.uniform(-1, 1), static_cast<int>(random.below(60)) - 30));
      else if (kind == 3) v = 100 + static_cast<float>(random.below(65536));    // a 16-bit camera
      else v = random.uniform() < 0.1 ? NAN : static_cast<float>(random.uniform(-5, 5));
    }
    const double lo = random.uniform(0, 50), hi = random.uniform(lo + 1e-3, 100);
    std::vector<float> finite(frames.begin(), frames.end());
    std::erase_if(finite, [](float v) { return !std::isfinite(v); });
    if (finite.empty()) continue;
    std::vector<float> copy = finite;
    const double want_lo = data::percentile(copy, lo);
    copy = finite;
    const double want_hi = data::percentile(copy, hi);
    double got_lo = 0, got_hi = 0;
    REQUIRE(data::frame_percentiles(frames.data(), n, lo, hi, got_lo, got_hi));
    CAPTURE(trial);
    CHECK(got_lo == want_lo);
    CHECK(got_hi == want_hi);
  }
  const float nans[3] = {NAN, INFINITY, NAN};
  double a = 0, b = 0;
  CHECK_FALSE(data::frame_percentiles(nans, 3, 1, 99, a, b));
}

TEST_CASE("synthetic movie: the exact Poisson sampler (PTRS) has the Poisson distribution") {
  for (double k = 0; k < 300; k += 1) {
    double sum = 0;
    for (double i = 2; i <= k; ++i) sum += std::log(i);
    REQUIRE(data::synth_movie_detail::log_factorial(k) == doctest::Approx(sum).epsilon(1e-12));
  }
  rng random(17);
  for (const double mean : {10.0, 12.5, 37.0, 100.0, 2000.0}) {
    const int n = 100000;
    std::vector<double> counts(64, 0);
    double s1 = 0, s2 = 0;
    for (int i = 0; i < n; ++i) {
      const auto v = static_cast<double>(data::synth_movie_detail::poisson(random, mean));
      s1 += v;
      s2 += v * v;
      if (mean == 12.5 && v < 64) counts[static_cast<std::size_t>(v)] += 1;
    }
    const double m = s1 / n, var = s2 / n - m * m;
    CAPTURE(mean);
    CHECK(std::abs(m - mean) < 5 * std::sqrt(mean / n));
    CHECK(std::abs(var / mean - 1) < 5 * std::sqrt(2.0 / n) + 0.005);
    if (mean == 12.5)  // every probability of the mass function, within 5 binomial σ
      for (std::size_t k = 0; k < 40; ++k) {
        const double p = std::exp(-mean + static_cast<double>(k) * std::log(mean) - data::synth_movie_detail::log_factorial(static_cast<double>(k)));
        CAPTURE(k);
        CHECK(std::abs(counts[k] - n * p) <= 5 * std::sqrt(n * p * (1 - p)) + 1);
      }
  }
}
