#pragma once
// Everything a training run is configured by. The CLI fills it (command line,
// then --config FILE.ini, then the checkpoint being resumed); to_ini() writes
// it back in the same INI form, saved in the run dir and in checkpoints.
#include <cstdint>
#include <string>

#include "dptrain/comm/gradient_exchange.hpp"
#include "dptrain/io/checkpoint.hpp"
#include "dptrain/nn/mlp.hpp"
#include "dptrain/train/progress.hpp"

namespace dptrain {

inline constexpr std::int64_t kDefaultShards = 240;
// Exact sums stay exact for up to 2^12 addends (comm/exact_sum.hpp).
inline constexpr std::int64_t kMaxShards = 4096;

struct TrainConfig {
  std::string data;
  Architecture arch;
  OptimizerSettings optimizer;
  std::int64_t batch_size = 10;
  std::int64_t epochs = 30;
  std::int64_t seed = 1;
  bool shuffle = true;
  // Shards of each split (see data/sharding.hpp). 240 = 2^4*3*5 divides evenly
  // among 1-6, 8, 10, 12, 15, 16, 20, 24, 30, 40, 48, 60, 80, 120 and 240
  // ranks; other counts get shards balanced to within one.
  std::int64_t shards = kDefaultShards;
  // Gradients summed exactly (comm/exact_sum.hpp) over micro-batches computed
  // alone: bit-identical results on any number of ranks, at a cost.
  bool exact = false;
  std::string run_dir;
  std::int64_t checkpoint_every = 1;
  std::int64_t keep_checkpoints = 0;  // newest checkpoint files kept; 0 = all
  int threads = 0;                    // OpenBLAS threads per rank; 0 = cores / ranks on the node
  bool quiet = false;                 // only errors and the final summary on stdout (metrics.jsonl is still written)
  std::int64_t log_every = 0;         // steps between progress lines; 0 = automatic
  std::int64_t profile_steps = 0;     // steps of each rank written as a Chrome trace (--profile)
  // Gradient allreduce bucket size: buckets are reduced while backprop goes
  // on. 0 = one blocking allreduce after backprop.
  std::int64_t bucket_kib = 0;
  // How the run behaves, not what it trains (so not in to_ini): a rank that
  // waits longer than this for a collective or its own step ends the job
  // (0 = never); live or plain progress lines.
  double watchdog_seconds = 600;
  ProgressMode progress = ProgressMode::automatic;
  // How gradients are summed: shared memory inside a node (MPI between
  // nodes), or MPI_Allreduce throughout (the only one with buckets).
  ReduceMethod reduce = ReduceMethod::shm;
  // Whether the first layer may skip zero inputs (nn/sparse_input.hpp): the
  // same products, summed in another order, so only round-off differs.
  bool sparse_input = true;

  std::string to_ini() const;  // the training options, not where they came from
};

}  // namespace dptrain
