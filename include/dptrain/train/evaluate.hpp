#pragma once
// Evaluation shared by all ranks: each holds its shards of the split (the
// same ShardLayout as training), and evaluates each shard in passes that
// start at the shard's first row, so every GEMM sees the same rows on any
// number of ranks. Counts are integers and the loss and probability sums are
// exact sums of per-pass values (comm/exact_sum.hpp): no padded or repeated
// samples, and the same bits on any number of ranks.
#include <cstdint>
#include <vector>

#include "dptrain/comm/communicator.hpp"
#include "dptrain/data/dataset.hpp"
#include "dptrain/nn/mlp.hpp"
#include "dptrain/train/config.hpp"

namespace dptrain {

struct EvalResult {
  int classes = 0;
  std::int64_t correct = 0;
  std::int64_t total = 0;
  double loss_sum = 0.0;
  double top_probability_sum = 0.0;     // the winning class's probability, summed
  std::vector<std::int64_t> confusion;  // [true label x predicted], labelled data only
  std::vector<std::int64_t> predicted;  // how often each class was predicted

  double accuracy() const { return ratio(static_cast<double>(correct), total); }
  double mean_loss() const { return ratio(loss_sum, total); }
  double mean_top_probability() const { return ratio(top_probability_sum, total); }
  std::int64_t count(int true_label, int predicted_label) const {
    return confusion[true_label * classes + predicted_label];
  }
  std::int64_t support(int c) const;  // samples whose true label is c
  double precision(int c) const;
  double recall(int c) const;

 private:
  static double ratio(double a, std::int64_t b) { return b ? a / static_cast<double>(b) : 0.0; }
};

// The network's outputs as probabilities: softmax outputs as they are,
// sigmoid outputs scaled to sum to 1.
void output_probabilities(Activation output, const float* row, int classes, float* probabilities);

class Evaluator {
 public:
  static constexpr int kRowsPerPass = 1000;
  // Reads this rank's shards of `split` from the data file (collective).
  Evaluator(const std::string& data, const std::string& split, const Architecture& arch, const Communicator& comm,
            std::int64_t shards = kDefaultShards);
  EvalResult run(const Mlp& model) const;  // collective
  const Shard& shard() const { return shard_; }

 private:
  const Communicator& comm_;
  Shard shard_;
  mutable Workspace workspace_;
  mutable std::vector<std::int32_t> labels_;
  std::vector<std::uint32_t> all_rows_;
};

// The noise experiment: `count` images of uniform random pixels in [0, 1), a
// pure function of (seed, image index), shared by the ranks. Only
// `predicted` and the top probabilities mean anything here.
EvalResult evaluate_noise(const Mlp& model, std::int64_t count, std::uint64_t seed, const Communicator& comm);

}  // namespace dptrain
