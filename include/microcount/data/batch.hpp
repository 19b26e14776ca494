#pragma once
// Stacking samples for the network.
//
//   auto b = make_batch<backend::cpu>(samples, {.sigma = 2, .scale = 100});
//   b.images   [N, C, H, W]        the samples' pixels (still images: F = 1)
//   b.density  [N, classes, H, W]  unit-mass Gaussians (target::gaussian_density), one channel per class,
//                                  times `scale`: each map sums to scale × its number of points
//   b.counts   [N] points per sample
//   epoch_batches(view.size(), 8, r) -> shuffled index lists for one epoch
// All samples must have the same C, H and W (crop or resize first). Points outside the image are not
// drawn (random_patches drops them anyway). Tensors are built in host memory; copy them to a device
// backend when training there.
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "microcount/core/backend.hpp"
#include "microcount/core/error.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/core/rng.hpp"
#include "microcount/core/tensor.hpp"
#include "microcount/data/dataset.hpp"
#include "microcount/target/gaussian.hpp"

namespace microcount::data {

struct batch_options {
  double sigma = 2.0;        // Gaussian σ in pixels
  double scale = 1.0;        // density multiplier (the yardstick trains on ×100)
  std::size_t classes = 0;   // density channels; 0: the samples' label count (at least 1)
  double truncate = 4.0;     // kernel half-width in σ
};

template <backend_tag B>
struct training_batch {
  tensor<float, B> images;    // [N, C, H, W]
  tensor<float, B> density;   // [N, classes, H, W]
  std::vector<std::size_t> counts;  // [N] points drawn per sample
};

template <backend_tag B>
training_batch<B> make_batch(std::span<const sample> samples, const batch_options& o = {}) {
  if constexpr (!B::host_memory) {
    // Device backends: the batch is built in host memory, then copied over in two transfers.
    training_batch<backend::reference> host = make_batch<backend::reference>(samples, o);
    training_batch<B> out{tensor<float, B>(host.images.shape()), tensor<float, B>(host.density.shape()), std::move(host.counts)};
    out.images.upload(host.images.data());
    out.density.upload(host.density.data());
    return out;
  }
  require(!samples.empty(), "make_batch", "no samples");
  const sample& first = samples[0];
  const std::size_t n = samples.size(), c = first.channels(), h = first.height(), w = first.width();
  std::size_t classes = o.classes ? o.classes : std::max<std::size_t>(1, first.labels.size());
  for (const auto& s : samples) {
    require(s.image.frames() == 1, s.name, "make_batch takes still images (" + std::to_string(s.image.frames()) + " frames)");
    require(s.channels() == c && s.height() == h && s.width() == w, s.name,
            "is " + std::to_string(s.channels()) + "x" + std::to_string(s.height()) + "x" + std::to_string(s.width()) +
                " (CxHxW), the batch's first sample " + std::to_string(c) + "x" + std::to_string(h) + "x" +
                std::to_string(w));
  }
  training_batch<B> out{tensor<float, B>({static_cast<index_t>(n), static_cast<index_t>(c), static_cast<index_t>(h),
                                          static_cast<index_t>(w)}),
                        tensor<float, B>({static_cast<index_t>(n), static_cast<index_t>(classes), static_cast<index_t>(h),
                                          static_cast<index_t>(w)}),
                        std::vector<std::size_t>(n)};
  target::gaussian_options g;
  g.sigma = o.sigma;
  g.truncate = o.truncate;
  g.classes = classes;
  g.skip_outside = true;
  const std::size_t image_values = c * h * w, map_values = classes * h * w;
  for (std::size_t i = 0; i < n; ++i) {
    const sample& s = samples[i];
    std::memcpy(out.images.data() + i * image_values, s.image.pixels.data(), image_values * sizeof(float));
    xt::xtensor<float, 3> d;  // [classes, H, W]
    try {
      d = target::gaussian_density(s.points, h, w, g);
    } catch (const error& e) {
      throw error(s.name, e.what());
    }
    float* dst = out.density.data() + i * map_values;
    const float k = static_cast<float>(o.scale);
    for (std::size_t j = 0; j < map_values; ++j) dst[j] = d.data()[j] * k;
    std::size_t inside = 0;
    for (const auto& p : s.points)
      inside += p.x >= -0.5 && p.x <= static_cast<double>(w) - 0.5 && p.y >= -0.5 && p.y <= static_cast<double>(h) - 0.5;
    out.counts[i] = inside;
  }
  return out;
}

// One epoch's batches of indices into a view of `size` samples: a Fisher–Yates shuffle driven by `r`,
// cut into runs of batch_size; the last, shorter run is kept unless drop_last.
inline std::vector<std::vector<std::size_t>> epoch_batches(std::size_t size, std::size_t batch_size, rng& r,
                                                           bool drop_last = false) {
  require(batch_size > 0, "epoch_batches", "batch_size must be > 0");
  std::vector<std::size_t> order(size);
  for (std::size_t i = 0; i < size; ++i) order[i] = i;
  for (std::size_t i = size; i > 1; --i) std::swap(order[i - 1], order[r.below(i)]);
  std::vector<std::vector<std::size_t>> out;
  for (std::size_t at = 0; at < size; at += batch_size) {
    const std::size_t end = std::min(size, at + batch_size);
    if (drop_last && end - at < batch_size) break;
    out.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(at), order.begin() + static_cast<std::ptrdiff_t>(end));
  }
  return out;
}

// Draws `indices` from `view` (in parallel, see fetch) and stacks them.
template <backend_tag B, sample_view V>
training_batch<B> make_batch(const V& view, std::span<const std::size_t> indices, rng& r, const batch_options& o = {}) {
  const std::vector<sample> samples = fetch(view, indices, r);
  return make_batch<B>(std::span<const sample>(samples), o);
}

}  // namespace microcount::data
