// The host emulator itself: thread and block indices cover the grid exactly once, shared memory and
// __syncthreads behave as on a GPU (a block reduction and a tiled transpose give exact results), and
// what a GPU would do wrong (barrier divergence, oversized launches) is a clear error.
#include <doctest/doctest.h>

#include <numeric>
#include <vector>

#include "cuda_test_support.hpp"
#include "backends/launch_body.hpp"

using namespace cuda_test;
namespace cu = microcount::cuda;

namespace {

// Every (block, thread) writes its flat global index once: counts must all be 1.
struct cover_kernel {
  static constexpr const char* name = "cover";
  template <class Ctx>
  MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx, int* hits, unsigned width, unsigned height, unsigned depth) const {
    const unsigned x = ctx.block_idx().x * ctx.block_dim().x + ctx.thread_idx().x;
    const unsigned y = ctx.block_idx().y * ctx.block_dim().y + ctx.thread_idx().y;
    const unsigned z = ctx.block_idx().z * ctx.block_dim().z + ctx.thread_idx().z;
    if (x < width && y < height && z < depth) ctx.atomic_add(&hits[(z * height + y) * width + x], 1);
  }
};

// Tree reduction in shared memory: one partial sum per block (barrier after every halving step).
struct block_sum_kernel {
  static constexpr const char* name = "block_sum";
  template <class Ctx>
  MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx, const float* x, std::int64_t n, float* partial) const {
    float* s = ctx.template shared<float>();  // [blockDim.x]
    const unsigned t = ctx.thread_idx().x;
    const std::int64_t i = std::int64_t(ctx.block_idx().x) * ctx.block_dim().x + t;
    s[t] = i < n ? x[i] : 0.f;
    ctx.sync();
    for (unsigned half = ctx.block_dim().x / 2; half > 0; half /= 2) {
      if (t < half) s[t] += s[t + half];
      ctx.sync();
    }
    if (t == 0) partial[ctx.block_idx().x] = s[0];
  }
};

// Transpose through a shared 16×17 tile (the padding column avoids bank conflicts on a GPU).
struct transpose_kernel {
  static constexpr const char* name = "transpose";
  static constexpr unsigned tile = 16;
  template <class Ctx>
  MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx, const float* in, float* out, unsigned rows, unsigned cols) const {
    float* s = ctx.template shared<float>();  // [tile][tile + 1]
    const unsigned tx = ctx.thread_idx().x, ty = ctx.thread_idx().y;
    unsigned c = ctx.block_idx().x * tile + tx, r = ctx.block_idx().y * tile + ty;
    if (r < rows && c < cols) s[ty * (tile + 1) + tx] = in[r * cols + c];  // in [rows, cols]
    ctx.sync();
    c = ctx.block_idx().y * tile + tx;  // out [cols, rows]
    r = ctx.block_idx().x * tile + ty;
    if (r < cols && c < rows) out[r * rows + c] = s[tx * (tile + 1) + ty];
  }
};

using test::leaky_axpy;

// The classic bug: threads past the end return before the barrier the others wait at.
struct early_return_kernel {
  static constexpr const char* name = "early_return";
  template <class Ctx>
  MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx, float* x, unsigned n) const {
    const unsigned i = ctx.thread_idx().x;
    if (i >= n) return;
    float* s = ctx.template shared<float>();
    s[i] = x[i];
    ctx.sync();
    x[i] = s[n - 1 - i];
  }
};

// A barrier reached only by thread 3.
struct lonely_barrier_kernel {
  static constexpr const char* name = "lonely_barrier";
  template <class Ctx>
  MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx, int*) const {
    if (ctx.thread_idx().x == 3) ctx.sync();
  }
};

// Reads shared memory no thread wrote.
struct uninitialised_shared_kernel {
  static constexpr const char* name = "uninitialised_shared";
  template <class Ctx>
  MICROCOUNT_HOST_DEVICE void operator()(const Ctx& ctx, float* out) const {
    out[ctx.thread_idx().x] = ctx.template shared<float>()[ctx.thread_idx().x];
  }
};

}  // namespace

TEST_CASE("cuda emulator: a 3D grid of 3D blocks covers every index exactly once") {
  const unsigned w = 37, h = 11, d = 5;
  std::vector<int> hits(w * h * d, 0);
  cu::launch(cover_kernel{}, {(w + 7) / 8, (h + 3) / 4, (d + 1) / 2}, {8, 4, 2}, 0, hits.data(), w, h, d);
  CHECK(std::count(hits.begin(), hits.end(), 1) == int(hits.size()));
}

TEST_CASE("cuda emulator: shared-memory tree reduction with __syncthreads is exact") {
  for (std::int64_t n : {1, 255, 256, 1000, 4097}) {
    std::vector<float> x(n);
    for (std::int64_t i = 0; i < n; ++i) x[i] = float(i % 7);  // small integers: every order sums exactly
    const unsigned threads = 128;
    const cu::dims3 grid = cu::blocks_for(n, threads);
    std::vector<float> partial(grid.x, -1.f);
    cu::launch(block_sum_kernel{}, grid, {threads}, threads * sizeof(float), x.data(), n, partial.data());
    CHECK(std::accumulate(partial.begin(), partial.end(), 0.0) == std::accumulate(x.begin(), x.end(), 0.0));
  }
}

TEST_CASE("cuda emulator: tiled transpose through shared memory, odd sizes") {
  rng g(3);
  for (auto [rows, cols] : {std::pair{1u, 1u}, {17u, 33u}, {64u, 5u}, {40u, 40u}}) {
    std::vector<float> in(rows * cols), out(rows * cols, 0.f);
    for (auto& v : in) v = float(g.uniform(-1, 1));
    const unsigned t = transpose_kernel::tile;
    cu::launch(transpose_kernel{}, {(cols + t - 1) / t, (rows + t - 1) / t}, {t, t}, t * (t + 1) * sizeof(float), in.data(),
               out.data(), rows, cols);
    for (unsigned r = 0; r < rows; ++r)
      for (unsigned c = 0; c < cols; ++c) REQUIRE(out[c * rows + r] == in[r * cols + c]);
  }
}

TEST_CASE("cuda emulator: the generic elementwise entry runs the same body as the reference backend") {
  rng g(5);
  for (std::int64_t n : {1, 255, 257, 70001, 4096 * 256 + 3}) {  // the last one exceeds the grid cap: grid-stride
    const ref_t x = random_tensor({n}, g), y0 = random_tensor({n}, g);
    ref_t y_ref = y0.clone();
    device_t y_dev = to_device(y0), x_dev = to_device(x);
    for_each<ref>(n, leaky_axpy{1.5f, 0.1f}, y_ref.data(), x.data());
    for_each<dev>(n, leaky_axpy{1.5f, 0.1f}, y_dev.data(), static_cast<const float*>(x_dev.data()));
    CHECK(worst(y_ref, y_dev) == 0);
  }
}

TEST_CASE("cuda emulator: what a GPU would get wrong is a clear error") {
  std::vector<float> x(32, 1.f);
  SUBCASE("early return before a barrier (barrier divergence)") {
    CHECK_THROWS_WITH_AS(cu::launch(early_return_kernel{}, {1}, {64}, 64 * sizeof(float), x.data(), 32u),
                         doctest::Contains("barrier divergence"), microcount::error);
  }
  SUBCASE("a barrier only one thread reaches") {
    int dummy = 0;
    CHECK_THROWS_WITH_AS(cu::launch(lonely_barrier_kernel{}, {2}, {8}, 0, &dummy), doctest::Contains("lonely_barrier"),
                         microcount::error);
  }
  SUBCASE("launch limits") {
    int dummy = 0;
    CHECK_THROWS_WITH_AS(cu::launch(cover_kernel{}, {1}, {2048}, 0, &dummy, 0u, 0u, 0u), doctest::Contains("2048 threads"),
                         microcount::error);
    CHECK_THROWS_WITH_AS(cu::launch(cover_kernel{}, {1}, {32}, 64 * 1024, &dummy, 0u, 0u, 0u),
                         doctest::Contains("shared memory"), microcount::error);
    CHECK_THROWS_AS(cu::launch(cover_kernel{}, {1, 70000}, {32}, 0, &dummy, 0u, 0u, 0u), microcount::error);
  }
  SUBCASE("shared memory starts as NaN, so reading it unwritten shows") {
    std::vector<float> out(8, 0.f);
    cu::launch(uninitialised_shared_kernel{}, {1}, {8}, 8 * sizeof(float), out.data());
    CHECK(std::all_of(out.begin(), out.end(), [](float v) { return std::isnan(v); }));
  }
  SUBCASE("the emulator keeps working after a failed launch") {
    std::vector<float> y(300);
    const unsigned threads = 128;
    std::vector<float> partial(3);
    for (auto& v : y) v = 1.f;
    cu::launch(block_sum_kernel{}, {3}, {threads}, threads * sizeof(float), y.data(), std::int64_t(300), partial.data());
    CHECK(partial[0] + partial[1] + partial[2] == 300.f);
  }
}

TEST_CASE("cuda backend: tensors move between host and device memory only through explicit copies") {
  rng g(1);
  const ref_t h = random_tensor({2, 3, 5, 7}, g);
  device_t d = to_device(h);
  static_assert(!microcount::backend::cuda::host_memory, "cuda tensors must not be indexable on the host");
  device_t copy = d.clone();
  CHECK(worst(h, copy) == 0);
  copy.fill_zero();
  const ref_t zeros = to_host(copy);
  CHECK(std::all_of(zeros.data(), zeros.data() + zeros.size(), [](float v) { return v == 0.f; }));
  CHECK(microcount::cuda::device_count() == 0);  // emulated: no device is used
  MESSAGE("cuda backend under test: " << microcount::cuda::describe_device());
}
