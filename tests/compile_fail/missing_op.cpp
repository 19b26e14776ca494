// Must NOT compile: a conv layer bound to a backend that has no kernel<ops::conv<2>, Backend>.
// tests/compile_fail/check.sh expects one short error naming the op and the backend.
#include "microcount/nn/layers/conv.hpp"

struct toy_backend {
  static constexpr const char* name = "toy";
  static constexpr bool host_memory = true;
  using scalar = float;
};

int main() {
  microcount::rng r(1);
  microcount::nn::conv2d<toy_backend> layer(4, {3, 3});
  layer.build({1, 1, 8, 8}, r);
}
