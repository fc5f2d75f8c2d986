#pragma once
// Everything a training run is configured by. The CLI fills it (command line,
// then --config FILE.ini, then the checkpoint being resumed); to_ini() writes
// it back in the same INI form, saved in the run dir and in checkpoints.
#include <cstdint>
#include <string>

#include "dptrain/comm/gradient_exchange.hpp"
#include "dptrain/io/checkpoint.hpp"
#include "dptrain/nn/mlp.hpp"

namespace dptrain {

struct TrainConfig {
  std::string data;
  Architecture arch;
  OptimizerSettings optimizer;
  std::int64_t batch_size = 10;
  std::int64_t epochs = 30;
  std::int64_t seed = 1;
  bool shuffle = true;
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
  // How gradients are summed: shared memory inside a node (MPI between
  // nodes), or MPI_Allreduce throughout (the only one with buckets).
  ReduceMethod reduce = ReduceMethod::shm;

  std::string to_ini() const;  // the training options, not where they came from
};

}  // namespace dptrain
