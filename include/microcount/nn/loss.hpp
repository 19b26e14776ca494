#pragma once
// The training losses. Each is a struct of run-time parameters with
//   loss_result<T, B> evaluate(prediction, target)    // value (double) and dL/dprediction, one pass
//   double value(prediction, target);  tensor<T, B> gradient(prediction, target)
// working on any backend whose kernels are included (<microcount/backends/<name>.hpp>).
//   mse_loss               mean squared error; evaluate(p, t, mask) is the masked (Noise2Void) form
//   bce_with_logits_loss   stable binary cross-entropy on logits, optional pos_weight
//   focal_loss             sigmoid (binary / per channel) or softmax (multi-class over channels) focal loss
//   tversky_loss           per-class Tversky / Dice on softmax, sigmoid or given probabilities
// The formulas and their PyTorch equivalents: docs/training_math.md.
#include "microcount/nn/loss/bce.hpp"
#include "microcount/nn/loss/common.hpp"
#include "microcount/nn/loss/focal.hpp"
#include "microcount/nn/loss/mse.hpp"
#include "microcount/nn/loss/tversky.hpp"
