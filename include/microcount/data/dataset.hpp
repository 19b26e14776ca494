#pragma once
// A dataset: a folder of images plus point annotations, and the concept every view on it models.
//
//   dataset ds = open_dataset("vgg-cells");        // CVAT annotations.xml beside the images, or one
//                                                  // napari <stem>.csv beside each <stem>.tif
//   sample s = ds.get(7, r);                        // {name, image [F, C, H, W], points, labels}
//
// Samples are in name order. Images are decoded lazily, on the first get() of each, and cached for the
// dataset's lifetime (200 vgg-cells images are 13 MB as float); preload() decodes all of them up front,
// in parallel. Copies of a dataset share the cache, so views may hold their source by value.
//
// A sample view is anything with size() and get(i, rng&) -> sample, const and safe to call from several
// threads at once, each with its own rng: every random choice a view makes comes from the rng it is
// given, so get(i, rng(seed)) always returns the same sample. Views (subset, random_patches, d4, rescale,
// intensity, noise, normalize_*, to_grey) take a view and are views, so they compose.
#include <algorithm>
#include <cctype>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "microcount/core/error.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/core/rng.hpp"
#include "microcount/io/annotation_files.hpp"
#include "microcount/io/annotations.hpp"
#include "microcount/io/image.hpp"
#include "microcount/io/png.hpp"
#include "microcount/io/tiff.hpp"

namespace microcount::data {

// One training example: an image with its points. Points use the image grid of io::point (x = column,
// y = row, the centre of pixel (r, c) at (c, r)); every view that moves pixels moves the points with them.
struct sample {
  std::string name;                  // image file name, e.g. "image_001.tif"
  io::image image;                   // pixels [F, C, H, W]; F = 1 for a still image
  std::vector<io::point> points;     // point.label indexes `labels`
  std::vector<std::string> labels;   // class names of the dataset

  [[nodiscard]] std::size_t height() const { return image.height(); }
  [[nodiscard]] std::size_t width() const { return image.width(); }
  [[nodiscard]] std::size_t channels() const { return image.channels(); }
};

template <class V>
concept sample_view = std::copy_constructible<V> && requires(const V& v, std::size_t i, rng& r) {
  { v.size() } -> std::convertible_to<std::size_t>;
  { v.get(i, r) } -> std::same_as<sample>;
};

namespace detail {

// One image's lazily filled cache entry. The mutex guards only the first load of that image, so
// threads reading different images never wait for each other.
struct image_slot {
  std::mutex lock;
  std::shared_ptr<const io::image> pixels;
};

struct dataset_state {
  std::filesystem::path dir;                       // empty for an in-memory dataset
  std::vector<std::string> names;                  // [N] image file names, relative to dir
  std::vector<std::vector<io::point>> points;      // [N]
  std::vector<std::pair<std::int64_t, std::int64_t>> sizes;  // [N] (width, height) the annotation states, 0 = unknown
  std::vector<std::string> labels;
  std::vector<std::string> warnings;
  std::unique_ptr<image_slot[]> slots;             // [N]
};

inline bool is_png(const std::filesystem::path& p) {
  std::string e = p.extension().string();
  for (auto& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return e == ".png";
}

// Any image file the dataset can hold → [F, C, H, W] float.
inline io::image load_image(const std::filesystem::path& path) {
  if (!is_png(path)) return io::read_tiff(path);
  const xt::xtensor<std::uint8_t, 3> rgb = io::read_png(path);  // [H, W, C]
  const std::size_t h = rgb.shape()[0], w = rgb.shape()[1], c = rgb.shape()[2];
  io::image im;
  im.source_dtype = io::dtype::uint8;
  im.pixels = xt::xtensor<float, 4>::from_shape({1, c, h, w});  // [1, C, H, W]
  for (std::size_t y = 0; y < h; ++y)
    for (std::size_t x = 0; x < w; ++x)
      for (std::size_t k = 0; k < c; ++k) im.pixels(0, k, y, x) = rgb(y, x, k);
  return im;
}

}  // namespace detail

namespace detail {
struct dataset_builder;
}

class dataset {
 public:
  dataset() : state_(std::make_shared<detail::dataset_state>()) {}

  [[nodiscard]] std::size_t size() const { return state_->names.size(); }
  [[nodiscard]] const std::string& name(std::size_t i) const { return state_->names.at(i); }
  [[nodiscard]] const std::vector<io::point>& points(std::size_t i) const { return state_->points.at(i); }
  [[nodiscard]] const std::vector<std::string>& labels() const { return state_->labels; }
  [[nodiscard]] const std::filesystem::path& folder() const { return state_->dir; }
  // Images of the folder that had no annotation (left out), one line each.
  [[nodiscard]] const std::vector<std::string>& warnings() const { return state_->warnings; }
  [[nodiscard]] std::size_t total_points() const {
    std::size_t n = 0;
    for (const auto& p : state_->points) n += p.size();
    return n;
  }
  // Index of the sample called `image_name`, or size() when there is none.
  [[nodiscard]] std::size_t find(const std::string& image_name) const {
    const auto& n = state_->names;
    return static_cast<std::size_t>(std::find(n.begin(), n.end(), image_name) - n.begin());
  }

  // The decoded image of sample i (loaded on first use, then cached and shared).
  [[nodiscard]] std::shared_ptr<const io::image> image(std::size_t i) const {
    require(i < size(), "dataset", "sample " + std::to_string(i) + " of " + std::to_string(size()));
    auto& slot = state_->slots[i];
    std::lock_guard<std::mutex> hold(slot.lock);
    if (!slot.pixels) {
      const auto path = state_->dir / state_->names[i];
      auto im = std::make_shared<io::image>(detail::load_image(path));
      const auto [w, h] = state_->sizes[i];
      if ((w > 0 && static_cast<std::size_t>(w) != im->width()) || (h > 0 && static_cast<std::size_t>(h) != im->height()))
        throw error(path.string(), "image is " + std::to_string(im->width()) + "x" + std::to_string(im->height()) +
                                       " but the annotation says " + std::to_string(w) + "x" + std::to_string(h));
      slot.pixels = std::move(im);
    }
    return slot.pixels;
  }

  // Decodes every image now (in parallel) instead of on first access.
  void preload() const {
    parallel_for(0, static_cast<std::int64_t>(size()), [&](std::int64_t i) { (void)image(static_cast<std::size_t>(i)); });
  }

  // The sample itself (a copy: views change their samples freely). The rng is not used.
  [[nodiscard]] sample get(std::size_t i, rng&) const {
    return sample{name(i), *image(i), points(i), labels()};
  }

  // An in-memory dataset (synthetic data, tests): images are already decoded.
  static dataset from_samples(std::vector<sample> samples) {
    dataset ds;
    auto& s = *ds.state_;
    const std::size_t n = samples.size();
    s.slots = std::make_unique<detail::image_slot[]>(n);
    for (std::size_t i = 0; i < n; ++i) {
      if (i == 0) s.labels = samples[0].labels;
      require(samples[i].labels == s.labels, samples[i].name, "labels differ from the first sample's");
      s.names.push_back(samples[i].name);
      s.points.push_back(std::move(samples[i].points));
      s.sizes.emplace_back(0, 0);
      s.slots[i].pixels = std::make_shared<io::image>(std::move(samples[i].image));
    }
    return ds;
  }

 private:
  friend struct detail::dataset_builder;
  std::shared_ptr<detail::dataset_state> state_;
};

// Opens a folder of images and annotations (any layout io::read_annotations reads: a CVAT
// annotations.xml beside the images, or one napari CSV per image). Samples are sorted by image name.
// An annotated image missing from the folder is an error naming it (the first 5 and how many); an
// image file with no annotation is left out and reported in warnings(). Images are not decoded yet.
namespace detail {
// open_dataset fills a dataset's state; nothing else may.
struct dataset_builder {
  static dataset_state& state(dataset& ds) { return *ds.state_; }
};
}  // namespace detail

inline dataset open_dataset(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  require(fs::is_directory(dir, ec), dir.string(), "not a folder (a dataset is a folder of images and annotations)");
  io::annotations ann = io::read_annotations(dir);
  std::sort(ann.images.begin(), ann.images.end(), [](const auto& a, const auto& b) { return a.name < b.name; });

  std::vector<std::string> missing;
  for (const auto& im : ann.images)
    if (!fs::is_regular_file(dir / im.name, ec)) missing.push_back(im.name);
  if (!missing.empty()) {
    std::string list;
    for (std::size_t i = 0; i < std::min<std::size_t>(5, missing.size()); ++i) list += (i ? ", " : "") + missing[i];
    if (missing.size() > 5) list += " and " + std::to_string(missing.size() - 5) + " more";
    throw error(dir.string(), std::to_string(missing.size()) + " annotated image(s) not in the folder: " + list);
  }

  dataset ds;
  auto& s = detail::dataset_builder::state(ds);
  s.dir = dir;
  s.labels = ann.labels;
  if (s.labels.empty()) s.labels.push_back("point");
  s.slots = std::make_unique<detail::image_slot[]>(ann.images.size());
  for (auto& im : ann.images) {
    s.names.push_back(im.name);
    s.sizes.emplace_back(im.width, im.height);
    s.points.push_back(std::move(im.points));
  }

  std::vector<std::string> unannotated;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string file = e.path().filename().string();
    if (!e.is_regular_file(ec) || file.empty() || file[0] == '.') continue;
    if (!io::files_detail::is_image_extension(e.path().extension().string())) continue;
    if (std::find(s.names.begin(), s.names.end(), file) == s.names.end()) unannotated.push_back(file);
  }
  std::sort(unannotated.begin(), unannotated.end());
  for (const auto& f : unannotated) s.warnings.push_back(f + ": no annotation, left out of the dataset");
  return ds;
}

// ---- subset ------------------------------------------------------------------------------------

// The samples `indices` of `source`, in that order (repeats allowed).
template <sample_view V>
class subset_view {
 public:
  subset_view(V source, std::vector<std::size_t> indices) : source_(std::move(source)), indices_(std::move(indices)) {
    for (std::size_t i : indices_)
      require(i < source_.size(), "subset", "index " + std::to_string(i) + " outside the " +
                                                std::to_string(source_.size()) + " samples");
  }
  [[nodiscard]] std::size_t size() const { return indices_.size(); }
  [[nodiscard]] sample get(std::size_t i, rng& r) const { return source_.get(indices_.at(i), r); }
  [[nodiscard]] const std::vector<std::size_t>& indices() const { return indices_; }

 private:
  V source_;
  std::vector<std::size_t> indices_;
};

template <sample_view V>
subset_view<V> subset(V source, std::vector<std::size_t> indices) {
  return subset_view<V>(std::move(source), std::move(indices));
}

// ---- transform: the building block of the per-sample views ----------------------------------

// get(i, r) = fn(source.get(i, r), r): the source draws its random numbers first, then fn.
template <sample_view V, class F>
class transform_view {
  static_assert(std::is_invocable_r_v<sample, const F&, sample, rng&>,
                "microcount: a transform is callable as sample(sample, rng&) const");

 public:
  transform_view(V source, F fn) : source_(std::move(source)), fn_(std::move(fn)) {}
  [[nodiscard]] std::size_t size() const { return source_.size(); }
  [[nodiscard]] sample get(std::size_t i, rng& r) const { return fn_(source_.get(i, r), r); }
  [[nodiscard]] const V& source() const { return source_; }

 private:
  V source_;
  F fn_;
};

template <sample_view V, class F>
transform_view<V, F> transform(V source, F fn) {
  return transform_view<V, F>(std::move(source), std::move(fn));
}

// ---- cached: compute the deterministic front of a chain once ------------------------------------

// Keeps each sample of `source` after its first get(), so an expensive deterministic chain (decode,
// to_grey, normalise a whole image) runs once per image instead of once per draw. The source is asked
// with an rng seeded from the index, not the caller's: a random source would be frozen at its first
// draw, so put only deterministic views under cached(). Copies share the cache; one mutex per entry.
template <sample_view V>
class cached_view {
 public:
  explicit cached_view(V source)
      : source_(std::move(source)), slots_(std::make_shared<std::vector<slot>>(source_.size())) {}
  [[nodiscard]] std::size_t size() const { return slots_->size(); }
  [[nodiscard]] sample get(std::size_t i, rng&) const {
    require(i < size(), "cached", "sample " + std::to_string(i) + " of " + std::to_string(size()));
    slot& e = (*slots_)[i];
    std::lock_guard<std::mutex> hold(e.lock);
    if (!e.value) {
      rng own(0x5eedcac4e0000000ull + i);
      e.value = std::make_shared<const sample>(source_.get(i, own));
    }
    return *e.value;
  }

 private:
  struct slot {
    std::mutex lock;
    std::shared_ptr<const sample> value;
  };
  V source_;
  std::shared_ptr<std::vector<slot>> slots_;
};

template <sample_view V>
cached_view<V> cached(V source) {
  return cached_view<V>(std::move(source));
}

// ---- drawing many samples ----------------------------------------------------------------------

// The samples `indices` of `view`, drawn in parallel. One seed per sample is drawn from `r` first, in
// order, so the result does not depend on the thread count.
template <sample_view V>
std::vector<sample> fetch(const V& view, std::span<const std::size_t> indices, rng& r) {
  std::vector<std::uint64_t> seeds(indices.size());
  for (auto& s : seeds) s = r.next();
  std::vector<sample> out(indices.size());
  parallel_for(0, static_cast<std::int64_t>(indices.size()), [&](std::int64_t k) {
    rng own(seeds[static_cast<std::size_t>(k)]);
    out[static_cast<std::size_t>(k)] = view.get(indices[static_cast<std::size_t>(k)], own);
  });
  return out;
}

}  // namespace microcount::data
