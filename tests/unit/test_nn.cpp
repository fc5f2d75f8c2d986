// The network: GEMM forward against a plain loop, backprop against central
// finite differences for every activation/output/loss combination.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <utility>

#include "dptrain/blas.hpp"
#include "dptrain/nn/mlp.hpp"
#include "dptrain/nn/sparse_input.hpp"
#include "dptrain/util/random.hpp"

namespace dptrain {
namespace {

std::vector<float> random_inputs(int rows, int cols, std::uint64_t seed) {
  Rng rng(seed, 99);
  std::vector<float> x(static_cast<std::size_t>(rows) * cols);
  for (float& v : x) v = static_cast<float>(rng.uniform());
  return x;
}

void fill_input(Workspace& ws, const std::vector<float>& x, int rows) {
  Matrix in = ws.input(rows);
  std::copy(x.begin(), x.end(), in.data);
}

// The cost at p + h and at p - h, for a central difference; p is left as it was.
template <class Cost>
std::pair<double, double> costs_around(float& p, float h, const Cost& cost) {
  const float saved = p;
  p = saved + h;
  const double plus = cost();
  p = saved - h;
  const double minus = cost();
  p = saved;
  return {plus, minus};
}

// The textbook forward pass, one sample and one neuron at a time, in double.
std::vector<double> reference_forward(const Mlp& model, const std::vector<float>& x, int rows) {
  const Architecture& arch = model.arch();
  std::vector<double> out;
  for (int r = 0; r < rows; ++r) {
    std::vector<double> a(x.begin() + r * arch.inputs(), x.begin() + (r + 1) * arch.inputs());
    for (std::size_t l = 0; l < model.layers().size(); ++l) {
      const LayerSlice& s = model.layers()[l];
      std::vector<double> z(static_cast<std::size_t>(s.out));
      for (int o = 0; o < s.out; ++o) {
        double sum = model.params()[s.bias_offset + o];
        for (int i = 0; i < s.in; ++i) sum += model.params()[s.weight_index(o, i)] * a[i];
        z[o] = sum;
      }
      const Activation f = l + 1 == model.layers().size() ? arch.output : arch.hidden;
      if (f == Activation::softmax) {
        double top = *std::max_element(z.begin(), z.end()), total = 0;
        for (double& v : z) total += v = std::exp(v - top);
        for (double& v : z) v /= total;
      } else {
        for (double& v : z) {
          v = f == Activation::sigmoid ? 1 / (1 + std::exp(-v))
              : f == Activation::tanh  ? std::tanh(v)
                                       : std::max(0.0, v);
        }
      }
      a = z;
    }
    out.insert(out.end(), a.begin(), a.end());
  }
  return out;
}

TEST(Forward, GemmPassEqualsPlainLoop) {
  for (Activation hidden : {Activation::sigmoid, Activation::tanh, Activation::relu}) {
    for (Activation output : {Activation::sigmoid, Activation::softmax}) {
      Mlp model(Architecture{{13, 7, 5, 4}, hidden, output, Loss::mse});
      model.initialize(3);
      for (float& b : model.params()) b += 0.01f;  // nonzero biases take part too
      const int rows = 9;
      const std::vector<float> x = random_inputs(rows, 13, 5);
      Workspace ws(model.arch(), rows);
      fill_input(ws, x, rows);
      const ConstMatrix out = model.forward(ws, rows);
      const std::vector<double> expected = reference_forward(model, x, rows);
      ASSERT_EQ(out.size(), expected.size());
      for (std::size_t i = 0; i < expected.size(); ++i) {
        EXPECT_NEAR(out.data[i], expected[i], 1e-5) << to_string(hidden) << "/" << to_string(output) << " at " << i;
      }
    }
  }
}

using Combination = std::tuple<Activation, Activation, Loss>;
class Gradient : public ::testing::TestWithParam<Combination> {};

TEST_P(Gradient, BackpropAgreesWithCentralFiniteDifferences) {
  const auto [hidden, output, loss] = GetParam();
  Mlp model(Architecture{{6, 5, 4, 3}, hidden, output, loss});
  model.initialize(11);
  Rng jitter(7, 98);
  for (float& p : model.params()) p += static_cast<float>(0.1 * jitter.normal());
  const int rows = 5;
  const float scale = 1.0f / rows;
  const std::vector<float> x = random_inputs(rows, 6, 17);
  const std::vector<std::int32_t> labels = {0, 2, 1, 2, 0};
  Workspace ws(model.arch(), rows);

  auto cost = [&]() {
    fill_input(ws, x, rows);
    return scale * loss_sum(loss, output, model.forward(ws, rows), labels);
  };
  std::vector<float> grads(model.num_params());
  fill_input(ws, x, rows);
  model.forward(ws, rows);
  model.backward(ws, rows, labels, scale, grads);

  const float h = 1e-3f;
  const double centre = cost();
  int checked = 0;
  for (std::size_t i = 0; i < model.num_params(); ++i) {
    const auto [plus, minus] = costs_around(model.params()[i], h, cost);
    const double numeric = (plus - minus) / (2.0 * h);
    // A ReLU kink inside [p-h, p+h] makes the difference quotient meaningless; its
    // second difference is ~h * (change of slope), a smooth one ~h^2: skip kinks.
    if (hidden == Activation::relu && std::abs(plus + minus - 2 * centre) > 2e-5) continue;
    EXPECT_NEAR(grads[i], numeric, 5e-4 + 1e-2 * std::abs(numeric)) << "parameter " << i;
    ++checked;
  }
  EXPECT_GT(checked, static_cast<int>(model.num_params()) / 2);
}

std::string combination_name(const ::testing::TestParamInfo<Combination>& info) {
  const auto [hidden, output, loss] = info.param;
  std::string name = to_string(hidden) + "_" + to_string(output) + "_" + to_string(loss);
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

INSTANTIATE_TEST_SUITE_P(AllCombinations, Gradient,
                         ::testing::Combine(::testing::Values(Activation::sigmoid, Activation::tanh, Activation::relu),
                                            ::testing::Values(Activation::sigmoid, Activation::softmax),
                                            ::testing::Values(Loss::mse, Loss::cross_entropy)),
                         combination_name);

// Records each report and checks that what it calls final never changes later.
class RecordingSink final : public GradientSink {
 public:
  explicit RecordingSink(std::span<const float> grads) : grads_(grads) {}
  void ready_from(std::size_t offset) override {
    offsets.push_back(offset);
    snapshots.emplace_back(grads_.begin() + static_cast<std::ptrdiff_t>(offset), grads_.end());
  }
  std::vector<std::size_t> offsets;
  std::vector<std::vector<float>> snapshots;  // grads[offset, end) when reported

 private:
  std::span<const float> grads_;
};

TEST(Backprop, ReportsFinalGradientsLayerByLayerFromTheTopDown) {
  const Architecture arch{{12, 9, 7, 4}, Activation::relu, Activation::softmax, Loss::cross_entropy};
  Mlp model(arch);
  model.initialize(5);
  const int rows = 6;
  Workspace ws(arch, rows);
  fill_input(ws, random_inputs(rows, 12, 8), rows);
  const std::vector<std::int32_t> labels{0, 1, 2, 3, 0, 1};

  std::vector<float> whole(model.num_params());
  model.forward(ws, rows);
  model.backward(ws, rows, labels, 0.5f, whole);

  const std::size_t total = model.num_params() + 2;  // two extra values ride on top, as in training
  // 1: a bucket per layer; 100: the top two layers together; 100000: one bucket
  for (const std::size_t bucket : {std::size_t{1}, std::size_t{100}, std::size_t{100000}}) {
    const std::vector<std::size_t> cuts = model.bucket_cuts(total, bucket);
    ASSERT_EQ(cuts.front(), total);
    ASSERT_EQ(cuts.back(), 0u);
    EXPECT_EQ(cuts.size() - 1, bucket == 1 ? 3u : bucket == 100 ? 2u : 1u);
    for (std::size_t i = 1; i < cuts.size(); ++i) {
      ASSERT_LT(cuts[i], cuts[i - 1]);
      if (i + 1 < cuts.size()) {
        EXPECT_GE(cuts[i - 1] - cuts[i], std::min(bucket, total)) << "bucket " << i - 1 << " is full size";
      }
      const bool at_a_layer = std::any_of(model.layers().begin(), model.layers().end(),
                                          [&](const LayerSlice& l) { return l.weight_offset == cuts[i]; });
      EXPECT_TRUE(at_a_layer) << "cut " << cuts[i] << " splits a layer";
    }
    std::vector<float> reported(model.num_params(), -1.0f);
    RecordingSink sink(reported);
    model.forward(ws, rows);
    model.output_delta(ws, rows, labels, 0.5f);
    model.backpropagate(ws, rows, reported, &sink);
    EXPECT_EQ(reported, whole) << "the two halves of backward() are backward()";
    ASSERT_FALSE(sink.offsets.empty());
    EXPECT_EQ(sink.offsets.back(), 0u);
    for (std::size_t k = 0; k < sink.offsets.size(); ++k) {
      if (k > 0) {
        EXPECT_LE(sink.offsets[k], sink.offsets[k - 1]);
      }
      const std::vector<float> final_part(whole.begin() + static_cast<std::ptrdiff_t>(sink.offsets[k]), whole.end());
      EXPECT_EQ(sink.snapshots[k], final_part) << "reported final at offset " << sink.offsets[k];
    }
    for (const LayerSlice& l : model.layers()) {
      EXPECT_NE(std::find(sink.offsets.begin(), sink.offsets.end(), l.weight_offset), sink.offsets.end())
          << "the layer at " << l.weight_offset << " is reported";
    }
  }
}

TEST(Loss, MseIsTheTutorialsQuadraticCost) {
  // C = 1/2 ||a - y||^2 per sample, not divided by the number of outputs.
  const float a[] = {0.5f, 0.25f, 0.0f};
  const std::int32_t label[] = {1};
  EXPECT_DOUBLE_EQ(loss_sum(Loss::mse, Activation::sigmoid, ConstMatrix{a, 1, 3}, label), 0.5 * (0.25 + 0.5625 + 0.0));
}

TEST(Loss, CrossEntropyIsMinusLogSoftmaxOfTheLabel) {
  const float a[] = {0.7f, 0.2f, 0.1f};
  const std::int32_t label[] = {1};
  EXPECT_NEAR(loss_sum(Loss::cross_entropy, Activation::softmax, ConstMatrix{a, 1, 3}, label), -std::log(0.2), 1e-6);
}

TEST(Architecture, RejectsWhatCannotWork) {
  EXPECT_THROW(Mlp(Architecture{{784}}), std::exception);
  EXPECT_THROW(Mlp(Architecture{{784, 10}, Activation::softmax}), std::exception);
  EXPECT_THROW(Mlp(Architecture{{784, 10}, Activation::relu, Activation::relu}), std::exception);
  EXPECT_THROW(parse_layers("784,,10"), std::exception);
  EXPECT_THROW(parse_layers("784,-3,10"), std::exception);
  EXPECT_THROW(parse_layers("784,16x,10"), std::exception);
  for (const char* typo : {"784,10,", ",784,10", "784, 16,10", "784,+16,10", "784,1000001,10", "", "784,0010000000"})
    EXPECT_THROW(parse_layers(typo), Error) << typo;
  EXPECT_EQ(parse_layers("784,16,16,10"), (std::vector<int>{784, 16, 16, 10}));
  EXPECT_EQ(parse_layers("0784,1000000,10"), (std::vector<int>{784, 1000000, 10}));
}

TEST(Architecture, ParameterCountsPastTheLimitAreRefusedBeforeAnyAllocation) {
  const Architecture wide{{784, 1'000'000, 1'000'000, 10}};  // 10^12 weights: a typo of 1000
  EXPECT_EQ(wide.parameter_count(), kMaxParameters + 1);
  try {
    wide.validate();
    ADD_FAILURE() << "validate() accepted 10^12 parameters";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'784,1000000,1000000,10': more than 1073741824 parameters"),
              std::string::npos)
        << e.what();
  }
  // Thousands of the largest layers: the count must not wrap around to something small.
  const Architecture deep{std::vector<int>(5000, 1'000'000)};
  EXPECT_EQ(deep.parameter_count(), kMaxParameters + 1);
  EXPECT_THROW(deep.validate(), Error);
  const Architecture reference{{784, 16, 16, 10}};
  EXPECT_EQ(reference.parameter_count(), 784u * 16 + 16 + 16 * 16 + 16 + 16 * 10 + 10);
  // 1023 x 2^20 weights and 2^20 biases are 2^30 exactly: the limit is allowed, one more input is not.
  EXPECT_NO_THROW(Architecture({{1023, 1 << 20}}).validate());
  EXPECT_THROW(Architecture({{1024, 1 << 20}}).validate(), Error);
}

TEST(Mlp, ParametersAreOneFlatBufferOfTheExpectedSize) {
  Mlp model(Architecture{{784, 16, 16, 10}});
  EXPECT_EQ(model.num_params(), 784u * 16 + 16 + 16 * 16 + 16 + 16 * 10 + 10);
  EXPECT_EQ(model.layers()[1].weight_offset, 784u * 16 + 16);
}

// Inputs where about `density` of the values are nonzero, in [0, 1), and
// one row all zeros (a blank image).
std::vector<float> sparse_inputs(int rows, int cols, double density, std::uint64_t seed) {
  Rng rng(seed, 97);
  std::vector<float> x(static_cast<std::size_t>(rows) * cols);
  for (float& v : x) v = rng.uniform() < density ? static_cast<float>(rng.uniform()) : 0.0f;
  std::fill(x.begin(), x.begin() + cols, 0.0f);
  return x;
}

// The sparse kernels against sgemm on the same operands: 75 outputs take
// the 64-wide, the 8-wide and the scalar columns.
TEST(SparseInput, ProductsEqualSgemmToRoundOff) {
  const int rows = 9, in = 40, out = 75;
  const std::vector<float> x = sparse_inputs(rows, in, 0.2, 1);
  std::vector<float> w_t = random_inputs(in, out, 2), delta = random_inputs(rows, out, 3);
  for (float& v : delta) v -= 0.5f;
  const ConstMatrix X{x.data(), rows, in}, W_t{w_t.data(), in, out}, D{delta.data(), rows, out};
  SparseInput sparse(rows, in);
  ASSERT_TRUE(sparse.list_rows(X));
  sparse.list_columns();
  std::vector<float> z(static_cast<std::size_t>(rows) * out), z_dense(z.size()), dw_t(w_t.size()),
      dw_t_dense(w_t.size());
  sparse.forward(W_t, Matrix{z.data(), rows, out});
  sparse.weight_gradient(D, Matrix{dw_t.data(), in, out});
  blas::gemm_a_b(X, W_t, Matrix{z_dense.data(), rows, out}, 1.0f, 0.0f);
  blas::gemm_at_b(X, D, Matrix{dw_t_dense.data(), in, out}, 1.0f, 0.0f);
  for (std::size_t i = 0; i < z.size(); ++i) EXPECT_NEAR(z[i], z_dense[i], 1e-5) << "Z at " << i;
  for (std::size_t i = 0; i < dw_t.size(); ++i) EXPECT_NEAR(dw_t[i], dw_t_dense[i], 1e-5) << "dW^T at " << i;
  for (int c = 0; c < out; ++c) EXPECT_EQ(z[static_cast<std::size_t>(c)], 0.0f);  // the blank row
}

// The loops chosen for this CPU against their portable builds: the same
// lists exactly, and the same sums to round-off (FMA rounds once). Rows of
// 5 to 70 inputs cover the vector widths' tails; -0 is not listed, NaN is.
TEST(SparseInput, TheChosenLoopsAgreeWithThePortableOnes) {
  using namespace sparse_input_detail;
  Rng rng(8, 96);
  for (int cols : {5, 8, 15, 16, 17, 33, 70}) {
    std::vector<float> row(static_cast<std::size_t>(cols));
    for (float& v : row) v = rng.uniform() < 0.3 ? static_cast<float>(rng.uniform()) : 0.0f;
    row[0] = -0.0f;
    if (cols > 9) row[9] = std::numeric_limits<float>::quiet_NaN();
    std::vector<int> columns[2] = {std::vector<int>(row.size()), std::vector<int>(row.size())};
    std::vector<float> values[2] = {std::vector<float>(row.size()), std::vector<float>(row.size())};
    const int counts[2] = {chosen_list_row()(row.data(), cols, columns[0].data(), values[0].data()),
                           portable_list_row()(row.data(), cols, columns[1].data(), values[1].data())};
    ASSERT_EQ(counts[0], counts[1]) << cols << " inputs";
    int expected = 0;
    for (int k = 0; k < cols; ++k) {
      if (row[static_cast<std::size_t>(k)] == 0.0f) continue;
      EXPECT_EQ(columns[0][static_cast<std::size_t>(expected)], k);
      EXPECT_EQ(columns[1][static_cast<std::size_t>(expected)], k);
      ++expected;
    }
    EXPECT_EQ(counts[0], expected);
    for (int t = 0; t < expected; ++t) {
      const float v = row[static_cast<std::size_t>(columns[0][static_cast<std::size_t>(t)])];
      for (const auto& list : values) {
        if (std::isnan(v))
          EXPECT_TRUE(std::isnan(list[static_cast<std::size_t>(t)]));
        else
          EXPECT_EQ(list[static_cast<std::size_t>(t)], v);
      }
    }
  }
  // Sums of 0 to 9 scaled rows of 75 columns (64-wide, 8-wide and scalar parts).
  const int n = 75, stride = 80;
  const std::vector<float> rows = random_inputs(12, stride, 9);
  const std::vector<float> scales = random_inputs(1, 9, 10);
  const int index[9] = {3, 0, 11, 7, 7, 2, 9, 5, 1};
  for (int count = 0; count <= 9; ++count) {
    std::vector<float> chosen(n, -1.0f), portable(n, -1.0f);
    chosen_sum_scaled_rows()(count, scales.data(), index, rows.data(), stride, n, chosen.data());
    portable_sum_scaled_rows()(count, scales.data(), index, rows.data(), stride, n, portable.data());
    for (int c = 0; c < n; ++c) {
      double sum = 0.0;
      for (int t = 0; t < count; ++t)
        sum += double{scales[static_cast<std::size_t>(t)]} * rows[static_cast<std::size_t>(index[t]) * stride + c];
      EXPECT_NEAR(chosen[static_cast<std::size_t>(c)], sum, 1e-5) << count << " rows, column " << c;
      EXPECT_NEAR(portable[static_cast<std::size_t>(c)], sum, 1e-5) << count << " rows, column " << c;
    }
  }
}

TEST(SparseInput, DenseInputsAreLeftToSgemm) {
  const int rows = 6, in = 50;
  SparseInput sparse(rows, in);
  const std::vector<float> dense = random_inputs(rows, in, 4);
  EXPECT_FALSE(sparse.list_rows(ConstMatrix{dense.data(), rows, in}));
  // Just under and just over the bound (rows x in x kSparseInputMaxDensity = 75 nonzeros).
  std::vector<float> x(static_cast<std::size_t>(rows) * in, 0.0f);
  const auto most = static_cast<std::size_t>(kSparseInputMaxDensity * static_cast<double>(x.size()));
  std::fill(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(most), 1.0f);
  EXPECT_TRUE(sparse.list_rows(ConstMatrix{x.data(), rows, in}));
  x[most] = 1.0f;
  EXPECT_FALSE(sparse.list_rows(ConstMatrix{x.data(), rows, in}));
  // Not enabled (a first layer too narrow to pay for it): no lists, even for rows of zeros.
  SparseInput disabled(rows, in, false);
  const std::vector<float> zeros(x.size(), 0.0f);
  EXPECT_FALSE(disabled.list_rows(ConstMatrix{zeros.data(), rows, in}));
  EXPECT_TRUE(sparse.list_rows(ConstMatrix{zeros.data(), rows, in}));
}

// The network with the sparse first layer against the same network on sgemm
// (set_sparse_input(false)), outputs and every gradient, and against finite
// differences: the first layer's weights are input-major in both.
TEST(SparseInput, TheNetworkGivesTheSameOutputsAndGradientsAsWithSgemm) {
  const int rows = 7, in = 30;
  // The sparse kernels run where OpenBLAS has one thread.
  const int threads = blas::threads();
  blas::set_threads(1);
  for (const Loss loss : {Loss::mse, Loss::cross_entropy}) {
    const Activation output = loss == Loss::mse ? Activation::sigmoid : Activation::softmax;
    Mlp model(Architecture{{in, 70, 9, 4}, Activation::relu, output, loss});
    model.initialize(21);
    const std::vector<float> x = sparse_inputs(rows, in, 0.15, 5);
    const std::vector<std::int32_t> labels = {0, 3, 1, 2, 2, 0, 1};
    std::vector<std::vector<float>> outputs, grads;
    for (const bool sparse : {true, false}) {
      model.set_sparse_input(sparse);
      Workspace ws(model.arch(), rows);
      fill_input(ws, x, rows);
      const ConstMatrix a = model.forward(ws, rows);
      EXPECT_EQ(ws.input_was_sparse(), sparse);
      outputs.emplace_back(a.data, a.data + a.size());
      grads.emplace_back(model.num_params());
      model.backward(ws, rows, labels, 1.0f / rows, grads.back());
    }
    for (std::size_t i = 0; i < outputs[0].size(); ++i) EXPECT_NEAR(outputs[0][i], outputs[1][i], 1e-6) << i;
    for (std::size_t i = 0; i < grads[0].size(); ++i) EXPECT_NEAR(grads[0][i], grads[1][i], 1e-6) << "gradient " << i;
    // and the sparse path's first-layer gradients against central differences (sigmoid output: smooth)
    if (loss != Loss::mse) continue;
    model.set_sparse_input(true);
    Workspace ws(model.arch(), rows);
    const auto cost = [&] {
      fill_input(ws, x, rows);
      return loss_sum(loss, output, model.forward(ws, rows), labels) / rows;
    };
    const double centre = cost();
    const LayerSlice& first = model.layers()[0];
    const float h = 1e-3f;
    int checked = 0;
    for (int o = 0; o < first.out; o += 7) {
      for (int i = 0; i < first.in; ++i) {
        const auto [plus, minus] = costs_around(model.params()[first.weight_index(o, i)], h, cost);
        if (std::abs(plus + minus - 2 * centre) > 2e-5) continue;  // a ReLU kink
        const double numeric = (plus - minus) / (2.0 * h);
        EXPECT_NEAR(grads[0][first.weight_index(o, i)], numeric, 5e-4 + 1e-2 * std::abs(numeric)) << o << "," << i;
        ++checked;
      }
    }
    EXPECT_GT(checked, 100);
  }
  // On more threads, sgemm: the sparse kernels would run on one of them.
  blas::set_threads(2);
  Mlp model(Architecture{{in, 70, 3}});
  Workspace ws(model.arch(), rows);
  fill_input(ws, sparse_inputs(rows, in, 0.15, 5), rows);
  model.forward(ws, rows);
  EXPECT_EQ(ws.input_was_sparse(), blas::threads() == 1);  // an OpenBLAS built for one thread stays on it
  blas::set_threads(threads);
}

TEST(Mlp, InitialisationIsAPureFunctionOfTheSeed) {
  Mlp a(Architecture{{20, 8, 3}}), b(Architecture{{20, 8, 3}}), c(Architecture{{20, 8, 3}});
  a.initialize(42);
  b.initialize(42);
  c.initialize(43);
  EXPECT_TRUE(std::equal(a.params().begin(), a.params().end(), b.params().begin()));
  EXPECT_FALSE(std::equal(a.params().begin(), a.params().end(), c.params().begin()));
}

// Layer 0's W is drawn in [out x in] order like every other layer's, so a
// seed gives the same network as before its layout became input-major.
TEST(Mlp, TheFirstLayerIsDrawnInOutputMajorOrder) {
  Mlp model(Architecture{{5, 3, 2}});
  model.initialize(42);
  Rng rng(42, purpose::init, 0);
  const double bound = 1.0 / std::sqrt(5.0);
  for (int o = 0; o < 3; ++o)
    for (int i = 0; i < 5; ++i)
      EXPECT_EQ(model.params()[model.layers()[0].weight_index(o, i)],
                static_cast<float>(bound * (2.0 * rng.uniform() - 1.0)));
}

}  // namespace
}  // namespace dptrain
