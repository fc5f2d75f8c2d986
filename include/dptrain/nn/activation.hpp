#pragma once
#include <span>
#include <string>

#include "dptrain/tensor.hpp"

namespace dptrain {

enum class Activation { sigmoid, tanh, relu, softmax };

std::string to_string(Activation a);
Activation parse_activation(const std::string& name);  // throws Error naming the value

// Z[rows x out] += bias (broadcast over rows), then A = f(Z) in place: one pass.
void add_bias_and_activate(Matrix z, std::span<const float> bias, Activation f);

// delta[rows x n] *= f'(z), written in terms of a = f(z), so pre-activations
// need not be stored. Not for softmax (its Jacobian is handled by the loss).
void multiply_by_derivative(ConstMatrix a, Matrix delta, Activation f);

}  // namespace dptrain
