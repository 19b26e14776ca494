#pragma once
// A seeded synthetic fluorescence data set: images of blurred cells (or virus particles) with point
// annotations at their centres, for demos, tests and sanity checks of a whole pipeline.
//
// Each image: a random number of objects in [min_cells, max_cells], each of a class drawn uniformly;
// every class has its own look (size, brightness, blob / ring / budding shape) so a network can tell
// them apart. A share of the objects is placed touching or overlapping an earlier one, the rest apart.
// The expected photon image = uneven background + objects, blurred by the optics (Gaussian PSF); the
// camera then records Poisson(photons) · gain + offset + Gaussian read noise, rounded and clipped to
// the output type. Everything random comes from microcount::rng, so the same options (seed included)
// give the same bytes (with the same build: std::exp and friends may differ in the last bit between C
// libraries). write_synthetic_dataset puts it on disk as the vgg-cells folder is laid out: image_001.tif …
// and a CVAT for Images 1.1 annotations.xml.
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
#include "microcount/io/annotations.hpp"
#include "microcount/io/cvat_xml.hpp"
#include "microcount/io/image.hpp"
#include "microcount/io/tiff.hpp"

namespace microcount::data {

enum class object_shape : std::uint8_t {
  blob,     // filled Gaussian spot
  ring,     // bright rim (envelope) around a dim core
  budding,  // a blob with a smaller bud attached on one side; the point marks the main body
};

// How one class looks. Radii in pixels, brightness in photons at the brightest point above background.
struct object_look {
  std::string name;
  object_shape shape = object_shape::blob;
  double radius_min = 3, radius_max = 5;
  double brightness_min = 60, brightness_max = 120;
  double elongation_max = 1.3;  // major / minor axis ratio is drawn in [1, elongation_max]
};

// Distinct looks for `classes` classes (1 to 8): 1 → "cell"; 2 → "naked", "enveloped";
// 3 → "naked", "budding", "enveloped"; more → "class0"… with growing size and alternating shapes.
inline std::vector<object_look> default_looks(std::size_t classes) {
  const object_look cell{"cell", object_shape::blob, 3.0, 5.0, 60, 120, 1.3};
  const object_look naked{"naked", object_shape::blob, 2.5, 3.5, 100, 150, 1.2};
  const object_look budding{"budding", object_shape::budding, 4.0, 5.0, 55, 80, 1.2};
  const object_look enveloped{"enveloped", object_shape::ring, 6.5, 8.0, 45, 70, 1.15};
  switch (classes) {
    case 1: return {cell};
    case 2: return {naked, enveloped};
    case 3: return {naked, budding, enveloped};
    default: break;
  }
  if (classes == 0 || classes > 8) throw error("synth", "classes must be 1 to 8, got " + std::to_string(classes));
  std::vector<object_look> looks;
  const object_shape shapes[] = {object_shape::blob, object_shape::ring, object_shape::budding};
  for (std::size_t k = 0; k < classes; ++k) {
    object_look l;
    l.name = "class" + std::to_string(k);
    l.shape = shapes[k % 3];
    l.radius_min = 2.5 + 1.5 * static_cast<double>(k);
    l.radius_max = l.radius_min + 1.0;
    l.brightness_min = 140.0 - 10.0 * static_cast<double>(k);
    l.brightness_max = l.brightness_min + 30.0;
    l.elongation_max = 1.2;
    looks.push_back(l);
  }
  return looks;
}

struct synth_options {
  std::size_t images = 8;
  std::size_t height = 256;
  std::size_t width = 256;
  std::size_t classes = 1;            // ignored when `looks` is given
  std::size_t min_cells = 30;         // objects per image, inclusive range
  std::size_t max_cells = 80;
  std::uint64_t seed = 1;
  io::dtype dtype = io::dtype::uint8; // uint8 or uint16
  double touching = 0.25;             // share of objects placed touching / overlapping an earlier one
  double background = 12;             // mean background, photons per pixel
  double background_unevenness = 0.5; // relative amplitude of the smooth background variation
  double blur_sigma = 1.0;            // optics point-spread function (Gaussian), pixels
  double gain = 0;                    // ADU per photon; 0 → 1 for uint8, 16 for uint16
  double offset = -1;                 // camera offset in ADU; < 0 → 4 for uint8, 100 for uint16
  double read_noise = 1.5;            // Gaussian read noise, ADU
  std::vector<object_look> looks{};   // one per class; empty → default_looks(classes)
  std::string name_prefix = "image_"; // file names: image_001.tif, image_002.tif, …
};

struct synthetic_dataset {
  std::vector<io::image> images;  // each [1, 1, H, W], integer values of the output type
  io::annotations annotations;    // format "cvat_images"; one point per object centre, label = class
};

namespace detail {

// Mirror an index into [0, n) (… 2 1 | 0 1 2 … n-1 | n-2 …), for any distance outside.
inline std::ptrdiff_t mirror(std::ptrdiff_t i, std::ptrdiff_t n) {
  if (n == 1) return 0;
  const std::ptrdiff_t period = 2 * (n - 1);
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

// Separable Gaussian blur with mirrored borders, in place; plane is [H, W] row-major.
inline void gaussian_blur(std::vector<double>& plane, std::size_t height, std::size_t width, double sigma) {
  if (sigma <= 0) return;
  const auto reach = static_cast<std::ptrdiff_t>(std::ceil(3 * sigma));
  std::vector<double> kernel(static_cast<std::size_t>(2 * reach + 1));  // [2 reach + 1]
  double total = 0;
  for (std::ptrdiff_t k = -reach; k <= reach; ++k)
    total += kernel[k + reach] = std::exp(-0.5 * static_cast<double>(k * k) / (sigma * sigma));
  for (auto& k : kernel) k /= total;
  const auto h = static_cast<std::ptrdiff_t>(height), w = static_cast<std::ptrdiff_t>(width);
  std::vector<double> pass(plane.size());  // [H, W]
  for (std::ptrdiff_t r = 0; r < h; ++r)
    for (std::ptrdiff_t c = 0; c < w; ++c) {
      double s = 0;
      for (std::ptrdiff_t k = -reach; k <= reach; ++k) s += kernel[k + reach] * plane[r * w + mirror(c + k, w)];
      pass[r * w + c] = s;
    }
  for (std::ptrdiff_t r = 0; r < h; ++r)
    for (std::ptrdiff_t c = 0; c < w; ++c) {
      double s = 0;
      for (std::ptrdiff_t k = -reach; k <= reach; ++k) s += kernel[k + reach] * pass[mirror(r + k, h) * w + c];
      plane[r * w + c] = s;
    }
}

struct placed_object {
  double x, y;          // centre (column, row)
  double radius;
  int label;
};

// Adds one object's expected photons to `plane` ([H, W]).
inline void render_object(std::vector<double>& plane, std::size_t height, std::size_t width,
                          const placed_object& o, const object_look& look, rng& random) {
  const double brightness = random.uniform(look.brightness_min, look.brightness_max);
  const double elongation = random.uniform(1.0, std::max(1.0, look.elongation_max));
  const double angle = random.uniform(0.0, std::numbers::pi);
  const double bud_angle = random.uniform(0.0, 2 * std::numbers::pi);
  const double cos_a = std::cos(angle), sin_a = std::sin(angle);
  const double stretch = std::sqrt(elongation);  // axes R·√e and R/√e keep the area of a circle of radius R
  const double R = o.radius;
  const double extent = 2.0 * R + 3.0;           // the bud reaches 1.7 R; Gaussian tails die by then
  const auto r0 = static_cast<std::ptrdiff_t>(std::max(0.0, std::floor(o.y - extent)));
  const auto r1 = static_cast<std::ptrdiff_t>(std::min(static_cast<double>(height) - 1, std::ceil(o.y + extent)));
  const auto c0 = static_cast<std::ptrdiff_t>(std::max(0.0, std::floor(o.x - extent)));
  const auto c1 = static_cast<std::ptrdiff_t>(std::min(static_cast<double>(width) - 1, std::ceil(o.x + extent)));
  const double blob_sigma = R / 2;  // the blob falls to e^-2 of its peak at the radius
  const double bud_x = o.x + 1.2 * R * std::cos(bud_angle), bud_y = o.y + 1.2 * R * std::sin(bud_angle);
  for (std::ptrdiff_t r = r0; r <= r1; ++r)
    for (std::ptrdiff_t c = c0; c <= c1; ++c) {
      // Distance in the object's own frame, scaled so an ellipse of "radius" R is the level set ρ = R.
      const double dx = static_cast<double>(c) - o.x, dy = static_cast<double>(r) - o.y;
      const double u = (dx * cos_a + dy * sin_a) / stretch, v = (-dx * sin_a + dy * cos_a) * stretch;
      const double rho2 = u * u + v * v;
      double value = 0;
      switch (look.shape) {
        case object_shape::blob:
          value = std::exp(-rho2 / (2 * blob_sigma * blob_sigma));
          break;
        case object_shape::ring: {
          const double rim = std::sqrt(rho2) - 0.85 * R;
          const double core_sigma = R / 3;
          value = std::exp(-rim * rim / (2 * 1.1 * 1.1)) + 0.3 * std::exp(-rho2 / (2 * core_sigma * core_sigma));
          break;
        }
        case object_shape::budding: {
          const double bx = static_cast<double>(c) - bud_x, by = static_cast<double>(r) - bud_y;
          const double bud_sigma = 0.5 * blob_sigma;
          value = std::exp(-rho2 / (2 * blob_sigma * blob_sigma)) +
                  0.8 * std::exp(-(bx * bx + by * by) / (2 * bud_sigma * bud_sigma));
          break;
        }
      }
      plane[static_cast<std::size_t>(r) * width + static_cast<std::size_t>(c)] += brightness * value;
    }
}

// Smooth uneven illumination: a tilt plus two broad bumps, mean ≈ `mean`, never below 20 % of it.
inline void add_background(std::vector<double>& plane, std::size_t height, std::size_t width, double mean,
                           double unevenness, rng& random) {
  const double tilt_x = random.uniform(-1.0, 1.0), tilt_y = random.uniform(-1.0, 1.0);
  struct bump { double x, y, sigma, amplitude; } bumps[2];
  for (auto& b : bumps)
    b = {random.uniform(0.0, static_cast<double>(width)), random.uniform(0.0, static_cast<double>(height)),
         random.uniform(0.2, 0.5) * static_cast<double>(std::max(height, width)), random.uniform(-0.6, 1.0)};
  for (std::size_t r = 0; r < height; ++r)
    for (std::size_t c = 0; c < width; ++c) {
      const double fx = static_cast<double>(c) / static_cast<double>(width) - 0.5;
      const double fy = static_cast<double>(r) / static_cast<double>(height) - 0.5;
      double field = 0.5 * (tilt_x * fx + tilt_y * fy);
      for (const auto& b : bumps) {
        const double dx = static_cast<double>(c) - b.x, dy = static_cast<double>(r) - b.y;
        field += 0.5 * b.amplitude * std::exp(-(dx * dx + dy * dy) / (2 * b.sigma * b.sigma));
      }
      plane[r * width + c] += mean * std::max(0.2, 1.0 + unevenness * field);
    }
}

inline std::string image_name(const std::string& prefix, std::size_t index, std::size_t count) {
  std::string digits = std::to_string(index + 1);
  const std::size_t width = std::max<std::size_t>(3, std::to_string(count).size());
  return prefix + std::string(width - std::min(width, digits.size()), '0') + digits + ".tif";
}

// Positions, radii and labels of one image's objects.
inline std::vector<placed_object> place_objects(const synth_options& o, const std::vector<object_look>& looks,
                                                rng& random) {
  const std::size_t count = o.min_cells + random.below(o.max_cells - o.min_cells + 1);
  const double w = static_cast<double>(o.width), h = static_cast<double>(o.height);
  const auto inside = [&](double x, double y) { return x >= 0 && y >= 0 && x <= w - 1 && y <= h - 1; };
  std::vector<placed_object> objects;
  objects.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    const int label = static_cast<int>(random.below(looks.size()));
    const auto& look = looks[static_cast<std::size_t>(label)];
    const double radius = random.uniform(look.radius_min, look.radius_max);
    placed_object placed{0, 0, radius, label};
    bool done = false;
    if (!objects.empty() && random.uniform() < o.touching) {
      // Touching or overlapping a random earlier object: centre distance 75–100 % of the summed radii.
      for (int attempt = 0; attempt < 20 && !done; ++attempt) {
        const auto& other = objects[random.below(objects.size())];
        const double angle = random.uniform(0.0, 2 * std::numbers::pi);
        const double distance = (radius + other.radius) * random.uniform(0.75, 1.0);
        placed.x = other.x + distance * std::cos(angle);
        placed.y = other.y + distance * std::sin(angle);
        done = inside(placed.x, placed.y);
      }
    }
    // Apart from every earlier object (a gap of ≥ 1 px) when a few tries find room; crowded images
    // accept the last try.
    for (int attempt = 0; attempt < 30 && !done; ++attempt) {
      placed.x = random.uniform(0.0, w - 1);
      placed.y = random.uniform(0.0, h - 1);
      done = std::all_of(objects.begin(), objects.end(), [&](const placed_object& other) {
        return std::hypot(placed.x - other.x, placed.y - other.y) >= radius + other.radius + 1;
      });
    }
    // Annotations carry 1/100 px (what CVAT writes); the image is drawn at the same rounded centre.
    placed.x = std::clamp(std::round(placed.x * 100) / 100, 0.0, w - 1);
    placed.y = std::clamp(std::round(placed.y * 100) / 100, 0.0, h - 1);
    objects.push_back(placed);
  }
  return objects;
}

inline void check_options(const synth_options& o, std::size_t classes) {
  const auto fail = [](const std::string& problem) { throw error("synth", problem); };
  if (o.images == 0 || o.images > 1'000'000) fail("images must be 1 to 1000000, got " + std::to_string(o.images));
  const auto side = limits().max_image_side;
  if (o.height < 16 || o.width < 16 || o.height > side || o.width > side)
    fail("image size must be 16 to " + std::to_string(side) + " pixels a side");
  if (static_cast<double>(o.images) * static_cast<double>(o.height * o.width) * 4 >
      static_cast<double>(limits().max_total_bytes))
    fail("images × height × width exceeds the memory limit (limits().max_total_bytes)");
  if (o.min_cells > o.max_cells) fail("min_cells (" + std::to_string(o.min_cells) + ") exceeds max_cells (" +
                                      std::to_string(o.max_cells) + ")");
  if (o.max_cells > o.height * o.width / 16) fail("max_cells must be at most one object per 16 pixels");
  if (classes == 0 || classes > 64) fail("classes must be 1 to 64");
  if (o.dtype != io::dtype::uint8 && o.dtype != io::dtype::uint16) fail("dtype must be uint8 or uint16");
  if (!(o.touching >= 0 && o.touching <= 1)) fail("touching must be in [0, 1]");
  if (!(o.background >= 0 && o.background_unevenness >= 0 && o.blur_sigma >= 0 && o.blur_sigma <= 20 &&
        o.read_noise >= 0 && o.gain >= 0 && std::isfinite(o.background) && std::isfinite(o.offset) &&
        std::isfinite(o.gain) && std::isfinite(o.read_noise) && std::isfinite(o.background_unevenness)))
    fail("background, unevenness, blur (≤ 20), gain and read noise must be finite and ≥ 0");
  for (const auto& l : o.looks)
    if (!(l.radius_min > 0 && l.radius_min <= l.radius_max && l.radius_max <= 64 && l.brightness_min >= 0 &&
          l.brightness_min <= l.brightness_max && l.elongation_max >= 1 && !l.name.empty()))
      fail("look '" + l.name + "' needs a name, 0 < radius_min ≤ radius_max ≤ 64, 0 ≤ brightness_min ≤ max");
}

// One seed per image, drawn in order from `seed`: each image is generated from its own, so a data set
// does not depend on the thread count.
inline std::vector<std::uint64_t> image_seeds(std::uint64_t seed, std::size_t images) {
  rng seeds(seed);
  std::vector<std::uint64_t> out(images);
  for (auto& s : out) s = seeds.next();
  return out;
}

// One image before the camera: its objects and the expected photons they and the background give.
struct scene {
  std::vector<placed_object> objects;
  std::vector<double> photons;  // [H, W] expected photons: objects blurred by the optics, plus background
};

// Draws one image's scene from `random` (objects, their rendering, then the background, in this order:
// every seeded data set depends on it).
inline scene make_scene(const synth_options& o, const std::vector<object_look>& looks, rng& random) {
  const std::size_t h = o.height, w = o.width;
  scene s;
  s.objects = place_objects(o, looks, random);
  s.photons.assign(h * w, 0.0);  // [H, W]
  for (const auto& ob : s.objects) render_object(s.photons, h, w, ob, looks[static_cast<std::size_t>(ob.label)], random);
  gaussian_blur(s.photons, h, w, o.blur_sigma);
  add_background(s.photons, h, w, o.background, o.background_unevenness, random);
  return s;
}

// CVAT for Images annotations of generated images: one point per object centre, label = class.
inline io::annotations scene_annotations(const synth_options& o, const std::vector<object_look>& looks,
                                         const std::vector<std::vector<placed_object>>& objects) {
  io::annotations a;
  a.format = "cvat_images";
  for (const auto& l : looks) a.labels.push_back(l.name);
  for (std::size_t i = 0; i < objects.size(); ++i) {
    io::image_points im{image_name(o.name_prefix, i, objects.size()), static_cast<std::int64_t>(o.width),
                        static_cast<std::int64_t>(o.height), 0, {}};
    for (const auto& ob : objects[i]) im.points.push_back(io::point{ob.x, ob.y, ob.label, -1, -1});
    a.images.push_back(std::move(im));
  }
  return a;
}

}  // namespace detail

// Generates the data set in memory. Images are generated in parallel, each from its own seed drawn
// from `seed`, so the result does not depend on the thread count.
inline synthetic_dataset make_synthetic_dataset(const synth_options& options) {
  const std::vector<object_look> looks = options.looks.empty() ? default_looks(options.classes) : options.looks;
  detail::check_options(options, looks.size());
  const bool wide = options.dtype == io::dtype::uint16;
  const double gain = options.gain > 0 ? options.gain : (wide ? 16.0 : 1.0);
  const double offset = options.offset >= 0 ? options.offset : (wide ? 100.0 : 4.0);
  const double ceiling = wide ? 65535.0 : 255.0;
  const std::size_t h = options.height, w = options.width;
  const std::vector<std::uint64_t> image_seed = detail::image_seeds(options.seed, options.images);

  synthetic_dataset out;
  out.images.resize(options.images);
  std::vector<std::vector<detail::placed_object>> objects(options.images);
  parallel_for(0, static_cast<std::int64_t>(options.images), [&](std::int64_t i) {
    rng random(image_seed[static_cast<std::size_t>(i)]);
    detail::scene scene = detail::make_scene(options, looks, random);
    objects[static_cast<std::size_t>(i)] = std::move(scene.objects);
    const std::vector<double>& photons = scene.photons;  // [H, W]
    io::image& image = out.images[static_cast<std::size_t>(i)];
    image.pixels = xt::xtensor<float, 4>::from_shape({1, 1, h, w});  // [1, 1, H, W]
    image.source_dtype = options.dtype;
    float* pixel = image.pixels.data();
    for (std::size_t k = 0; k < h * w; ++k) {
      const double recorded = offset + gain * static_cast<double>(random.poisson(photons[k])) +
                              random.normal(0.0, options.read_noise);
      pixel[k] = static_cast<float>(std::clamp(std::round(recorded), 0.0, ceiling));
    }
  }, 1);
  out.annotations = detail::scene_annotations(options, looks, objects);
  return out;
}

// Writes every image as `<name>` (TIFF of the data set's type) and then `annotations.xml` (CVAT for
// Images 1.1) into `dir`, creating it. Each file is written atomically and the annotations come last,
// so an interrupted run never leaves an annotations.xml that names missing images.
inline void write_synthetic_dataset(const std::filesystem::path& dir, const synthetic_dataset& dataset) {
  if (dataset.images.size() != dataset.annotations.images.size())
    throw error(dir.string(), "synthetic data set holds " + std::to_string(dataset.images.size()) + " images but " +
                                  std::to_string(dataset.annotations.images.size()) + " annotated images");
  parallel_for(0, static_cast<std::int64_t>(dataset.images.size()), [&](std::int64_t i) {
    const auto& image = dataset.images[static_cast<std::size_t>(i)];
    io::write_tiff(dir / dataset.annotations.images[static_cast<std::size_t>(i)].name, image, image.source_dtype);
  });
  io::write_cvat_images(dir / "annotations.xml", dataset.annotations);
}

// Generates the data set, writes it into `dir` and returns it.
inline synthetic_dataset write_synthetic_dataset(const std::filesystem::path& dir, const synth_options& options) {
  synthetic_dataset dataset = make_synthetic_dataset(options);
  write_synthetic_dataset(dir, dataset);
  return dataset;
}

}  // namespace microcount::data
