// microcount synth OUT_DIR: writes a seeded synthetic fluorescence data set (TIFFs + CVAT annotations.xml);
// microcount synth --movie OUT_DIR: seeded synthetic TIRF movies with ExoDeepFinder object lists.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "command.hpp"
#include "microcount/data/synth.hpp"
#include "microcount/data/synth_movie.hpp"

namespace {

using microcount::error;

const char* const usage =
    "usage: microcount synth OUT_DIR [--images N] [--size S | --height H --width W] [--classes K]\n"
    "                        [--min-cells A] [--max-cells B] [--seed S] [--dtype uint8|uint16]\n"
    "                        [--touching F] [--blur SIGMA] [--background PHOTONS] [--read-noise ADU]\n\n"
    "Writes N synthetic fluorescence images OUT_DIR/image_001.tif … and OUT_DIR/annotations.xml\n"
    "(CVAT for Images 1.1, one point per object centre), laid out like the vgg-cells set.\n"
    "  --images N        number of images (default 8)\n"
    "  --size S          square images of S×S pixels (default 256); --height/--width for others\n"
    "  --classes K       1 to 8 classes with distinct looks: 1 = cell; 2 = naked, enveloped;\n"
    "                    3 = naked, budding, enveloped; more = class0… (default 1)\n"
    "  --min-cells A     fewest objects per image (default 30)\n"
    "  --max-cells B     most objects per image (default 80)\n"
    "  --seed S          random seed; the same options give the same bytes (default 1)\n"
    "  --dtype T         uint8 (default) or uint16\n"
    "  --touching F      share of objects placed touching or overlapping another (default 0.25)\n"
    "  --blur SIGMA      optics blur, pixels (default 1)\n"
    "  --background P    mean background, photons per pixel (default 12)\n"
    "  --read-noise R    camera read noise, ADU (default 1.5)\n"
    "Prints one JSON line: {\"out\", \"images\", \"points\", \"per_class\", \"seconds\"}.\n\n"
    "usage: microcount synth --movie OUT_DIR [--movies N] [--frames T] [--size S | --height H --width W]\n"
    "                        [--events E] [--spots B] [--seed S] [--background PHOTONS] [--bleaching F]\n"
    "                        [--psf SIGMA] [--read-noise ADU] [--min-distance PX]\n\n"
    "Writes N synthetic TIRF movies of exocytosis OUT_DIR/movie_001.tif (uint16, [T, H, W]) with\n"
    "OUT_DIR/movie_001.xml beside each (ExoDeepFinder object list: class 2 = fusion event at its first\n"
    "frame, class 1 = docked bright spot, once per frame it is visible), the layout `microcount events`\n"
    "trains on. Movie k uses seed S + k - 1 (see docs/movies.md for the model).\n"
    "  --movies N        number of movies (default 4)\n"
    "  --frames T        frames per movie (default 48)\n"
    "  --size S          square frames of S×S pixels (default 96); --height/--width for others\n"
    "  --events E        fusion events per movie (default 6)\n"
    "  --spots B         docked bright spots per movie that never fuse (default 6)\n"
    "  --seed S          random seed (default 1)\n"
    "  --background P    mean background, photons per pixel (default 100)\n"
    "  --bleaching F     share of background and spot signal lost per frame (default 0.003)\n"
    "  --psf SIGMA       optics point-spread function, pixels (default 1.2)\n"
    "  --read-noise R    camera read noise, ADU (default 2)\n"
    "  --min-distance D  pixels between objects visible in the same frames (default 10)\n"
    "Prints one JSON line: {\"out\", \"movies\", \"frames\", \"height\", \"width\", \"events\",\n"
    "\"bright_spot_objects\", \"seconds\"}.";

std::size_t count_option(const microcount::cli::arguments& a, const std::string& key, std::size_t fallback) {
  const long long v = a.integer(key, static_cast<long long>(fallback));
  if (v < 0) throw error("microcount", "option --" + key + " must not be negative");
  return static_cast<std::size_t>(v);
}

// A seed is a full 64-bit number; the shared parser reads numbers as double (53 bits).
std::uint64_t seed_option(const microcount::cli::arguments& a) {
  const std::string text = a.get("seed", "1");
  std::uint64_t seed = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seed);
  if (ec != std::errc() || end != text.data() + text.size())
    throw error("microcount", "option --seed expects a whole number from 0 to 2^64-1, got '" + text + "'");
  return seed;
}

int run_movies(const microcount::cli::arguments& a) {
  a.allow_only({"movie", "movies", "frames", "size", "height", "width", "events", "spots", "seed", "background",
                "bleaching", "psf", "read-noise", "min-distance"});
  if (a.positional.size() != 1) throw error("microcount", "synth --movie takes one OUT_DIR (see microcount synth --help)");
  microcount::data::movie_synth_options o;
  const std::size_t movies = count_option(a, "movies", 4);
  o.frames = count_option(a, "frames", o.frames);
  const std::size_t size = count_option(a, "size", o.height);
  o.height = count_option(a, "height", size);
  o.width = count_option(a, "width", size);
  o.events = count_option(a, "events", o.events);
  o.bright_spots = count_option(a, "spots", o.bright_spots);
  o.seed = seed_option(a);
  o.background = a.number("background", o.background);
  o.bleaching = a.number("bleaching", o.bleaching);
  o.psf_sigma = a.number("psf", o.psf_sigma);
  o.read_noise = a.number("read-noise", o.read_noise);
  o.min_distance = a.number("min-distance", o.min_distance);
  if (movies == 0) throw error("microcount", "option --movies must be at least 1");

  const auto start = std::chrono::steady_clock::now();
  const std::string out = a.positional[0];
  const auto counts = microcount::data::write_synthetic_movies(out, o, movies);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "synth: wrote %zu movies (%zu events) with their object lists to %s\n", counts.movies, counts.events,
               out.c_str());
  const nlohmann::json line{{"out", out},
                            {"movies", counts.movies},
                            {"frames", o.frames},
                            {"height", o.height},
                            {"width", o.width},
                            {"events", counts.events},
                            {"bright_spot_objects", counts.bright_spot_objects},
                            {"seconds", seconds}};
  std::printf("%s\n", line.dump().c_str());
  return 0;
}

int run(const std::vector<std::string>& args) {
  const microcount::cli::arguments a(args, {"movie"});
  if (a.has("movie")) return run_movies(a);
  a.allow_only({"images", "size", "height", "width", "classes", "min-cells", "max-cells", "seed", "dtype", "touching",
                "blur", "background", "read-noise"});
  if (a.positional.size() != 1) throw error("microcount", "synth takes one OUT_DIR (see microcount synth --help)");
  microcount::data::synth_options o;
  o.images = count_option(a, "images", o.images);
  const std::size_t size = count_option(a, "size", 256);
  o.height = count_option(a, "height", size);
  o.width = count_option(a, "width", size);
  o.classes = count_option(a, "classes", o.classes);
  o.min_cells = count_option(a, "min-cells", o.min_cells);
  o.max_cells = count_option(a, "max-cells", std::max(o.max_cells, o.min_cells));
  o.seed = seed_option(a);
  o.touching = a.number("touching", o.touching);
  o.blur_sigma = a.number("blur", o.blur_sigma);
  o.background = a.number("background", o.background);
  o.read_noise = a.number("read-noise", o.read_noise);
  const std::string dtype = a.get("dtype", "uint8");
  if (dtype == "uint16") o.dtype = microcount::io::dtype::uint16;
  else if (dtype != "uint8") throw error("microcount", "option --dtype must be uint8 or uint16, got '" + dtype + "'");

  const auto start = std::chrono::steady_clock::now();
  const std::string out = a.positional[0];
  const auto d = microcount::data::write_synthetic_dataset(out, o);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  nlohmann::json per_class = nlohmann::json::object();
  for (const auto& [label, n] : d.annotations.points_per_label()) per_class[label] = n;
  std::fprintf(stderr, "synth: wrote %zu images and annotations.xml (%zu points) to %s\n", d.images.size(),
               d.annotations.total_points(), out.c_str());
  const nlohmann::json line{{"out", out},
                            {"images", d.images.size()},
                            {"points", d.annotations.total_points()},
                            {"per_class", per_class},
                            {"seconds", seconds}};
  std::printf("%s\n", line.dump().c_str());
  return 0;
}

const microcount::cli::register_command reg{{"synth", "write a synthetic fluorescence data set (TIFF + CVAT XML), or movies (--movie)", usage, run}};

}  // namespace
