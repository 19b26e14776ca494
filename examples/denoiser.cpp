// denoiser — Noise2Void: learn to denoise microscopy images from the noisy images alone (Krull et al. 2019).
//
//   denoiser [NOISY_DIR [CLEAN_DIR]] [epochs]
//
// Without arguments a small synthetic low-light set is written first (runs/denoiser-data/noisy and
// .../clean, the truth known). The network trains on the noisy images themselves (blind-spot masking,
// data/blind_spot.hpp), keeps the epoch with the lowest validation loss, denoises every image into
// runs/denoiser-<time>/denoised/ and, when clean images are known, prints PSNR and SSIM of the noisy and
// the denoised images against them. Run folder: runs/denoiser-<time>/TrainingRun/ (log, checkpoints, curves).
//
// Copy this file to start your own denoiser: the model type below is the whole structure; the options
// are numbers you can change without recompiling anything else.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "microcount/backends/cpu.hpp"  // backend::cpu: xsimd + OpenMP kernels
#include "microcount/data/dataset.hpp"
#include "microcount/data/synth_noisy.hpp"
#include "microcount/eval/image_quality.hpp"
#include "microcount/io/tiff.hpp"
#include "microcount/train/curves.hpp"
#include "microcount/train/noise2void.hpp"
#include "microcount/train/run_folder.hpp"

using namespace microcount;
namespace fs = std::filesystem;

// ---- the compile-time composition ---------------------------------------------------------------
// model:   2D U-Net of depth 2 (N2V's), batch norm, transposed-convolution upsampling, linear 1×1 head.
// backend: the CPU.
using denoiser = train::noise2void<train::noise2void_unet, backend::cpu>;

namespace {
xt::xtensor<float, 3> read_plane(const fs::path& f) {  // [C, H, W] of a single image
  const io::image im = data::detail::load_image(f);
  require(im.frames() == 1, f.string(), "a single image was expected");
  xt::xtensor<float, 3> p = xt::xtensor<float, 3>::from_shape({im.channels(), im.height(), im.width()});
  std::copy(im.pixels.begin(), im.pixels.end(), p.begin());
  return p;
}
}  // namespace

int main(int argc, char** argv) try {
  fs::path noisy_dir, clean_dir;
  std::int64_t epochs = 10;
  std::vector<std::string> words(argv + 1, argv + argc);
  if (!words.empty() && std::all_of(words.back().begin(), words.back().end(), ::isdigit)) {
    epochs = std::stoll(words.back());
    words.pop_back();
  }
  if (!words.empty()) noisy_dir = words[0];
  if (words.size() > 1) clean_dir = words[1];
  if (noisy_dir.empty()) {
    data::noisy_synth_options s;  // 6 images of 256², ~0.2 × the photons of `microcount synth`: strong shot noise
    s.scene.images = 6;
    s.scene.seed = 11;
    const fs::path dir = "runs/denoiser-data";
    data::write_noisy_pairs(dir, data::make_noisy_pairs(s));
    noisy_dir = dir / "noisy";
    clean_dir = dir / "clean";
    std::cout << "wrote a synthetic noisy/clean set into " << dir.string() << "\n";
  }

  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(noisy_dir))
    if (e.path().extension() == ".tif" || e.path().extension() == ".tiff" || e.path().extension() == ".png") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  require(!files.empty(), noisy_dir.string(), "holds no images");
  std::vector<xt::xtensor<float, 3>> images;
  for (const auto& f : files) images.push_back(read_plane(f));

  // ---- run-time numbers ------------------------------------------------------------------------
  train::noise2void_options o;  // N2V's: depth-2 U-Net, 32 filters, 64² tiles, 0.198 % masked, radius 5
  o.epochs = epochs;
  o.steps_per_epoch = 30;
  o.batch = 16;
  o.lr = 1e-3;
  denoiser model(o, static_cast<index_t>(images.front().shape()[0]));

  const auto run = train::run_folder::create("runs", "denoiser");
  const auto layout = run.training();
  layout.create_directories();
  train::write_json_atomically(layout.hyperparameters_json(), train::to_json(o));
  train::run_log log(layout.log_txt(), &std::cout);
  train::noise2void_fit_options fo;
  fo.checkpoints = layout.checkpoints_dir();
  fo.log = [&](const std::string& line) { log.write(line); };
  fo.on_epoch = [&](const train::epoch_record&, const train::history& h) { train::write_training_curves(h, layout.training_curves()); };
  const auto result = train::fit_noise2void(model, std::span<const xt::xtensor<float, 3>>(images), fo);

  // ---- denoise with the best epoch, score against the truth when known ------------------------------
  auto best = denoiser::from_checkpoint(result.best_checkpoint);
  const fs::path out = run.root() / "denoised";
  fs::create_directories(out);
  double psnr_noisy = 0, psnr_denoised = 0, ssim_noisy = 0, ssim_denoised = 0;
  for (std::size_t i = 0; i < files.size(); ++i) {
    const auto d = best.denoise(images[i]);  // [C, H, W], the input's units
    io::image im;
    im.pixels = xt::xtensor<float, 4>::from_shape({1, d.shape()[0], d.shape()[1], d.shape()[2]});  // [1, C, H, W]
    std::copy(d.begin(), d.end(), im.pixels.begin());
    io::write_tiff(out / files[i].filename(), im, io::dtype::float32);
    if (!clean_dir.empty()) {
      const auto clean = read_plane(clean_dir / files[i].filename());
      const double range = eval::data_range_of(clean);
      psnr_noisy += eval::psnr(clean, images[i], range) / static_cast<double>(files.size());
      psnr_denoised += eval::psnr(clean, d, range) / static_cast<double>(files.size());
      ssim_noisy += eval::ssim(clean, images[i], range) / static_cast<double>(files.size());
      ssim_denoised += eval::ssim(clean, d, range) / static_cast<double>(files.size());
    }
  }
  std::cout << "denoised " << files.size() << " image(s) into " << out.string() << "\n";
  if (!clean_dir.empty())
    std::printf("against the clean images: PSNR %.2f dB -> %.2f dB, SSIM %.3f -> %.3f\n", psnr_noisy, psnr_denoised, ssim_noisy,
                ssim_denoised);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "denoiser: %s\n", e.what());
  return 1;
}
