#pragma once
// The small model state the checkpoint harness loads into and the seed generator saves: two parameters, a
// buffer, an optimizer moment, a step counter and a learning rate, like a real model + Adam.
#include <memory>

#include "microcount/backends/reference.hpp"
#include "microcount/io/checkpoint.hpp"

namespace microcount::fuzz {

struct checkpoint_model {
  using B = backend::reference;
  tensor<float, B> weight{2, 1, 3, 3}, bias{2}, running_mean{2}, moment{2, 1, 3, 3};
  std::int64_t step = 0;
  double learning_rate = 0;
  io::checkpoint_state<B> state;

  checkpoint_model() {
    for (index_t i = 0; i < weight.size(); ++i) weight[i] = 0.25f * static_cast<float>(i);
    for (index_t i = 0; i < moment.size(); ++i) moment[i] = 1.0f / static_cast<float>(i + 1);
    bias[0] = -1;
    bias[1] = 1;
    running_mean[0] = running_mean[1] = 0.5f;
    state.entries = {{"parameter", "conv.weight", &weight},
                     {"parameter", "conv.bias", &bias},
                     {"buffer", "bn.running_mean", &running_mean},
                     {"optimizer", "opt.m.conv.weight", &moment}};
    state.counters = {{"opt.step", &step}};
    state.reals = {{"sched.lr", &learning_rate}};
  }
};

inline constexpr const char* checkpoint_architecture = "fuzz-net";

}  // namespace microcount::fuzz
