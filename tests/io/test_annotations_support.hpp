#pragma once
// Helpers shared by the annotation tests: exact comparison of two annotation sets, random annotations,
// writing small fixture files, counting substrings (independent oracles for the readers).
#include <cstddef>
#include <initializer_list>
#include <filesystem>
#include <string>
#include <string_view>

#include "microcount/core/error.hpp"
#include "microcount/core/rng.hpp"
#include "microcount/io/annotations.hpp"
#include "microcount/io/atomic_file.hpp"
#include "test_support.hpp"

namespace microcount::test {

// Runs f, expecting a microcount::error whose message contains every one of `needles`.
template <class F>
void check_error(F&& f, std::initializer_list<std::string_view> needles) {
  std::string message = "<no microcount::error thrown>";
  try {
    f();
  } catch (const microcount::error& e) {
    message = e.what();
  }
  CAPTURE(message);
  for (auto n : needles) {
    CAPTURE(n);
    CHECK(message.find(n) != std::string::npos);
  }
}

inline std::size_t count_substr(std::string_view text, std::string_view needle) {
  std::size_t n = 0;
  for (std::size_t at = text.find(needle); at != std::string_view::npos; at = text.find(needle, at + needle.size())) ++n;
  return n;
}

inline std::filesystem::path write_fixture(const std::filesystem::path& dir, const std::string& name,
                                           const std::string& text) {
  const auto p = dir / name;
  io::write_text_atomically(p, text);
  return p;
}

// Same images (names; width/height when `sizes_too`), same points in order (exact coordinates,
// frames, channels, label NAMES).
inline void check_same(const io::annotations& a, const io::annotations& b, bool sizes_too = true) {
  REQUIRE(a.images.size() == b.images.size());
  for (std::size_t i = 0; i < a.images.size(); ++i) {
    const auto& x = a.images[i];
    const auto& y = b.images[i];
    CAPTURE(x.name);
    CHECK(x.name == y.name);
    if (sizes_too) {
      CHECK(x.width == y.width);
      CHECK(x.height == y.height);
    }
    REQUIRE(x.points.size() == y.points.size());
    for (std::size_t k = 0; k < x.points.size(); ++k) {
      const auto& p = x.points[k];
      const auto& q = y.points[k];
      CAPTURE(k);
      CHECK(p.x == q.x);
      CHECK(p.y == q.y);
      CHECK(p.frame == q.frame);
      CHECK(p.channel == q.channel);
      CHECK(a.labels.at(static_cast<std::size_t>(p.label)) == b.labels.at(static_cast<std::size_t>(q.label)));
    }
  }
}

// `images` images of w x h with random full-precision coordinates; labels `names`; frames in
// [0, frames) when frames > 0 (and image_points::frames set), else still images.
inline io::annotations random_annotations(std::uint64_t seed, std::size_t images, const std::vector<std::string>& names,
                                          int frames = 0, std::int64_t w = 300, std::int64_t h = 200,
                                          const std::string& prefix = "img_") {
  rng r(seed);
  io::annotations a;
  for (const auto& n : names) a.label_index(n);
  for (std::size_t i = 0; i < images; ++i) {
    io::image_points im{prefix + std::to_string(i) + ".tif", w, h, frames, {}};
    const auto n = 1 + r.below(40);
    for (std::uint64_t k = 0; k < n; ++k) {
      io::point p;
      p.x = r.uniform(0, static_cast<double>(w) - 0.5);
      p.y = r.uniform(0, static_cast<double>(h) - 0.5);
      if (k % 7 == 0) p.x = static_cast<double>(r.below(static_cast<std::uint64_t>(w)));  // whole pixels too
      // Only the first names.size()-1 labels get points when there are several: one stays empty.
      const std::size_t used = names.size() > 1 ? names.size() - 1 : names.size();
      p.label = static_cast<int>(r.below(used));
      p.frame = frames > 0 ? static_cast<int>(r.below(static_cast<std::uint64_t>(frames))) : -1;
      im.points.push_back(p);
    }
    a.images.push_back(im);
  }
  return a;
}

}  // namespace microcount::test
