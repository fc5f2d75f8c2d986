#pragma once
// Losses on a batch of network outputs A[rows x classes] against integer labels.
//
//   mse            C = 1/(2B) sum_batch ||a - onehot(y)||^2   (the tutorial's quadratic cost)
//   cross-entropy  softmax output: C = 1/B sum_batch -log a_y
//                  sigmoid output: C = 1/B sum_batch sum_j -[y_j log a_j + (1-y_j) log(1-a_j)]
//
// B is the global batch size: each rank passes scale = 1/B so that the sum of
// the ranks' gradients is the gradient of the global batch mean.
#include <cstdint>
#include <span>
#include <string>

#include "dptrain/nn/activation.hpp"
#include "dptrain/tensor.hpp"

namespace dptrain {

enum class Loss { mse, cross_entropy };

std::string to_string(Loss l);
Loss parse_loss(const std::string& name);

// Sum over the rows of each sample's loss (not yet divided by B).
//
// Cross-entropy is computed from `logits` (z, the output layer's
// pre-activations) when given: -log softmax(z)_y = logsumexp(z) - z_y and
// -log sigmoid(+-z) = softplus(-+z), exact in double for any finite z. Nothing
// is clamped: a network that blows up shows a huge loss (or inf/NaN), never a
// plausible-looking constant. Without logits it falls back to -log a, which is
// +inf when a probability has underflowed to 0.
double loss_sum(Loss loss, Activation output, ConstMatrix a, std::span<const std::int32_t> labels,
                ConstMatrix logits = {});

// Writes delta = scale * dC/dz for the output layer's pre-activations z,
// where a = output(z), and returns the same loss_sum. The gradient uses a
// only (softmax - onehot for cross-entropy).
double loss_and_output_delta(Loss loss, Activation output, ConstMatrix a, std::span<const std::int32_t> labels,
                             float scale, Matrix delta, ConstMatrix logits = {});

}  // namespace dptrain
