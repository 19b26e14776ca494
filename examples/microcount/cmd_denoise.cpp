// microcount denoise synth|train|apply — Noise2Void self-supervised denoising (docs/denoising.md).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <string>
#include <unistd.h>
#include <vector>

#include <nlohmann/json.hpp>

#include "command.hpp"
#include "image_arguments.hpp"
#include "microcount/backends/cpu.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/data/dataset.hpp"
#include "microcount/data/synth_noisy.hpp"
#include "microcount/eval/image_quality.hpp"
#include "microcount/io/annotation_files.hpp"
#include "microcount/io/atomic_file.hpp"
#include "microcount/io/tiff.hpp"
#include "microcount/train/curves.hpp"
#include "microcount/train/noise2void.hpp"
#include "microcount/train/run_folder.hpp"

namespace microcount::cli {
namespace {

namespace fs = std::filesystem;
using denoiser = train::noise2void<>;

const char* usage_text =
    "usage: microcount denoise synth DIR [--images N] [--size PX] [--photons SCALE] [--cells MIN-MAX] [--seed N]\n"
    "         writes DIR/noisy/*.tif (uint16) and DIR/clean/*.tif (float32 truth), each with annotations.xml\n"
    "       microcount denoise train DIR --out RUN [--epochs N] [--steps N] [--batch N] [--patch PX] [--width N]\n"
    "                                [--lr X] [--percent P] [--radius R] [--with-centre] [--no-augment] [--seed N]\n"
    "                                [--resume RUN] [--clean DIR] [--threads N] [--quiet]\n"
    "         trains Noise2Void on the images of DIR themselves (no clean data needed); RUN/TrainingRun holds\n"
    "         hyperparameters.json, log.txt, checkpoints/{best,latest}_model.mcm, plots/training_curves.*;\n"
    "         --clean DIR scores the best model on DIR's images against same-named clean ones (test_results.json)\n"
    "       microcount denoise apply --model RUN|CKPT IMAGE|DIR… --out DIR [--clean DIR] [--threads N] [--quiet]\n"
    "         writes DIR/<image>.tif (float32, the input's units); --clean DIR adds DIR/quality.json and prints\n"
    "         one JSON line: mean PSNR (dB) and SSIM of the noisy and the denoised images against the clean ones\n";

using cli::image_files;

// Every frame of every file as one [C, H, W] image (a multi-page stack gives one image per frame).
std::vector<xt::xtensor<float, 3>> frames_of(const std::vector<fs::path>& files) {
  std::vector<xt::xtensor<float, 3>> out;
  for (const auto& f : files) {
    const io::image im = data::detail::load_image(f);
    const std::size_t c = im.channels(), h = im.height(), w = im.width();
    if (!out.empty()) require(out.front().shape()[0] == c, f.string(), "has " + std::to_string(c) + " channel(s), the first image " +
                                                                          std::to_string(out.front().shape()[0]));
    for (std::size_t k = 0; k < im.frames(); ++k) {
      xt::xtensor<float, 3> p = xt::xtensor<float, 3>::from_shape({c, h, w});  // [C, H, W]
      std::copy(im.pixels.data() + k * c * h * w, im.pixels.data() + (k + 1) * c * h * w, p.data());
      out.push_back(std::move(p));
    }
  }
  return out;
}

xt::xtensor<float, 3> single_frame(const io::image& im, const fs::path& f) {
  require(im.frames() == 1, f.string(), "a single image was expected for quality scores, got " + std::to_string(im.frames()) + " frames");
  xt::xtensor<float, 3> p = xt::xtensor<float, 3>::from_shape({im.channels(), im.height(), im.width()});  // [C, H, W]
  std::copy(im.pixels.begin(), im.pixels.end(), p.begin());
  return p;
}

// PSNR and SSIM of the noisy and the denoised image against the clean one (data range: the clean
// image's max − min).
struct quality {
  double psnr_noisy, psnr_denoised, ssim_noisy, ssim_denoised;
};
quality score(const xt::xtensor<float, 3>& clean, const xt::xtensor<float, 3>& noisy, const xt::xtensor<float, 3>& denoised,
              const fs::path& clean_file) {
  require(clean.shape() == noisy.shape(), clean_file.string(), "clean image differs in size or channels from the noisy one");
  const double range = eval::data_range_of(clean);
  return {eval::psnr(clean, noisy, range), eval::psnr(clean, denoised, range), eval::ssim(clean, noisy, range),
          eval::ssim(clean, denoised, range)};
}

// Scores `files` denoised by `model` against same-named files in `clean_dir`: per image and the means.
nlohmann::json quality_report(denoiser& model, const std::vector<fs::path>& files, const fs::path& clean_dir,
                              const std::function<void(const fs::path&, const xt::xtensor<float, 3>&)>& each = nullptr) {
  nlohmann::json per_image = nlohmann::json::object();
  quality mean{0, 0, 0, 0};
  for (const auto& f : files) {
    const fs::path clean_file = clean_dir / f.filename();
    const auto noisy = single_frame(data::detail::load_image(f), f);
    const auto clean = single_frame(data::detail::load_image(clean_file), clean_file);
    const auto denoised = model.denoise(noisy);
    if (each) each(f, denoised);
    const quality q = score(clean, noisy, denoised, clean_file);
    per_image[f.filename().string()] = {{"psnr_noisy", q.psnr_noisy}, {"psnr_denoised", q.psnr_denoised},
                                        {"ssim_noisy", q.ssim_noisy}, {"ssim_denoised", q.ssim_denoised}};
    mean.psnr_noisy += q.psnr_noisy / static_cast<double>(files.size());
    mean.psnr_denoised += q.psnr_denoised / static_cast<double>(files.size());
    mean.ssim_noisy += q.ssim_noisy / static_cast<double>(files.size());
    mean.ssim_denoised += q.ssim_denoised / static_cast<double>(files.size());
  }
  return {{"images", files.size()}, {"psnr_noisy", mean.psnr_noisy}, {"psnr_denoised", mean.psnr_denoised},
          {"ssim_noisy", mean.ssim_noisy}, {"ssim_denoised", mean.ssim_denoised}, {"per_image", per_image}};
}

nlohmann::json summary_of(const nlohmann::json& report) {
  nlohmann::json s = report;
  s.erase("per_image");
  return s;
}

int run_synth(const arguments& a) {
  a.allow_only({"images", "size", "photons", "cells", "seed"});
  require(a.positional.size() == 2, "microcount", "denoise synth needs one output folder DIR");
  data::noisy_synth_options o;
  o.scene.images = static_cast<std::size_t>(std::max(1LL, a.integer("images", 8)));
  o.scene.height = o.scene.width = static_cast<std::size_t>(std::max(16LL, a.integer("size", 256)));
  o.scene.seed = static_cast<std::uint64_t>(a.integer("seed", 1));
  o.photon_scale = a.number("photons", o.photon_scale);
  if (a.has("cells")) {
    const std::string c = a.get("cells");
    const auto dash = c.find('-');
    try {
      o.scene.min_cells = std::stoul(c.substr(0, dash));
      o.scene.max_cells = dash == std::string::npos ? o.scene.min_cells : std::stoul(c.substr(dash + 1));
    } catch (const std::exception&) {
      throw error("microcount", "option --cells expects MIN-MAX, got '" + c + "'");
    }
  }
  const fs::path dir = a.positional[1];
  const auto set = data::make_noisy_pairs(o);
  data::write_noisy_pairs(dir, set);
  std::size_t objects = 0;
  for (const auto& im : set.annotations.images) objects += im.points.size();
  std::cout << "wrote " << set.noisy.size() << " noisy/clean pairs (" << objects << " objects) into " << (dir / "noisy").string()
            << " and " << (dir / "clean").string() << "\n";
  return 0;
}

int run_train(const arguments& a) {
  a.allow_only({"out", "epochs", "steps", "batch", "patch", "width", "lr", "percent", "radius", "with-centre", "no-augment", "seed",
                "resume", "clean", "threads", "quiet"});
  require(a.positional.size() == 2, "microcount", "denoise train needs one image folder DIR");
  require(a.has("out"), "microcount", "denoise train needs --out RUN");
  set_threads(static_cast<int>(a.integer("threads", 0)));
  const fs::path data_dir = a.positional[1];
  const auto files = image_files({a.positional[1]});
  const auto images = frames_of(files);

  train::noise2void_options o;
  std::optional<fs::path> resume;
  if (a.has("resume")) {
    // The run's own options (the checkpoint's), so the resumed run is the interrupted one.
    const fs::path given = a.get("resume");
    std::error_code ec;
    fs::path ckpt = given;
    for (const fs::path rel : {"TrainingRun/checkpoints/latest_model.mcm", "checkpoints/latest_model.mcm"})
      if (!fs::is_regular_file(ckpt, ec) && fs::is_regular_file(given / rel, ec)) ckpt = given / rel;
    require(fs::is_regular_file(ckpt, ec), given.string(), "no latest_model.mcm to resume from (give a run folder or a checkpoint)");
    const io::checkpoint_file file(ckpt);
    const auto header = file.read_header();
    require(header.metadata.contains("options"), ckpt.string(), "not a Noise2Void checkpoint");
    o = train::noise2void_options_from_json(header.metadata.at("options"), ckpt.string());
    resume = ckpt;
  }
  o.epochs = a.integer("epochs", o.epochs);
  if (!resume) {
    o.steps_per_epoch = a.integer("steps", o.steps_per_epoch);
    o.batch = a.integer("batch", o.batch);
    o.patch = a.integer("patch", o.patch);
    o.base_width = a.integer("width", o.base_width);
    o.lr = a.number("lr", o.lr);
    o.mask.percent = a.number("percent", o.mask.percent);
    o.mask.radius = static_cast<int>(a.integer("radius", o.mask.radius));
    if (a.has("with-centre")) o.mask.choose = data::replacement::uniform_with_centre;
    if (a.has("no-augment")) o.augment = false;
    o.seed = static_cast<std::uint64_t>(a.integer("seed", static_cast<long long>(o.seed)));
  }
  denoiser model(o, static_cast<index_t>(images.front().shape()[0]));

  const fs::path out = a.get("out");
  const train::run_layout layout{out / "TrainingRun"};
  layout.create_directories();
  train::write_json_atomically(layout.hyperparameters_json(), train::to_json(o));
  train::run_log log(layout.log_txt());
  const bool quiet = a.has("quiet"), tty = isatty(2) && !quiet;
  train::noise2void_fit_options fo;
  fo.checkpoints = layout.checkpoints_dir();
  fo.resume = resume;
  fo.log = [&](const std::string& line) {
    log.write(line);
    if (!quiet) std::cerr << (tty ? "\r\033[K" : "") << line << "\n";
  };
  if (tty) fo.progress = [&](const std::string& line) { std::cerr << "\r\033[K" << line << std::flush; };
  fo.on_epoch = [&](const train::epoch_record&, const train::history& h) {
    train::write_training_curves(h, layout.training_curves(), "Noise2Void training");
  };
  fo.log("data " + data_dir.string() + ": " + std::to_string(files.size()) + " file(s), " + std::to_string(images.size()) +
         " image(s); " + std::to_string(max_threads()) + " threads; run folder " + out.string());
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = train::fit_noise2void(model, std::span<const xt::xtensor<float, 3>>(images), fo);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fo.log(r.stop_reason + "; best epoch " + std::to_string(r.best_epoch) + ", " + train::format_duration(seconds));

  nlohmann::json summary = {{"run", out.string()}, {"epochs", r.epochs.size()}, {"best_epoch", r.best_epoch},
                            {"best_val_loss", std::isfinite(r.best_metric) ? nlohmann::json(r.best_metric) : nlohmann::json()},
                            {"seconds", seconds}};
  if (a.has("clean") && r.stop_reason.rfind("paused", 0) != 0) {
    auto best = denoiser::from_checkpoint(r.best_checkpoint);
    const auto report = quality_report(best, files, a.get("clean"));
    train::write_json_atomically(layout.test_results_json(), report);
    summary["quality"] = summary_of(report);
    fo.log("quality against " + a.get("clean") + ": " + summary["quality"].dump());
  }
  std::cout << summary.dump() << "\n";
  return 0;
}

int run_apply(const arguments& a) {
  a.allow_only({"model", "out", "clean", "threads", "quiet"});
  require(a.has("model"), "microcount", "denoise apply needs --model RUN|CKPT");
  require(a.has("out"), "microcount", "denoise apply needs --out DIR");
  require(a.positional.size() >= 2, "microcount", "denoise apply needs at least one IMAGE or DIR");
  set_threads(static_cast<int>(a.integer("threads", 0)));
  const auto files = image_files(std::vector<std::string>(a.positional.begin() + 1, a.positional.end()));
  const fs::path checkpoint = train::resolve_model(a.get("model"));
  auto model = denoiser::from_checkpoint(checkpoint);
  const fs::path out = a.get("out");
  std::error_code ec;
  fs::create_directories(out, ec);
  require(!ec, out.string(), "cannot create the output folder: " + ec.message());
  const auto output_of = [&](const fs::path& f) { return out / (f.stem().string() + ".tif"); };
  const bool quiet = a.has("quiet");
  const auto t0 = std::chrono::steady_clock::now();
  if (a.has("clean")) {
    std::size_t done = 0;
    const auto report = quality_report(model, files, a.get("clean"), [&](const fs::path& f, const xt::xtensor<float, 3>& d) {
      io::image im;
      im.pixels = xt::xtensor<float, 4>::from_shape({1, d.shape()[0], d.shape()[1], d.shape()[2]});  // [1, C, H, W]
      std::copy(d.begin(), d.end(), im.pixels.begin());
      io::write_tiff(output_of(f), im, io::dtype::float32);
      if (!quiet) std::cerr << "[" << ++done << "/" << files.size() << "] " << f.filename().string() << "\n";
    });
    train::write_json_atomically(out / "quality.json", report);
    nlohmann::json line = summary_of(report);
    line["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cout << line.dump() << "\n";
    return 0;
  }
  for (std::size_t i = 0; i < files.size(); ++i) {
    const io::image im = data::detail::load_image(files[i]);
    io::write_tiff(output_of(files[i]), model.denoise(im), io::dtype::float32);
    if (!quiet) std::cerr << "[" << i + 1 << "/" << files.size() << "] " << files[i].filename().string() << "\n";
  }
  std::cout << "denoised " << files.size() << " image(s) into " << out.string() << "\n";
  return 0;
}

int run_denoise(const std::vector<std::string>& args) {
  const arguments a(args, {"with-centre", "no-augment", "quiet"});
  require(!a.positional.empty(), "microcount", "denoise needs synth, train or apply (microcount denoise --help)");
  const std::string what = a.positional[0];
  if (what == "synth") return run_synth(a);
  if (what == "train") return run_train(a);
  if (what == "apply") return run_apply(a);
  throw error("microcount", "denoise: unknown action '" + what + "' (synth, train or apply)");
}

const register_command reg{{"denoise", "Noise2Void: train a denoiser on noisy images alone, apply it, score it against clean images",
                            usage_text, run_denoise}};

}  // namespace
}  // namespace microcount::cli
