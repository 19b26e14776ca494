#include <cmath>
#include <filesystem>
#include <numeric>
#include <vector>

#include "microcount/core/error.hpp"
#include "microcount/core/parallel.hpp"
#include "microcount/core/rng.hpp"
#include "microcount/io/atomic_file.hpp"
#include "test_support.hpp"

using namespace microcount;

TEST_CASE("rng: same seed, same stream; moments of uniform and normal") {
  rng a(42), b(42), c(43);
  for (int i = 0; i < 100; ++i) CHECK(a.next() == b.next());
  CHECK(a.next() != c.next());
  rng r(7);
  const int n = 200000;
  double su = 0, sn = 0, sn2 = 0;
  for (int i = 0; i < n; ++i) {
    su += r.uniform();
    const double z = r.normal();
    sn += z;
    sn2 += z * z;
  }
  CHECK(su / n == doctest::Approx(0.5).epsilon(0.01));
  CHECK(std::abs(sn / n) < 0.01);
  CHECK(sn2 / n == doctest::Approx(1.0).epsilon(0.02));
  std::vector<int> hist(10, 0);
  for (int i = 0; i < 100000; ++i) ++hist[r.below(10)];
  for (int h : hist) CHECK(std::abs(h - 10000) < 500);
  double sp = 0;
  for (int i = 0; i < 20000; ++i) sp += static_cast<double>(r.poisson(3.5));
  CHECK(sp / 20000 == doctest::Approx(3.5).epsilon(0.03));
}

TEST_CASE("parallel_for visits every index once and rethrows the first failure") {
  std::vector<int> seen(10007, 0);
  parallel_for(0, static_cast<std::int64_t>(seen.size()), [&](std::int64_t i) { seen[i] += 1; });
  CHECK(std::accumulate(seen.begin(), seen.end(), 0) == 10007);
  CHECK(std::all_of(seen.begin(), seen.end(), [](int v) { return v == 1; }));
  CHECK_THROWS_AS(parallel_for(0, 100, [](std::int64_t i) { if (i == 37) throw error("x", "boom"); }), error);
}

TEST_CASE("write_atomically leaves the old file when the writer fails") {
  auto dir = test::scratch("atomic");
  auto f = dir / "out.txt";
  io::write_text_atomically(f, "first");
  CHECK(io::read_text(f) == "first");
  CHECK_THROWS_AS(io::write_atomically(f, [](const std::filesystem::path& tmp) {
                    io::write_text_atomically(tmp, "partial");
                    throw error(tmp.string(), "simulated crash");
                  }),
                  error);
  CHECK(io::read_text(f) == "first");
  int files = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir)) ++files;
  CHECK(files == 1);
  CHECK_THROWS_WITH_AS(io::read_text(dir / "missing.txt"), doctest::Contains("missing.txt"), error);
}
