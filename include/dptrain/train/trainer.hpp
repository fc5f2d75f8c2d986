#pragma once
// Synchronous data-parallel SGD. Per step, on every rank:
//   shard -> forward -> backward -> allreduce -> step
// and per epoch: evaluate -> log -> checkpoint (rank 0 writes).
#include <chrono>
#include <cstdint>
#include <fstream>
#include <functional>
#include <optional>
#include <vector>

#include "dptrain/comm/communicator.hpp"
#include "dptrain/comm/gradient_exchange.hpp"
#include "dptrain/data/dataset.hpp"
#include "dptrain/io/checkpoint.hpp"
#include "dptrain/nn/mlp.hpp"
#include "dptrain/optim/schedule.hpp"
#include "dptrain/optim/sgd.hpp"
#include "dptrain/train/config.hpp"
#include "dptrain/train/evaluate.hpp"
#include "dptrain/train/progress.hpp"
#include "dptrain/train/step_timer.hpp"

namespace dptrain {

class Trainer {
 public:
  // Collective: reads each rank's shards and builds the model, fresh from
  // config.seed or from `resume`. Throws CollectiveError on every rank if any fails.
  Trainer(const Communicator& comm, TrainConfig config, std::optional<Checkpoint> resume);

  enum class Outcome { finished, stopped };
  // Trains up to config.epochs; collective. While a StopSignals is installed,
  // a SIGUSR1 or SIGTERM on any rank stops every rank after the same step,
  // with a checkpoint: Outcome::stopped.
  Outcome run();

  // Called on every rank after every optimizer step (tests check invariants here).
  void set_step_observer(std::function<void(const Trainer&)> observer) { step_observer_ = std::move(observer); }

  const Mlp& model() const { return model_; }
  const Progress& progress() const { return progress_; }

 private:
  bool train_epoch(std::int64_t epoch);  // false when stopped part-way
  bool train_step(std::int64_t epoch, std::int64_t step, std::span<const std::uint32_t> order);
  void finish_epoch(std::int64_t epoch, double seconds);
  void save_checkpoint(const std::string& name);
  void prepare_run_dir();
  void write_profile();
  std::vector<std::uint32_t>& epoch_order(std::int64_t epoch);

  const Communicator& comm_;
  TrainConfig config_;
  Mlp model_;
  Sgd optimizer_;
  Schedule schedule_;
  Progress progress_;
  BatchSlicing slicing_;
  Shard shard_;
  std::optional<Evaluator> evaluator_;
  Workspace workspace_;
  // Gradients, then the batch's loss sum and the number of ranks asked to
  // stop: one allreduce carries all three, so neither the loss check (NaN,
  // Inf) nor the stop decision costs an extra collective.
  std::size_t loss_slot() const { return model_.num_params(); }
  std::size_t stop_slot() const { return model_.num_params() + 1; }
  GradientExchange reducer_;  // sums that buffer over ranks (--reduce shm or mpi)
  std::vector<std::int32_t> batch_labels_;
  std::vector<std::uint32_t> order_;
  std::ofstream metrics_;
  ProgressLine progress_line_;
  StepTimer timer_;
  EvalResult last_test_;
  std::function<void(const Trainer&)> step_observer_;
};

// Which OpenBLAS thread count fits: the cores this rank may use, shared with
// the other ranks on its node, at least 1.
int auto_thread_count(const Communicator& comm);

}  // namespace dptrain
