// microcount demo: the whole non-network pipeline on a synthetic data set, end to end, from disk.
//   synthesise → write TIFF + CVAT XML → read back → density targets (checked against the counts)
//   → classical baseline detector on the images → one-to-one matching → detection and count metrics.
// The baseline is a matched filter: normalised cross-correlation of the image with one template per
// class (the look the generator draws), local maxima of the best correlation (post::find_peaks) above a
// fixed score, class = the template that correlates best there. A trained network replaces it later.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <xtensor/xtensor.hpp>

#include "command.hpp"
#include "microcount/data/synth.hpp"
#include "microcount/eval/evaluate.hpp"
#include "microcount/io/annotation_files.hpp"
#include "microcount/io/tiff.hpp"
#include "microcount/post/peaks.hpp"
#include "microcount/target/gaussian.hpp"

namespace {

using microcount::error;
namespace io = microcount::io;
namespace data = microcount::data;
namespace eval = microcount::eval;

const char* const usage =
    "usage: microcount demo [--out DIR] [--images N] [--classes K] [--seed S] [--radius R]\n\n"
    "Runs the pipeline without a network on a synthetic fluorescence data set:\n"
    "  1. writes N images (default 8, 256×256, K classes, default 2) as DIR/image_001.tif …\n"
    "     and DIR/annotations.xml (CVAT for Images 1.1); DIR defaults to ./microcount-demo\n"
    "  2. reads them back from disk\n"
    "  3. builds unit-mass Gaussian density targets and checks each sums to its image's count\n"
    "  4. detects objects with a classical baseline (matched filter per class + local maxima)\n"
    "  5. matches detections to the annotations within R pixels (default 5), per class\n"
    "Prints a report, then one JSON line: the metrics of `microcount match` plus density_check.";

// ---- the baseline detector --------------------------------------------------------------------

struct class_template {
  int half = 0;                // the template is (2 half + 1)² pixels
  std::vector<double> weights; // [(2 half + 1)²], zero mean, unit norm
};

// The mean look of a class as the camera sees it (the optics blur σ = 1 folded into the widths).
class_template make_template(const data::object_look& look, double blur_sigma) {
  const double R = (look.radius_min + look.radius_max) / 2;
  class_template t;
  t.half = static_cast<int>(std::ceil(1.3 * R + 3));
  const int side = 2 * t.half + 1;
  t.weights.resize(static_cast<std::size_t>(side * side));
  const auto widen = [&](double s) { return std::sqrt(s * s + blur_sigma * blur_sigma); };
  for (int r = -t.half; r <= t.half; ++r)
    for (int c = -t.half; c <= t.half; ++c) {
      const double rho = std::hypot(r, c);
      double v = 0;
      if (look.shape == data::object_shape::ring) {
        const double rim = rho - 0.85 * R, w = widen(1.1), core = widen(R / 3);
        v = std::exp(-rim * rim / (2 * w * w)) + 0.3 * std::exp(-rho * rho / (2 * core * core));
      } else {  // blob; a bud points anywhere, so the budding template is its main body
        const double s = widen(R / 2);
        v = std::exp(-rho * rho / (2 * s * s));
      }
      t.weights[static_cast<std::size_t>((r + t.half) * side + c + t.half)] = v;
    }
  double mean = 0, norm = 0;
  for (double v : t.weights) mean += v;
  mean /= static_cast<double>(t.weights.size());
  for (double& v : t.weights) {
    v -= mean;
    norm += v * v;
  }
  for (double& v : t.weights) v /= std::sqrt(norm);
  return t;
}

std::ptrdiff_t mirror(std::ptrdiff_t i, std::ptrdiff_t n) {
  const std::ptrdiff_t period = 2 * (n - 1);
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

// Normalised cross-correlation of plane [H, W] with `t` at every pixel (mirrored borders): [H, W] in [-1, 1].
std::vector<float> correlate(const float* plane, std::ptrdiff_t h, std::ptrdiff_t w, const class_template& t) {
  const std::ptrdiff_t k = t.half, side = 2 * k + 1, ph = h + 2 * k, pw = w + 2 * k;
  std::vector<double> padded(static_cast<std::size_t>(ph * pw));  // [H + 2k, W + 2k]
  for (std::ptrdiff_t r = 0; r < ph; ++r)
    for (std::ptrdiff_t c = 0; c < pw; ++c) padded[r * pw + c] = plane[mirror(r - k, h) * w + mirror(c - k, w)];
  // Integral images of values and squares: window sums in O(1).
  std::vector<double> sum((ph + 1) * (pw + 1), 0.0), squares(sum.size(), 0.0);  // [H + 2k + 1, W + 2k + 1]
  for (std::ptrdiff_t r = 0; r < ph; ++r)
    for (std::ptrdiff_t c = 0; c < pw; ++c) {
      const double v = padded[r * pw + c];
      const std::ptrdiff_t i = (r + 1) * (pw + 1) + c + 1;
      sum[i] = v + sum[i - 1] + sum[i - (pw + 1)] - sum[i - (pw + 1) - 1];
      squares[i] = v * v + squares[i - 1] + squares[i - (pw + 1)] - squares[i - (pw + 1) - 1];
    }
  const auto window = [&](const std::vector<double>& s, std::ptrdiff_t r, std::ptrdiff_t c) {
    const std::ptrdiff_t a = r * (pw + 1) + c, b = (r + side) * (pw + 1) + c;
    return s[b + side] - s[b] - s[a + side] + s[a];
  };
  const double n = static_cast<double>(side * side);
  std::vector<float> out(static_cast<std::size_t>(h * w));  // [H, W]
  for (std::ptrdiff_t r = 0; r < h; ++r)
    for (std::ptrdiff_t c = 0; c < w; ++c) {
      double dot = 0;  // the template has zero mean, so this is the covariance with the window
      for (std::ptrdiff_t i = 0; i < side; ++i) {
        const double* row = &padded[(r + i) * pw + c];
        const double* weights = &t.weights[static_cast<std::size_t>(i * side)];
        for (std::ptrdiff_t j = 0; j < side; ++j) dot += weights[j] * row[j];
      }
      const double s = window(sum, r, c), variance = window(squares, r, c) - s * s / n;
      out[r * w + c] = variance > 1e-9 ? static_cast<float>(dot / std::sqrt(variance)) : 0.0f;
    }
  return out;
}

constexpr float match_score = 0.6f;  // NCC a detection must exceed (noise alone: ~N(0, 1/side))

// Detections of one image [1, 1, H, W]: points with label = best template.
std::vector<io::point> detect(const io::image& image, const std::vector<class_template>& templates) {
  const auto h = static_cast<std::ptrdiff_t>(image.height()), w = static_cast<std::ptrdiff_t>(image.width());
  xt::xtensor<float, 2> best = xt::xtensor<float, 2>::from_shape({image.height(), image.width()});  // [H, W]
  std::fill(best.begin(), best.end(), -1.0f);
  std::vector<int> best_class(static_cast<std::size_t>(h * w), 0);  // [H, W]
  for (std::size_t k = 0; k < templates.size(); ++k) {
    const auto score = correlate(image.pixels.data(), h, w, templates[k]);
    for (std::ptrdiff_t i = 0; i < h * w; ++i)
      if (score[i] > best.data()[i]) best.data()[i] = score[i], best_class[i] = static_cast<int>(k);
  }
  microcount::post::peak_options peaks;
  peaks.min_distance = 2;
  peaks.threshold_abs = match_score;
  peaks.exclude_border = 0;  // objects sit right at the border too
  peaks.refine = microcount::post::subpixel::quadratic;
  std::vector<io::point> found;
  for (const auto& p : microcount::post::find_peaks(best, peaks)) {
    io::point q = p.point;
    const auto r = std::clamp<std::ptrdiff_t>(std::lround(q.y), 0, h - 1);
    const auto c = std::clamp<std::ptrdiff_t>(std::lround(q.x), 0, w - 1);
    q.label = best_class[r * w + c];
    found.push_back(q);
  }
  return found;
}

// ---- the demo ---------------------------------------------------------------------------------

struct stopwatch {
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); }
};

void step(int n, const char* what) {
  std::fprintf(stderr, "[%d/5] %s\n", n, what);
  std::fflush(stderr);
}

int run(const std::vector<std::string>& args) {
  const microcount::cli::arguments a(args);
  a.allow_only({"out", "images", "classes", "seed", "radius"});
  if (!a.positional.empty()) throw error("microcount", "demo takes no positional argument (see microcount demo --help)");
  const std::filesystem::path dir = a.get("out", "microcount-demo");
  data::synth_options o;
  o.images = static_cast<std::size_t>(std::clamp<long long>(a.integer("images", 8), 1, 1000));
  o.classes = static_cast<std::size_t>(a.integer("classes", 2));
  if (o.classes < 1 || o.classes > 3) throw error("microcount", "option --classes must be 1, 2 or 3");
  o.seed = static_cast<std::uint64_t>(a.integer("seed", 1));
  eval::evaluation_options match;
  match.radius = a.number("radius", 5.0);
  match.per_class = true;
  const stopwatch total;

  step(1, "synthesising and writing the data set");
  stopwatch t;
  const auto written = data::write_synthetic_dataset(dir, o);
  std::fprintf(stderr, "      %zu images, %zu objects → %s (%.2f s)\n", written.images.size(),
               written.annotations.total_points(), dir.string().c_str(), t.seconds());

  step(2, "reading it back from disk (TIFF + CVAT XML)");
  t = {};
  const io::annotations truth = io::read_annotations(dir);
  if (truth.images.size() != o.images)
    throw error((dir / "annotations.xml").string(), "names " + std::to_string(truth.images.size()) + " images, " +
                                                        std::to_string(o.images) + " were written");
  std::vector<io::image> images(truth.images.size());
  std::size_t differing = 0;
  for (std::size_t i = 0; i < images.size(); ++i) {
    images[i] = io::read_tiff(dir / truth.images[i].name);
    const auto& want = written.images[i].pixels;
    if (images[i].pixels.shape() != want.shape() || !std::equal(want.begin(), want.end(), images[i].pixels.begin()))
      ++differing;
  }
  if (differing) throw error(dir.string(), std::to_string(differing) + " image(s) read back differ from what was written");
  std::fprintf(stderr, "      %zu images identical to what was written, %zu points (%.2f s)\n", images.size(),
               truth.total_points(), t.seconds());

  step(3, "density targets (unit-mass Gaussians, sigma 2 px) vs counts");
  t = {};
  microcount::target::gaussian_options density;
  density.sigma = 2.0;
  const std::size_t classes = truth.labels.size();
  std::vector<std::vector<double>> density_sum(images.size(), std::vector<double>(classes, 0.0));  // [images][C]
  std::vector<std::vector<double>> true_count = density_sum;
  double worst = 0;
  for (std::size_t i = 0; i < images.size(); ++i) {
    const auto map = microcount::target::gaussian_density(truth, truth.images[i], density);  // [C, H, W]
    const std::size_t plane = map.shape()[1] * map.shape()[2];
    for (std::size_t c = 0; c < classes; ++c) {
      double s = 0;
      for (std::size_t k = 0; k < plane; ++k) s += map.data()[c * plane + k];
      density_sum[i][c] = s;
    }
    for (const auto& p : truth.images[i].points) true_count[i][static_cast<std::size_t>(p.label)] += 1;
    for (std::size_t c = 0; c < classes; ++c) worst = std::max(worst, std::abs(density_sum[i][c] - true_count[i][c]));
  }
  std::fprintf(stderr, "      largest |density sum − count| = %.2e (%.2f s)\n", worst, t.seconds());
  if (!(worst <= 1e-3)) throw error("demo", "a density target does not sum to its count (off by " + std::to_string(worst) + ")");

  step(4, "detecting with the classical baseline (matched filter per class)");
  t = {};
  std::vector<class_template> templates;
  for (const auto& look : data::default_looks(o.classes)) templates.push_back(make_template(look, o.blur_sigma));
  io::annotations predicted;
  predicted.format = "demo_baseline";
  predicted.labels = truth.labels;
  for (const auto& im : truth.images) predicted.images.push_back({im.name, im.width, im.height, 0, {}});
  std::atomic<int> done{0};
  std::mutex print;
  microcount::parallel_for(0, static_cast<std::int64_t>(images.size()), [&](std::int64_t i) {
    predicted.images[static_cast<std::size_t>(i)].points = detect(images[static_cast<std::size_t>(i)], templates);
    const int n = ++done;
    std::lock_guard<std::mutex> lock(print);
    std::fprintf(stderr, "\r      %d/%zu images", n, images.size());
    std::fflush(stderr);
  });
  std::fprintf(stderr, " (%.2f s)\n", t.seconds());

  step(5, "matching detections to the annotations");
  const auto result = eval::evaluate(truth, predicted, match);

  // The report.
  std::printf("microcount demo — %zu synthetic images in %s, classes:", images.size(), dir.string().c_str());
  for (const auto& l : truth.labels) std::printf(" %s", l.c_str());
  std::printf("\n\n%-14s %6s %12s %9s %5s %5s %5s\n", "image", "count", "density_sum", "detected", "tp", "fp", "fn");
  for (std::size_t i = 0; i < images.size(); ++i) {
    double sum = 0, count = 0;
    for (std::size_t c = 0; c < classes; ++c) sum += density_sum[i][c], count += true_count[i][c];
    const auto& r = result.images[i];
    std::printf("%-14s %6.0f %12.4f %9zu %5zu %5zu %5zu\n", r.name.c_str(), count, sum, r.predicted_points,
                r.detection.true_positives, r.detection.false_positives, r.detection.false_negatives);
  }
  std::printf("\ndensity targets: every class map sums to its count within %.1e (required: 1e-3)\n", worst);
  std::printf("\n%-10s %5s %5s %5s %9s %7s %6s %6s %6s\n", "class", "tp", "fp", "fn", "precision", "recall", "f1",
              "mae", "smape");
  const auto row = [](const std::string& name, const eval::class_evaluation& c) {
    std::printf("%-10s %5zu %5zu %5zu %9.3f %7.3f %6.3f %6.2f %6.3f\n", name.c_str(), c.detection.true_positives,
                c.detection.false_positives, c.detection.false_negatives, c.detection.precision(),
                c.detection.recall(), c.detection.f1(), c.counts.mae, c.counts.smape);
  };
  for (const auto& c : result.classes) row(c.label, c);
  row("overall", result.overall);
  std::printf("\nmatching radius %.1f px; baseline = normalised cross-correlation > %.2f with each class's look.\n",
              match.radius, match_score);

  auto j = eval::to_json(result);
  nlohmann::json check = nlohmann::json::array();
  for (std::size_t i = 0; i < images.size(); ++i)
    for (std::size_t c = 0; c < classes; ++c)
      check.push_back({{"image", truth.images[i].name}, {"class", truth.labels[c]}, {"count", true_count[i][c]},
                       {"density_sum", density_sum[i][c]}});
  j["density_check"] = {{"max_abs_difference", worst}, {"tolerance", 1e-3}, {"per_image", check}};
  j["out"] = dir.string();
  j["seconds"] = total.seconds();
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

const microcount::cli::register_command reg{
    {"demo", "run the pipeline (no network yet) on a synthetic data set and print metrics", usage, run}};

}  // namespace
