#pragma once
// Clean + noisy image pairs for measuring denoising (PSNR / SSIM against the truth) and counting on noisy
// data: data/synth.hpp's fluorescence scenes (same objects, background, optics), with the photon budget
// scaled down so shot noise dominates, as in low-light live imaging.
//
//   clean = offset + gain · E[photons]                                   (float, the noise-free truth)
//   noisy = round(offset + gain · Poisson(photons) + Normal(0, read_noise)), clipped to [0, 65535]
//
//   data::noisy_synth_options o;  o.scene.images = 8;  o.photon_scale = 0.2;
//   auto pairs = data::make_noisy_pairs(o);
//   data::write_noisy_pairs("set", pairs);   // set/noisy/image_001.tif (uint16) + annotations.xml,
//                                            // set/clean/image_001.tif (float32) + annotations.xml
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "microcount/core/error.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/core/rng.hpp"
#include "microcount/data/synth.hpp"
#include "microcount/io/cvat_xml.hpp"
#include "microcount/io/image.hpp"
#include "microcount/io/tiff.hpp"

namespace microcount::data {

struct noisy_synth_options {
  synth_options scene;        // images, size, objects, looks, background, blur, read noise, seed (dtype ignored)
  double photon_scale = 0.2;  // multiplies every expected photon count (objects and background): lower = noisier
  double gain = 1.0;          // ADU per photon
  double offset = 10.0;       // camera offset, ADU
};

struct noisy_pair_set {
  std::vector<io::image> clean;  // [1, 1, H, W] each, float32 truth
  std::vector<io::image> noisy;  // [1, 1, H, W] each, integer values (uint16)
  io::annotations annotations;   // object centres (the same for both), CVAT for Images
};

inline noisy_pair_set make_noisy_pairs(const noisy_synth_options& o) {
  const auto& s = o.scene;
  const std::vector<object_look> looks = s.looks.empty() ? default_looks(s.classes) : s.looks;
  detail::check_options(s, looks.size());
  require(std::isfinite(o.photon_scale) && o.photon_scale > 0 && o.photon_scale <= 1000, "synth noisy",
          "photon_scale must be in (0, 1000], got " + std::to_string(o.photon_scale));
  require(std::isfinite(o.gain) && o.gain > 0 && std::isfinite(o.offset) && o.offset >= 0, "synth noisy",
          "gain must be positive and offset ≥ 0");
  const std::size_t h = s.height, w = s.width;
  const std::vector<std::uint64_t> image_seed = detail::image_seeds(s.seed, s.images);

  noisy_pair_set out;
  out.clean.resize(s.images);
  out.noisy.resize(s.images);
  std::vector<std::vector<detail::placed_object>> objects(s.images);
  parallel_for(0, static_cast<std::int64_t>(s.images), [&](std::int64_t i) {
    const auto k = static_cast<std::size_t>(i);
    rng random(image_seed[k]);
    detail::scene scene = detail::make_scene(s, looks, random);
    objects[k] = std::move(scene.objects);
    const std::vector<double>& photons = scene.photons;  // [H, W]
    io::image& clean = out.clean[k];
    io::image& noisy = out.noisy[k];
    clean.pixels = xt::xtensor<float, 4>::from_shape({1, 1, h, w});  // [1, 1, H, W]
    noisy.pixels = xt::xtensor<float, 4>::from_shape({1, 1, h, w});  // [1, 1, H, W]
    clean.source_dtype = io::dtype::float32;
    noisy.source_dtype = io::dtype::uint16;
    for (std::size_t p = 0; p < h * w; ++p) {
      const double mean = o.photon_scale * photons[p];
      clean.pixels.data()[p] = static_cast<float>(o.offset + o.gain * mean);
      const double recorded = o.offset + o.gain * static_cast<double>(random.poisson(mean)) + random.normal(0.0, s.read_noise);
      noisy.pixels.data()[p] = static_cast<float>(std::clamp(std::round(recorded), 0.0, 65535.0));
    }
  }, 1);
  out.annotations = detail::scene_annotations(s, looks, objects);
  return out;
}

// dir/noisy/<name> (uint16) and dir/clean/<name> (float32), each folder with the same annotations.xml
// (written last, so an interrupted run never leaves annotations naming missing images).
inline void write_noisy_pairs(const std::filesystem::path& dir, const noisy_pair_set& set) {
  require(set.clean.size() == set.noisy.size() && set.noisy.size() == set.annotations.images.size(), dir.string(),
          "clean, noisy and annotated image counts differ");
  for (const char* sub : {"noisy", "clean"}) {
    std::error_code ec;
    std::filesystem::create_directories(dir / sub, ec);
    require(!ec, (dir / sub).string(), "cannot create folder: " + ec.message());
  }
  parallel_for(0, static_cast<std::int64_t>(set.noisy.size()), [&](std::int64_t i) {
    const auto k = static_cast<std::size_t>(i);
    const auto& name = set.annotations.images[k].name;
    io::write_tiff(dir / "noisy" / name, set.noisy[k], io::dtype::uint16);
    io::write_tiff(dir / "clean" / name, set.clean[k], io::dtype::float32);
  });
  io::write_cvat_images(dir / "noisy" / "annotations.xml", set.annotations);
  io::write_cvat_images(dir / "clean" / "annotations.xml", set.annotations);
}

}  // namespace microcount::data
