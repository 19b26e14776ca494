#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "microcount/backends/reference.hpp"
#include "microcount/io/checkpoint.hpp"
#include "microcount/nn/compose.hpp"
#include "microcount/nn/layers/conv.hpp"
#include "test_support.hpp"

using namespace microcount;
using B = backend::reference;

namespace {
auto make_net(index_t width) {
  ops::conv<2> same;
  same.pad = {1, 1};
  return nn::seq(nn::conv2d<B>(width, {3, 3}, same), nn::skip_concat(nn::conv2d<B>(2, {1, 1})));
}
}  // namespace

TEST_CASE("checkpoint: save -> load gives identical outputs and position; the file is verified") {
  auto dir = test::scratch("checkpoint");
  rng r1(1), r2(2);
  auto a = make_net(4);
  auto b = make_net(4);
  a.build({1, 1, 6, 6}, r1);
  b.build({1, 1, 6, 6}, r2);
  tensor<float, B> x({1, 1, 6, 6});
  for (index_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(r1.uniform());
  a.set_mode(nn::mode::evaluation);
  b.set_mode(nn::mode::evaluation);

  io::checkpoint_state<B> sa, sb;
  sa.add_model(a);
  sb.add_model(b);
  io::checkpoint_header head;
  head.architecture = "test-net";
  head.metadata = {{"sigma", 2.0}};
  head.position.epoch = 7;
  head.position.step = 123;
  head.position.best_metric = 3.25;
  rng gen(99);
  gen.normal();
  head.position.rng_state = gen.state();
  const auto file = dir / "model.mcm";
  io::save_checkpoint(file, sa, head);

  io::checkpoint_file f(file);
  const auto h = f.load_into(sb, "test-net");
  auto ya = a.forward(x);
  auto yb = b.forward(x);
  for (index_t i = 0; i < ya.size(); ++i) REQUIRE(ya[i] == yb[i]);
  CHECK(h.position.epoch == 7);
  CHECK(h.position.step == 123);
  CHECK(h.position.best_metric == 3.25);
  CHECK(h.metadata["sigma"] == 2.0);
  rng resumed(0);
  resumed.set_state(h.position.rng_state);
  CHECK(resumed.next() == gen.next());

  SUBCASE("another architecture is a clear error naming the difference") {
    auto c = make_net(5);
    rng r3(3);
    c.build({1, 1, 6, 6}, r3);
    io::checkpoint_state<B> sc;
    sc.add_model(c);
    CHECK_THROWS_WITH_AS(f.load_into(sc, "test-net"), doctest::Contains("does not fit this model"), error);
    CHECK_THROWS_WITH_AS(f.load_into(sb, "other-net"), doctest::Contains("architecture 'test-net'"), error);
  }
  SUBCASE("a flipped byte or a truncated file is detected") {
    std::string bytes = io::read_text(file);
    bytes[bytes.size() / 2] ^= 0x10;
    io::write_text_atomically(dir / "corrupt.mcm", bytes);
    CHECK_THROWS_WITH_AS(io::checkpoint_file(dir / "corrupt.mcm"), doctest::Contains("corrupt.mcm"), error);
    io::write_text_atomically(dir / "short.mcm", io::read_text(file).substr(0, 100));
    CHECK_THROWS_WITH_AS(io::checkpoint_file(dir / "short.mcm"), doctest::Contains("checksum"), error);
    io::write_text_atomically(dir / "text.mcm", "hello, I am not a checkpoint at all");
    CHECK_THROWS_WITH_AS(io::checkpoint_file(dir / "text.mcm"), doctest::Contains("bad magic"), error);
  }
}
