#pragma once
// A seeded synthetic TIRF movie of exocytosis, with its ExoDeepFinder object list, for demos, tests and
// end-to-end checks of the event pipeline (post::event_object labels: 1 = bright spot, 2 = event).
//
// What is in a movie [T, H, W]:
//   background    smooth, uneven autofluorescence (photons per pixel), bleaching by `bleaching` per frame
//   bright spots  docked vesicles: Gaussian spots (σ = psf_sigma) at fixed places, each visible over a
//                 random span of frames, brightness flickering ±flicker; bleach with the background
//   events        fusions: at the event frame the spot becomes suddenly bright (event_brightness), then
//                 its content spreads by diffusion (σ_k² = psf_sigma² + 2·diffusion·k over frames k = 0, 1, …)
//                 while the integrated signal fades as exp(-k / event_decay); frames whose peak falls below
//                 5% of the first are not drawn. A share `docked_share` of the events is preceded by a dim
//                 docked vesicle for 1…docked_frames_max frames, as a real vesicle docks before it fuses.
//   camera        recorded = offset + gain · Poisson(photons) + Normal(0, read_noise), rounded and clipped
//                 to [0, 65535] (a 16-bit camera), so frames hold whole numbers.
// Objects: one label-2 object per event at its fusion frame and centre; one label-1 object per bright spot
// and per frame it is visible (docked pre-fusion frames included), as ExoDeepFinder's per-frame spot
// detector would list them. Events keep `min_distance` pixels from every other object that is visible in
// the same frames (so a matching radius below that is unambiguous); spots keep it from each other.
// Everything random comes from microcount::rng: the same options give the same movie, whatever the
// thread count (each frame's noise has its own seed).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <numbers>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "microcount/core/error.hpp"
#include "microcount/core/limits.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/core/rng.hpp"
#include "microcount/io/image.hpp"
#include "microcount/io/movie.hpp"
#include "microcount/io/objlist.hpp"
#include "microcount/post/event_object.hpp"

namespace microcount::data {

struct movie_synth_options {
  std::size_t frames = 48;
  std::size_t height = 96;
  std::size_t width = 96;
  std::size_t bright_spots = 6;        // docked vesicles that do not fuse
  std::size_t events = 6;              // fusion events
  double background = 100;             // mean background, photons per pixel
  double background_unevenness = 0.3;  // relative amplitude of its smooth variation
  double bleaching = 0.003;            // background and spots lose this share per frame (exponential)
  double psf_sigma = 1.2;              // pixels
  double spot_brightness_min = 60;     // photons at the spot's peak above background
  double spot_brightness_max = 140;
  double spot_frames_min = 8;          // shortest visible span of a bright spot, frames
  double flicker = 0.1;                // relative frame-to-frame brightness variation of spots
  double event_brightness_min = 200;   // photons at the peak of the fusion frame
  double event_brightness_max = 400;
  double event_decay = 1.5;            // frames for the integrated event signal to fall by e
  double diffusion = 1.5;              // pixels² per frame added to σ² / 2 as the content spreads
  double docked_share = 0.5;           // events preceded by a docked vesicle
  std::size_t docked_frames_max = 4;
  double min_distance = 10;            // pixels between simultaneously visible objects
  double gain = 1;                     // ADU per photon
  double offset = 100;                 // ADU
  double read_noise = 2;               // ADU, Gaussian
  std::uint64_t seed = 1;
};

struct synthetic_movie {
  xt::xtensor<float, 3> frames;               // [T, H, W], whole-number ADU
  std::vector<post::event_object> objects;    // sorted by frame, then label, then y, x
};

namespace synth_movie_detail {

// One Gaussian source: where, when, how bright and how wide, frame by frame.
struct source {
  double y = 0, x = 0;
  std::size_t first = 0, last = 0;    // visible in frames [first, last]
  std::vector<double> peak;           // photons at the centre, per visible frame
  std::vector<double> sigma;          // pixels, per visible frame
};

// Frames after the fusion frame an event stays visible (its peak above 5% of the first frame's).
inline std::size_t event_length(const movie_synth_options& o) {
  std::size_t k = 0;
  const double s0 = o.psf_sigma * o.psf_sigma;
  while (k < 64) {
    const double next = std::exp(-static_cast<double>(k + 1) / o.event_decay) * s0 / (s0 + 2 * o.diffusion * static_cast<double>(k + 1));
    if (next < 0.05) break;
    ++k;
  }
  return k + 1;
}

inline void check_options(const movie_synth_options& o) {
  const std::string where = "synthetic movie";
  require(o.frames >= 1 && o.height >= 8 && o.width >= 8, where, "needs at least 1 frame of 8×8 pixels");
  require(o.height <= limits().max_image_side && o.width <= limits().max_image_side && o.frames <= limits().max_pages, where,
          "frames or size above limits()");
  require(static_cast<unsigned __int128>(o.frames) * o.height * o.width * sizeof(float) <= limits().max_total_bytes, where,
          "movie larger than limits().max_total_bytes");
  // Placement compares each new object with the placed ones: bound the count so a typo cannot hang.
  require(o.events + o.bright_spots <= 20000, where, "at most 20000 events and bright spots per movie");
  require(static_cast<unsigned __int128>(o.events + o.bright_spots) * o.frames <= limits().max_points, where,
          "objects × frames above limits().max_points");
  const auto positive = [](double v) { return std::isfinite(v) && v > 0; };
  const auto non_negative = [](double v) { return std::isfinite(v) && v >= 0; };
  require(non_negative(o.background) && non_negative(o.background_unevenness) && o.background_unevenness < 1, where,
          "background must be >= 0 and its unevenness in [0, 1)");
  require(non_negative(o.bleaching) && o.bleaching < 1, where, "bleaching must be in [0, 1)");
  require(positive(o.psf_sigma) && o.psf_sigma <= 20, where, "psf_sigma must be in (0, 20]");
  require(non_negative(o.spot_brightness_min) && o.spot_brightness_min <= o.spot_brightness_max && std::isfinite(o.spot_brightness_max),
          where, "spot brightness needs 0 <= min <= max");
  require(non_negative(o.event_brightness_min) && o.event_brightness_min <= o.event_brightness_max && std::isfinite(o.event_brightness_max),
          where, "event brightness needs 0 <= min <= max");
  require(non_negative(o.spot_frames_min), where, "spot_frames_min must be >= 0");
  require(non_negative(o.flicker) && o.flicker < 1, where, "flicker must be in [0, 1)");
  require(positive(o.event_decay) && non_negative(o.diffusion), where, "event_decay must be > 0 and diffusion >= 0");
  require(non_negative(o.docked_share) && o.docked_share <= 1, where, "docked_share must be in [0, 1]");
  require(non_negative(o.min_distance), where, "min_distance must be >= 0");
  require(positive(o.gain) && non_negative(o.offset) && non_negative(o.read_noise), where,
          "gain must be > 0, offset and read_noise >= 0");
}

// Places x, y at least `margin` pixels inside the frame.
inline void random_place(rng& random, const movie_synth_options& o, double margin, double& y, double& x) {
  const double m_y = std::min(margin, (static_cast<double>(o.height) - 1) / 2);
  const double m_x = std::min(margin, (static_cast<double>(o.width) - 1) / 2);
  y = random.uniform(m_y, static_cast<double>(o.height) - 1 - m_y);
  x = random.uniform(m_x, static_cast<double>(o.width) - 1 - m_x);
}

inline bool overlaps(const source& a, std::size_t first, std::size_t last, double y, double x, double min_distance) {
  if (a.last < first || last < a.first) return false;
  const double dy = a.y - y, dx = a.x - x;
  return dy * dy + dx * dx < min_distance * min_distance;
}

// Adds a Gaussian of peak `peak` and width `sigma` centred at (y, x) to plane [H, W], within 4σ.
inline void add_gaussian(std::vector<double>& plane, std::size_t height, std::size_t width, double y, double x, double peak,
                         double sigma) {
  const double reach = std::ceil(4 * sigma);
  const auto r0 = static_cast<std::ptrdiff_t>(std::max(0.0, std::floor(y - reach)));
  const auto r1 = static_cast<std::ptrdiff_t>(std::min(static_cast<double>(height) - 1, std::ceil(y + reach)));
  const auto c0 = static_cast<std::ptrdiff_t>(std::max(0.0, std::floor(x - reach)));
  const auto c1 = static_cast<std::ptrdiff_t>(std::min(static_cast<double>(width) - 1, std::ceil(x + reach)));
  const double inv = 1.0 / (2 * sigma * sigma);
  for (std::ptrdiff_t r = r0; r <= r1; ++r)
    for (std::ptrdiff_t c = c0; c <= c1; ++c) {
      const double dy = static_cast<double>(r) - y, dx = static_cast<double>(c) - x;
      plane[static_cast<std::size_t>(r) * width + static_cast<std::size_t>(c)] += peak * std::exp(-(dy * dy + dx * dx) * inv);
    }
}

// log(k!) exactly summed below 16, by Stirling's series above (error < 1e-13 there); thread-safe, unlike
// std::lgamma, which writes the global signgam in glibc.
inline double log_factorial(double k) {
  if (k < 16) {
    double s = 0;
    for (double i = 2; i <= k; ++i) s += std::log(i);
    return s;
  }
  const double n = k + 1, inv = 1 / n, inv2 = inv * inv;
  return (n - 0.5) * std::log(n) - n + 0.5 * std::log(2 * std::numbers::pi) + inv * (1.0 / 12 - inv2 * (1.0 / 360 - inv2 / 1260));
}

// An exact Poisson draw. rng::poisson multiplies uniforms (Knuth) up to a mean of 64, which costs ~mean
// draws per pixel — the whole time of a 1000-frame movie with a background of 100 photons — and uses a
// normal approximation above. Here means >= 10 use Hörmann's transformed rejection with squeeze (PTRS,
// 1993): a constant ~1.2 pairs of uniforms per draw, exact for every mean.
inline std::uint64_t poisson(rng& random, double mean) {
  if (mean < 10) return random.poisson(mean);
  const double root = std::sqrt(mean), log_mean = std::log(mean);
  const double b = 0.931 + 2.53 * root, a = -0.059 + 0.02483 * b;
  const double inv_alpha = 1.1239 + 1.1328 / (b - 3.4), v_r = 0.9277 - 3.6224 / (b - 2);
  for (;;) {
    const double u = random.uniform() - 0.5, v = random.uniform();
    const double us = 0.5 - std::abs(u);
    const double k = std::floor((2 * a / us + b) * u + mean + 0.43);  // us == 0 gives -inf: rejected below
    if (k < 0) continue;
    if (us >= 0.07 && v <= v_r) return static_cast<std::uint64_t>(k);
    if (us < 0.013 && v > us) continue;
    if (std::log(v) + std::log(inv_alpha) - std::log(a / (us * us) + b) <= -mean + k * log_mean - log_factorial(k))
      return static_cast<std::uint64_t>(k);
  }
}

}  // namespace synth_movie_detail

inline synthetic_movie make_synthetic_movie(const movie_synth_options& o) {
  using namespace synth_movie_detail;
  check_options(o);
  const std::size_t T = o.frames, H = o.height, W = o.width;
  rng random(o.seed);
  const double margin = std::ceil(2 * o.psf_sigma) + 1;
  const std::size_t event_frames = event_length(o);
  const auto draw_failed = [&](const char* what) {
    throw error("synthetic movie", std::string("cannot place every ") + what + " " + std::to_string(static_cast<long long>(o.min_distance)) +
                                       " px apart in " + std::to_string(W) + "×" + std::to_string(H) + " × " + std::to_string(T) +
                                       " frames; use fewer objects, a bigger movie or a smaller min_distance");
  };

  std::vector<source> spots, events, docked;  // docked: the dim vesicle before a fusion
  std::vector<post::event_object> objects;
  // Events first: they are what the movie is for, so they get the free space.
  for (std::size_t e = 0; e < o.events; ++e) {
    bool placed = false;
    for (int attempt = 0; attempt < 2000 && !placed; ++attempt) {
      source ev;
      random_place(random, o, margin, ev.y, ev.x);
      ev.first = static_cast<std::size_t>(random.below(T));
      const std::size_t dock = random.uniform() < o.docked_share && o.docked_frames_max > 0
                                   ? std::min<std::size_t>(ev.first, 1 + random.below(o.docked_frames_max))
                                   : 0;
      ev.last = std::min(T - 1, ev.first + event_frames - 1);
      const std::size_t busy_first = ev.first - dock;
      bool clash = false;
      for (const auto& other : events)
        clash = clash || overlaps(other, busy_first, ev.last, ev.y, ev.x, o.min_distance);
      for (const auto& other : docked)
        clash = clash || overlaps(other, busy_first, ev.last, ev.y, ev.x, o.min_distance);
      if (clash) continue;
      const double brightness = random.uniform(o.event_brightness_min, o.event_brightness_max);
      const double s0 = o.psf_sigma * o.psf_sigma;
      for (std::size_t t = ev.first; t <= ev.last; ++t) {
        const double k = static_cast<double>(t - ev.first), s2 = s0 + 2 * o.diffusion * k;
        ev.sigma.push_back(std::sqrt(s2));
        ev.peak.push_back(brightness * std::exp(-k / o.event_decay) * s0 / s2);  // integral fades, spread widens
      }
      if (dock > 0) {
        source d;
        d.y = ev.y;
        d.x = ev.x;
        d.first = busy_first;
        d.last = ev.first - 1;
        const double dim = random.uniform(o.spot_brightness_min, o.spot_brightness_max) * 0.5;
        for (std::size_t t = d.first; t <= d.last; ++t) {
          d.peak.push_back(dim);
          d.sigma.push_back(o.psf_sigma);
          objects.push_back(post::event_object{1, static_cast<double>(t), d.y, d.x, 0});
        }
        docked.push_back(std::move(d));
      }
      objects.push_back(post::event_object{2, static_cast<double>(ev.first), ev.y, ev.x, 0});
      events.push_back(std::move(ev));
      placed = true;
    }
    if (!placed) draw_failed("event");
  }
  for (std::size_t s = 0; s < o.bright_spots; ++s) {
    bool placed = false;
    for (int attempt = 0; attempt < 2000 && !placed; ++attempt) {
      source sp;
      random_place(random, o, margin, sp.y, sp.x);
      const auto shortest = std::min<std::size_t>(T, static_cast<std::size_t>(std::max(1.0, std::ceil(o.spot_frames_min))));
      const std::size_t length = shortest + static_cast<std::size_t>(random.below(T - shortest + 1));
      sp.first = static_cast<std::size_t>(random.below(T - length + 1));
      sp.last = sp.first + length - 1;
      bool clash = false;
      for (const auto& other : spots) clash = clash || overlaps(other, 0, T - 1, sp.y, sp.x, o.min_distance);
      for (const auto& other : events) clash = clash || overlaps(other, sp.first, sp.last, sp.y, sp.x, o.min_distance);
      for (const auto& other : docked) clash = clash || overlaps(other, sp.first, sp.last, sp.y, sp.x, o.min_distance);
      if (clash) continue;
      const double brightness = random.uniform(o.spot_brightness_min, o.spot_brightness_max);
      for (std::size_t t = sp.first; t <= sp.last; ++t) {
        sp.peak.push_back(brightness * std::max(0.0, 1 + o.flicker * random.uniform(-1.0, 1.0)) *
                          std::pow(1 - o.bleaching, static_cast<double>(t)));
        sp.sigma.push_back(o.psf_sigma);
        objects.push_back(post::event_object{1, static_cast<double>(t), sp.y, sp.x, 0});
      }
      spots.push_back(std::move(sp));
      placed = true;
    }
    if (!placed) draw_failed("bright spot");
  }
  std::sort(objects.begin(), objects.end(), [](const post::event_object& a, const post::event_object& b) {
    if (a.frame != b.frame) return a.frame < b.frame;
    if (a.label != b.label) return a.label < b.label;
    if (a.y != b.y) return a.y < b.y;
    return a.x < b.x;
  });

  // Smooth background: a tilted plane plus one broad bump, fixed over time (the cell's footprint).
  std::vector<double> base(H * W);  // [H, W] photons
  {
    const double u = o.background_unevenness;
    const double gy = random.uniform(-1, 1), gx = random.uniform(-1, 1);
    const double by = random.uniform(0, static_cast<double>(H)), bx = random.uniform(0, static_cast<double>(W));
    const double bs = 0.35 * static_cast<double>(std::max(H, W));
    for (std::size_t r = 0; r < H; ++r)
      for (std::size_t c = 0; c < W; ++c) {
        const double ry = static_cast<double>(r) / static_cast<double>(H) - 0.5, rx = static_cast<double>(c) / static_cast<double>(W) - 0.5;
        const double dy = static_cast<double>(r) - by, dx = static_cast<double>(c) - bx;
        const double shape = 0.5 * (gy * ry + gx * rx) + 0.5 * (std::exp(-(dy * dy + dx * dx) / (2 * bs * bs)) - 0.5);
        base[r * W + c] = o.background * std::max(0.0, 1 + u * 2 * shape);
      }
  }

  std::vector<std::uint64_t> frame_seed(T);  // one noise stream per frame: thread-count independent
  for (auto& s : frame_seed) s = random.next();

  synthetic_movie out;
  out.frames = xt::xtensor<float, 3>::from_shape({T, H, W});  // [T, H, W]
  parallel_for(0, static_cast<std::int64_t>(T), [&](std::int64_t ti) {
    const auto t = static_cast<std::size_t>(ti);
    const double bleach = std::pow(1 - o.bleaching, static_cast<double>(t));
    std::vector<double> photons(H * W);  // [H, W]
    for (std::size_t i = 0; i < H * W; ++i) photons[i] = base[i] * bleach;
    for (const auto* group : {&spots, &docked, &events})
      for (const source& s : *group)
        if (t >= s.first && t <= s.last)
          add_gaussian(photons, H, W, s.y, s.x, s.peak[t - s.first], s.sigma[t - s.first]);
    rng noise(frame_seed[t]);
    float* frame = out.frames.data() + t * H * W;  // [H, W]
    for (std::size_t i = 0; i < H * W; ++i) {
      const double recorded = o.offset + o.gain * static_cast<double>(poisson(noise, photons[i])) + noise.normal(0.0, o.read_noise);
      frame[i] = static_cast<float>(std::clamp(std::round(recorded), 0.0, 65535.0));
    }
  });
  out.objects = std::move(objects);
  return out;
}

struct synthetic_movie_counts {
  std::size_t movies = 0, events = 0, bright_spot_objects = 0;
};

// Writes `count` movies into `dir` (created when missing): movie_001.tif (uint16) and movie_001.xml
// (ExoDeepFinder object list), …; movie k uses the seed options.seed + k - 1 so any one of them can be
// regenerated alone. The object list is written after its movie, so an interrupted run never leaves an
// annotation without its movie.
inline synthetic_movie_counts write_synthetic_movies(const std::filesystem::path& dir, const movie_synth_options& options,
                                                     std::size_t count) {
  synth_movie_detail::check_options(options);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw error(dir.string(), "cannot create the folder: " + ec.message());
  const std::size_t digits = std::max<std::size_t>(3, std::to_string(count).size());
  synthetic_movie_counts counts;
  for (std::size_t k = 1; k <= count; ++k) {
    movie_synth_options o = options;
    o.seed = options.seed + (k - 1);
    const synthetic_movie m = make_synthetic_movie(o);
    std::string number = std::to_string(k);
    number.insert(0, digits - number.size(), '0');
    io::write_movie(dir / ("movie_" + number + ".tif"), m.frames, io::dtype::uint16);
    io::write_event_list_xml(dir / ("movie_" + number + ".xml"), m.objects);
    ++counts.movies;
    for (const auto& obj : m.objects) (obj.label == 2 ? counts.events : counts.bright_spot_objects) += 1;
  }
  return counts;
}

}  // namespace microcount::data
