#pragma once
// Test-set evaluation shared by all ranks: each holds a contiguous part of the
// split, and the counts are summed exactly (no padded or repeated samples).
#include <cstdint>

#include "dptrain/comm/communicator.hpp"
#include "dptrain/data/dataset.hpp"
#include "dptrain/nn/mlp.hpp"

namespace dptrain {

struct EvalResult {
  std::int64_t correct = 0;
  std::int64_t total = 0;
  double loss_sum = 0.0;
  double accuracy() const { return total ? static_cast<double>(correct) / static_cast<double>(total) : 0.0; }
  double mean_loss() const { return total ? loss_sum / static_cast<double>(total) : 0.0; }
};

class Evaluator {
 public:
  static constexpr int kRowsPerPass = 1000;
  // Reads this rank's part of `split` from the data file.
  Evaluator(const std::string& data, const std::string& split, const Architecture& arch, const Communicator& comm);
  EvalResult run(const Mlp& model) const;  // collective
  std::size_t shard_bytes() const { return shard_.bytes(); }

 private:
  const Communicator& comm_;
  Shard shard_;
  mutable Workspace workspace_;
  mutable std::vector<std::int32_t> labels_;
  std::vector<std::uint32_t> all_rows_;
};

}  // namespace dptrain
