#pragma once
// Synchronous data-parallel SGD. Per step, on every rank:
//   shard -> forward -> backward -> allreduce -> step
// and per epoch: evaluate -> log -> checkpoint (rank 0 writes).
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "dptrain/comm/communicator.hpp"
#include "dptrain/comm/gradient_exchange.hpp"
#include "dptrain/comm/node_reducer.hpp"
#include "dptrain/data/sharding.hpp"
#include "dptrain/io/checkpoint.hpp"
#include "dptrain/nn/mlp.hpp"
#include "dptrain/optim/schedule.hpp"
#include "dptrain/optim/sgd.hpp"
#include "dptrain/train/config.hpp"
#include "dptrain/train/evaluate.hpp"
#include "dptrain/train/progress.hpp"
#include "dptrain/train/run_folder.hpp"
#include "dptrain/train/step_timer.hpp"
#include "dptrain/train/training_data.hpp"
#include "dptrain/util/test_hooks.hpp"
#include "dptrain/util/worker_pool.hpp"

namespace dptrain {

class Trainer {
 public:
  // Collective: sets up the process (BLAS threads, denormals), reads each
  // rank's shards and builds the model, fresh from config.seed or from
  // `resume`. Throws CollectiveError on every rank if any fails.
  Trainer(const Communicator& comm, TrainConfig config, std::optional<Checkpoint> resume);

  enum class Outcome { finished, stopped };
  // Trains up to config.epochs; collective. While a StopSignals is installed,
  // a SIGUSR1 or SIGTERM on any rank stops every rank after the same step,
  // with a checkpoint: Outcome::stopped.
  Outcome run();

  // Called on every rank after every optimizer step (tests check invariants here).
  void set_step_observer(std::function<void(const Trainer&)> observer) { step_observer_ = std::move(observer); }

  const Mlp& model() const { return model_; }
  const Sgd& optimizer() const { return optimizer_; }
  const Progress& progress() const { return progress_; }
  const TrainingData& data() const { return data_; }
  const WorkerPool& update_workers() const { return *update_workers_; }

 private:
  void restore(const Checkpoint& checkpoint);
  bool train_epoch(std::int64_t epoch);  // false when stopped part-way
  bool train_step(std::int64_t epoch);   // true when any rank was asked to stop
  // A step's gradients, loss and stop request, summed over ranks.
  struct StepSums {
    std::span<const float> grads;
    double loss = 0;
    bool stop = false;
    bool updated = false;  // the optimizer step is done (shared parameters)
  };
  // --reduce shm without --exact: one copy of the parameters per node.
  bool shares_parameters() const { return config_.reduce == ReduceMethod::shm && !config_.exact; }
  void share_parameters();
  StepSums sum_gradients_fast(int rows, float lr);
  StepSums sum_gradients_exact(std::int64_t step);
  void check_loss(double batch_loss, std::int64_t epoch) const;
  void check_parameters(std::int64_t epoch) const;
  void finish_epoch(std::int64_t epoch, double seconds);

  const Communicator& comm_;
  TrainConfig config_;
  Mlp model_;
  Sgd optimizer_;
  TrainingData data_;
  Schedule schedule_;
  RunFolder run_folder_;
  Progress progress_;

  // Step buffers, sized once: the step allocates nothing.
  Workspace workspace_;
  std::vector<std::uint32_t> batch_samples_;  // this rank's rows of the step (local indices)
  std::vector<std::int32_t> batch_labels_;
  std::vector<MicroBatch> micro_batches_;
  int micro_batch_count_ = 0;
  // The gradients, then the batch's loss sum and the number of ranks asked
  // to stop: one reduction carries all three, so neither the loss check
  // (NaN, Inf) nor the stop decision costs an extra collective.
  std::size_t loss_slot() const { return model_.num_params(); }
  std::size_t stop_slot() const { return model_.num_params() + 1; }
  GradientExchange reducer_;                  // sums that buffer over ranks (--reduce shm or mpi)
  std::optional<WorkerPool> update_workers_;  // one thread per BLAS thread (and core) of the rank
  // Exact mode: the same slots as 64-bit fixed point, plus a count of
  // addends the exact sums refused (not finite, out of range); summed in
  // shared memory (--reduce shm) or by MPI_Allreduce (mpi).
  std::size_t refused_slot() const { return model_.num_params() + 2; }
  std::optional<NodeReducer<std::int64_t>> exact_shm_;
  std::vector<std::int64_t> exact_buffer_;  // --reduce mpi

  ProgressLine progress_line_;
  StepTimer timer_;
  test_hooks::SlowRank slow_rank_;
  EvalResult last_test_;
  std::function<void(const Trainer&)> step_observer_;
};

// Which OpenBLAS thread count fits: the cores this rank may use, shared with
// the other ranks on its node, at least 1.
int auto_thread_count(const Communicator& comm);

}  // namespace dptrain
