#pragma once
// Mean-shift clustering with a flat kernel and bin seeding, with the semantics of scikit-learn's
// MeanShift(bandwidth, bin_seeding=True, min_bin_freq=1, cluster_all=True):
//   1. seeds: the centres (bin index × bandwidth) of bins of side `bandwidth` holding at least
//      min_bin_freq points (bin index = coordinate / bandwidth rounded half to even, as numpy rounds);
//      when every point has a bin of its own the points themselves are the seeds;
//   2. every seed moves to the mean of the points within `bandwidth` (distance <= bandwidth) until it
//      moves by at most 1e-3 × bandwidth, or max_iter iterations; a seed with no point in reach is dropped;
//   3. identical modes collapse; modes sorted by population (points within bandwidth at convergence),
//      ties by coordinates (descending), are kept greedily, each dropping the later modes within bandwidth;
//   4. every point is labelled with its nearest kept mode (ties: lower mode index); with
//      cluster_all = false, points farther than bandwidth from every mode get -1.
// Every neighbour query goes through a uniform grid with cell = bandwidth (3^D cells per query), seeds
// run in parallel, and each seed's result lands in its own slot, so results do not depend on threads.
// An axis scale (e.g. time vs space in a movie) multiplies the coordinates before clustering; the modes
// are reported in the original units.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "microcount/core/error.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/post/components.hpp"
#include "microcount/post/scored_point.hpp"
#include "microcount/post/spatial_grid.hpp"

namespace microcount::post {

template <std::size_t D>
struct mean_shift_options {
  double bandwidth = 1.0;                 // flat-kernel radius and bin side, > 0 (in scaled units)
  std::size_t max_iter = 300;
  std::size_t min_bin_freq = 1;
  bool cluster_all = true;
  std::array<double, D> axis_scale = filled(1.0);  // coordinate a is multiplied by axis_scale[a]

  static constexpr std::array<double, D> filled(double v) {
    std::array<double, D> a{};
    for (auto& x : a) x = v;
    return a;
  }
};

template <std::size_t D>
struct mean_shift_result {
  std::vector<coord<D>> centers;           // kept modes, in input units, by population (descending)
  std::vector<std::size_t> population;     // points within bandwidth of each mode at convergence
  std::vector<std::int32_t> labels;        // [points]: mode index, or -1 (cluster_all = false only)
  std::vector<std::size_t> cluster_size;   // points labelled with each mode
};

namespace detail {

template <std::size_t D>
bool coord_greater(const coord<D>& a, const coord<D>& b) {
  return std::lexicographical_compare(b.begin(), b.end(), a.begin(), a.end());
}

struct bin_hash {
  template <std::size_t D>
  std::size_t operator()(const std::array<std::int64_t, D>& b) const {
    std::uint64_t h = 0x9e3779b97f4a7c15ull;
    for (auto v : b) h = (h ^ static_cast<std::uint64_t>(v)) * 0xff51afd7ed558ccdull;
    return static_cast<std::size_t>(h ^ (h >> 32));
  }
};

// Bin seeds (step 1), in order of each bin's first point.
template <std::size_t D>
std::vector<coord<D>> bin_seeds(const std::vector<coord<D>>& x, double bin, std::size_t min_freq) {
  std::unordered_map<std::array<std::int64_t, D>, std::size_t, bin_hash> slot;  // bin index -> position in `bins`
  std::vector<std::pair<std::array<std::int64_t, D>, std::size_t>> bins;       // (bin index, count), first-seen order
  for (const auto& p : x) {
    std::array<std::int64_t, D> b;
    for (std::size_t a = 0; a < D; ++a) {
      const double r = std::nearbyint(p[a] / bin);  // half to even, as numpy.round
      require(std::abs(r) < 0x1p62, "mean_shift", "bandwidth too small for the coordinates");
      b[a] = static_cast<std::int64_t>(r);
    }
    auto [it, fresh] = slot.try_emplace(b, bins.size());
    if (fresh) bins.push_back({b, 0});
    ++bins[it->second].second;
  }
  std::vector<coord<D>> seeds;
  for (const auto& [b, n] : bins)
    if (n >= min_freq) {
      coord<D> s;
      for (std::size_t a = 0; a < D; ++a) s[a] = static_cast<double>(b[a]) * bin;
      seeds.push_back(s);
    }
  if (seeds.size() == x.size()) return x;  // every point alone in its bin: seed with the points
  return seeds;
}

}  // namespace detail

template <std::size_t D>
mean_shift_result<D> mean_shift(std::span<const coord<D>> points, const mean_shift_options<D>& o) {
  const double bw = o.bandwidth;
  require(bw > 0 && std::isfinite(bw), "mean_shift", "bandwidth must be positive and finite");
  require(o.min_bin_freq >= 1, "mean_shift", "min_bin_freq must be >= 1");
  for (double s : o.axis_scale) require(s > 0 && std::isfinite(s), "mean_shift", "axis_scale must be positive");
  mean_shift_result<D> out;
  const std::size_t n = points.size();
  if (n == 0) return out;

  std::vector<coord<D>> x(n);  // scaled coordinates
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t a = 0; a < D; ++a) {
      require(std::isfinite(points[i][a]), "mean_shift", "point " + std::to_string(i) + " has a non-finite coordinate");
      x[i][a] = points[i][a] * o.axis_scale[a];
    }
  const spatial_grid<D> grid(x, bw);
  const std::vector<coord<D>> seeds = detail::bin_seeds(x, bw, o.min_bin_freq);

  // Step 2, seeds in parallel.
  const double stop = 1e-3 * bw;
  std::vector<coord<D>> mode(seeds.size());
  std::vector<std::size_t> within(seeds.size(), 0);
  parallel_for(0, static_cast<std::int64_t>(seeds.size()), [&](std::int64_t s) {
    coord<D> mean = seeds[static_cast<std::size_t>(s)];
    std::size_t count = 0;
    for (std::size_t iter = 0;; ++iter) {
      coord<D> sum{};
      count = 0;
      grid.for_each_within(mean, bw, [&](std::size_t, const coord<D>& p, double) {
        for (std::size_t a = 0; a < D; ++a) sum[a] += p[a];
        ++count;
      });
      if (count == 0) break;
      const coord<D> old = mean;
      for (std::size_t a = 0; a < D; ++a) mean[a] = sum[a] / static_cast<double>(count);
      if (std::sqrt(spatial_grid<D>::squared_distance(mean, old)) <= stop || iter == o.max_iter) break;
    }
    mode[static_cast<std::size_t>(s)] = mean;
    within[static_cast<std::size_t>(s)] = count;
  });

  // Step 3: collapse identical modes (the later seed's population wins, as a dict would keep it).
  std::map<coord<D>, std::size_t> unique_modes;
  for (std::size_t s = 0; s < seeds.size(); ++s)
    if (within[s] > 0) unique_modes[mode[s]] = within[s];
  std::vector<std::pair<coord<D>, std::size_t>> sorted(unique_modes.begin(), unique_modes.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    if (a.second != b.second) return a.second > b.second;
    return detail::coord_greater<D>(a.first, b.first);
  });
  std::vector<coord<D>> candidates(sorted.size());
  for (std::size_t i = 0; i < sorted.size(); ++i) candidates[i] = sorted[i].first;
  const spatial_grid<D> mode_grid(candidates, bw);
  std::vector<char> keep(candidates.size(), 1);
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    if (!keep[i]) continue;
    mode_grid.for_each_within(candidates[i], bw, [&](std::size_t j, const coord<D>&, double) { keep[j] = 0; });
    keep[i] = 1;
  }
  std::vector<coord<D>> kept;
  for (std::size_t i = 0; i < candidates.size(); ++i)
    if (keep[i]) {
      kept.push_back(candidates[i]);
      out.population.push_back(sorted[i].second);
    }

  // Step 4: nearest kept mode of every point.
  out.labels.assign(n, -1);
  if (!kept.empty()) {
    const spatial_grid<D> kept_grid(kept, bw);
    parallel_for(0, static_cast<std::int64_t>(n), [&](std::int64_t i) {
      const auto best = kept_grid.nearest(x[static_cast<std::size_t>(i)], 1);
      if (o.cluster_all || best.front().first <= bw * bw)
        out.labels[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(best.front().second);
    }, 1024);
  }
  out.cluster_size.assign(kept.size(), 0);
  for (auto l : out.labels)
    if (l >= 0) ++out.cluster_size[static_cast<std::size_t>(l)];
  out.centers = kept;
  for (auto& c : out.centers)
    for (std::size_t a = 0; a < D; ++a) c[a] /= o.axis_scale[a];
  return out;
}

template <std::size_t D>
mean_shift_result<D> mean_shift(const std::vector<coord<D>>& points, const mean_shift_options<D>& o) {
  return mean_shift<D>(std::span<const coord<D>>(points), o);
}

// Coordinates (t, y, x) of the voxels of a segmentation [T, H, W] where fg(value) holds (e.g. class 2),
// in raster order: the input of a mean-shift that turns a segmentation into detections.
template <class T, class Foreground>
std::vector<coord<3>> voxel_coordinates(const xt::xtensor<T, 3>& seg, Foreground fg) {
  static_assert(foreground_test<Foreground, T>, "voxel_coordinates: fg(value) must return bool");
  const auto nt = static_cast<std::int64_t>(seg.shape()[0]);
  const auto h = static_cast<std::int64_t>(seg.shape()[1]), w = static_cast<std::int64_t>(seg.shape()[2]);
  std::vector<std::vector<coord<3>>> per(static_cast<std::size_t>(nt));
  parallel_for(0, nt, [&](std::int64_t t) {
    const T* v = seg.data() + t * h * w;
    for (std::int64_t y = 0; y < h; ++y)
      for (std::int64_t xx = 0; xx < w; ++xx)
        if (fg(v[y * w + xx]))
          per[static_cast<std::size_t>(t)].push_back({static_cast<double>(t), static_cast<double>(y), static_cast<double>(xx)});
  });
  std::vector<coord<3>> out;
  for (auto& p : per) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// Modes of a (t, y, x) clustering as detections: x = column, y = row, frame = rounded t,
// score = the number of voxels labelled with the mode.
inline std::vector<scored_point> modes_as_points(const mean_shift_result<3>& r, int label) {
  std::vector<scored_point> out;
  for (std::size_t i = 0; i < r.centers.size(); ++i) {
    scored_point p;
    p.point.x = r.centers[i][2];
    p.point.y = r.centers[i][1];
    p.point.frame = static_cast<int>(std::lround(r.centers[i][0]));
    p.point.label = label;
    p.score = static_cast<float>(r.cluster_size[i]);
    out.push_back(p);
  }
  return out;
}

}  // namespace microcount::post
