// The tile planner, checked exhaustively: every image pixel is owned by exactly one tile, owned pixels keep
// at least `margin` of context except at image borders, tiles stay in the padded image on the divisor's grid.
#include <doctest/doctest.h>

#include <vector>

#include "microcount/infer/tiling.hpp"

using namespace microcount;
using infer::extents;

namespace {

// The invariants of one axis of a plan (axis a), given what was asked for. Returns false on the first failure.
template <int N>
bool axis_invariants_hold(const infer::tile_plan<N>& plan, int a, index_t margin, index_t divisor) {
  const index_t E = plan.image[a], P = plan.padded[a], t = plan.tile[a];
  if (P % divisor != 0 || P < E || P >= E + divisor) return false;
  if (t % divisor != 0 || t > P || t < 1) return false;
  for (const auto& box : plan.tiles) {
    const index_t o = box.origin[a], b = box.own_begin[a], e = box.own_end[a];
    if (o < 0 || o % divisor != 0 || o + t > P) return false;
    if (!(b < e) || b < o || e > o + t) return false;                 // owned box non-empty, inside the tile
    if (b != 0 && b < o + margin) return false;                       // context on the low side
    if (e != E && e > o + t - margin) return false;                   // context on the high side
  }
  return true;
}

}  // namespace

TEST_CASE("plan_tiles, one axis, exhaustive: every pixel owned exactly once, margins kept, origins on the divisor grid") {
  index_t plans = 0, rejected = 0;
  for (index_t E = 1; E <= 70; ++E)
    for (index_t d : {1, 2, 4, 8})
      for (index_t tile = 1; tile <= 40; ++tile)
        for (index_t margin = 0; margin <= 10; ++margin) {
          infer::tile_settings<2> s{{tile, 5}, {margin, 0}, {d, 1}};
          const index_t P = (E + d - 1) / d * d, t = std::min((tile + d - 1) / d * d, P);
          const bool feasible = t == P || (t - 2 * margin) / d * d >= 1;
          if (!feasible) {
            CHECK_THROWS_AS(infer::plan_tiles<2>({E, 5}, s), error);
            ++rejected;
            continue;
          }
          const auto plan = infer::plan_tiles<2>({E, 5}, s);
          ++plans;
          std::vector<int> owners(static_cast<std::size_t>(E), 0);
          for (const auto& box : plan.tiles)
            for (index_t i = box.own_begin[0]; i < box.own_end[0]; ++i) owners[i]++;
          bool once = true;
          for (int c : owners) once = once && c == 1;
          if (!once || !axis_invariants_hold(plan, 0, margin, d)) {
            FAIL("E=" << E << " d=" << d << " tile=" << tile << " margin=" << margin);
          }
          // No redundant tile: the count is the fewest a stride of round_down(t − 2·margin, d) allows.
          if (t < P) {
            const index_t stride = (t - 2 * margin) / d * d;
            CHECK(plan.count() <= 1 + (P - t + stride - 1) / stride);
          } else {
            CHECK(plan.count() == 1);
          }
        }
  CHECK(plans > 50000);
  CHECK(rejected > 1000);
}

TEST_CASE("plan_tiles, 2D and 3D: the tiles' owned boxes partition the image") {
  SUBCASE("2D") {
    for (index_t H : {1, 7, 33, 64, 101})
      for (index_t W : {5, 48, 77})
        for (index_t d : {1, 4}) {
          const auto plan = infer::plan_tiles<2>({H, W}, {{24, 16}, {3, 2}, {d, d}});
          std::vector<int> owners(static_cast<std::size_t>(H * W), 0);
          for (const auto& box : plan.tiles)
            for (index_t y = box.own_begin[0]; y < box.own_end[0]; ++y)
              for (index_t x = box.own_begin[1]; x < box.own_end[1]; ++x) owners[y * W + x]++;
          CHECK(std::count(owners.begin(), owners.end(), 1) == H * W);
          CHECK(axis_invariants_hold(plan, 0, 3, d));
          CHECK(axis_invariants_hold(plan, 1, 2, d));
        }
  }
  SUBCASE("3D [T, H, W], tiles in time too") {
    for (index_t T : {1, 5, 7, 20})
      for (index_t H : {9, 40})
        for (index_t W : {13, 50}) {
          const auto plan = infer::plan_tiles<3>({T, H, W}, {{5, 16, 16}, {1, 3, 3}, {1, 2, 2}});
          std::vector<int> owners(static_cast<std::size_t>(T * H * W), 0);
          for (const auto& box : plan.tiles)
            for (index_t f = box.own_begin[0]; f < box.own_end[0]; ++f)
              for (index_t y = box.own_begin[1]; y < box.own_end[1]; ++y)
                for (index_t x = box.own_begin[2]; x < box.own_end[2]; ++x) owners[(f * H + y) * W + x]++;
          CHECK(std::count(owners.begin(), owners.end(), 1) == T * H * W);
          for (int a = 0; a < 3; ++a) CHECK(axis_invariants_hold(plan, a, a == 0 ? 1 : 3, a == 0 ? 1 : 2));
          if (T > 5) CHECK(plan.tile[0] == 5);
        }
  }
}

TEST_CASE("plan_tiles: worked example, 2048 wide, 256-tiles, margin 32, divisor 8") {
  const auto plan = infer::plan_tiles<2>({2048, 100}, {{256, 256}, {32, 32}, {8, 8}});
  CHECK(plan.tile == extents<2>{256, 104});  // an axis smaller than a tile gets one tile of round_up(E, d)
  CHECK(plan.padded == extents<2>{2048, 104});
  CHECK(plan.count() == 11);                 // origins 0, 192, …, 1728 (stride 256 − 2·32), then 1792 = 2048 − 256
  CHECK(plan.tiles[9].origin[0] == 1728);
  CHECK(plan.tiles.back().origin[0] == 1792);
  CHECK(plan.tiles[1].own_begin[0] == (192 + 0 + 256) / 2);  // middle of the first overlap
}

TEST_CASE("plan_tiles: readable errors") {
  CHECK_THROWS_WITH_AS(infer::plan_tiles<2>({300, 300}, {{64, 64}, {32, 32}, {8, 8}}), doctest::Contains("margin"), error);
  CHECK_THROWS_WITH_AS(infer::plan_tiles<2>({0, 300}, {}), doctest::Contains("extent must be positive"), error);
  CHECK_THROWS_WITH_AS(infer::plan_tiles<2>({10, 10}, {{16, 16}, {-1, 0}, {1, 1}}), doctest::Contains("margin"), error);
}

TEST_CASE("source_index: numpy-style reflection for any padding length, zeros as -1") {
  for (index_t E = 1; E <= 9; ++E) {
    // Oracle: walk 0, 1, …, E−1, E−2, …, 0, 1, … bouncing at both ends.
    index_t pos = 0, dir = 1;
    for (index_t i = 0; i < 60; ++i) {
      CHECK(infer::source_index(i, E, infer::padding::reflect) == pos);
      CHECK(infer::source_index(i, E, infer::padding::zero) == (i < E ? i : -1));
      if (E > 1) {
        if (pos + dir < 0 || pos + dir >= E) dir = -dir;
        pos += dir;
      }
    }
  }
}
