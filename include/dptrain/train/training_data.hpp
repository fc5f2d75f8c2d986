#pragma once
// What a run trains and evaluates on, as this rank holds it: its shards of
// /train with the batch order over them, its shards of /test, and the data
// file's SHA-256 (which checkpoints record).
#include <optional>
#include <string>

#include "dptrain/comm/communicator.hpp"
#include "dptrain/data/dataset.hpp"
#include "dptrain/data/sharding.hpp"
#include "dptrain/train/config.hpp"
#include "dptrain/train/evaluate.hpp"

namespace dptrain {

class TrainingData {
 public:
  // Collective: checks the settings against the file and the number of
  // ranks, reads every rank's shards; a failure on any rank is a
  // CollectiveError on all.
  TrainingData(const Communicator& comm, const TrainConfig& config);

  const Shard& train() const { return *train_; }
  RankBatches& batches() { return *batches_; }
  const RankBatches& batches() const { return *batches_; }
  const Evaluator& test() const { return *test_; }
  const std::string& sha256() const { return sha256_; }

  // Rank 0: which rows every rank read and what the reads cost (data.json),
  // and a one-line summary. Collective.
  std::string report_json() const;
  std::string summary() const;

 private:
  const Communicator& comm_;
  std::optional<Shard> train_;
  std::optional<RankBatches> batches_;
  std::optional<Evaluator> test_;
  std::string sha256_;
  std::int64_t max_bytes_read_ = 0;  // over ranks
};

}  // namespace dptrain
