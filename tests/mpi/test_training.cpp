// Data-parallel training on P ranks against one rank, invariants after every
// step, exact evaluation counts, bit-for-bit resume, and collective errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <numeric>

#include "dptrain/comm/communicator.hpp"
#include "dptrain/error.hpp"
#include "dptrain/train/stop_signal.hpp"
#include "dptrain/train/trainer.hpp"
#include "dptrain/util/sha256.hpp"
#include "test_files.hpp"

namespace dptrain {
namespace {

const Communicator& world() {
  static const Communicator comm(MPI_COMM_WORLD);
  return comm;
}
const Communicator& self() {
  static const Communicator comm(MPI_COMM_SELF);
  return comm;
}

// A folder every rank sees: rank 0 makes and removes it.
class SharedDir {
 public:
  SharedDir() {
    if (world().is_root()) {
      owned_ = std::make_unique<TempDir>();
      path_ = owned_->path().string();
    }
    world().broadcast(path_);
  }
  ~SharedDir() { world().barrier(); }
  std::string operator/(const std::string& name) const { return (std::filesystem::path(path_) / name).string(); }

 private:
  std::unique_ptr<TempDir> owned_;
  std::string path_;
};

// 203 samples: batches of 10 leave a partial batch of 3, and 10 does not
// divide among 3 or 4 ranks, so the uneven cases are exercised.
std::string make_data(const SharedDir& dir, std::int64_t train_samples = 203, int bad_label_at = -1) {
  const std::string path = dir / "data.h5";
  world().collectively([&] {
    if (!world().is_root()) return;
    SyntheticSplit train = make_split(train_samples, 8, 3, 1);
    if (bad_label_at >= 0) train.labels[static_cast<std::size_t>(bad_label_at)] = 7;
    write_synthetic_hdf5(path, train, make_split(57, 8, 3, 2));
  });
  return path;
}

TrainConfig small_config(const std::string& data, const std::string& run_dir) {
  TrainConfig c;
  c.data = data;
  c.arch = Architecture{{8, 6, 5, 3}, Activation::sigmoid, Activation::sigmoid, Loss::mse};
  c.optimizer.lr = 0.5;
  c.batch_size = 10;
  c.epochs = 5;
  c.seed = 3;
  c.run_dir = run_dir;
  c.threads = 1;
  c.quiet = true;
  c.shards = 12;  // divides among 1, 2, 3 and 4 ranks; 203 samples make shards of 16 and 17
  return c;
}

std::vector<float> params_after(const Communicator& comm, const TrainConfig& config) {
  Trainer trainer(comm, config, std::nullopt);
  trainer.run();
  const auto p = trainer.model().params();
  return {p.begin(), p.end()};
}

double max_abs_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(double{a[i]} - b[i]));
  return worst;
}

TEST(DataParallel, PRanksTakeTheSameStepsAsOneRank) {
  SharedDir dir;
  const std::string data = make_data(dir);
  for (const bool momentum : {false, true}) {
    TrainConfig config = small_config(data, dir / "parallel");
    if (momentum) {
      config.optimizer.sgd.momentum = 0.9f;
      config.optimizer.lr = 0.1;
      config.optimizer.schedule = ScheduleKind::cosine;
      config.arch.hidden = Activation::relu;
      config.arch.output = Activation::softmax;
      config.arch.loss = Loss::cross_entropy;
    }
    const std::vector<float> parallel = params_after(world(), config);  // 105 steps, shuffled
    config.run_dir = dir / ("serial-rank-" + std::to_string(world().rank()));
    const std::vector<float> serial = params_after(self(), config);
    Mlp initial(config.arch);
    initial.initialize(3);
    const std::vector<float> start(initial.params().begin(), initial.params().end());
    EXPECT_GT(max_abs_difference(serial, start), 0.05) << "training moved the parameters";
    // The same batches; only the float sums' grouping differs (the default, fast mode).
    EXPECT_LT(max_abs_difference(parallel, serial), 2e-5)
        << "momentum " << momentum << " on " << world().size() << " ranks";
  }
}

// Everything a run ends with, as bytes: parameters, velocities, the loss
// sums and the last evaluation.
struct RunState {
  std::vector<float> params;
  std::vector<float> velocity;
  std::int64_t global_step = 0;
  double test_loss_sum = 0;
  std::int64_t test_correct = 0;
  std::vector<double> epoch_losses;
  bool operator==(const RunState& o) const {
    return std::memcmp(params.data(), o.params.data(), params.size() * sizeof(float)) == 0 &&
           params.size() == o.params.size() && velocity.size() == o.velocity.size() &&
           std::memcmp(velocity.data(), o.velocity.data(), velocity.size() * sizeof(float)) == 0 &&
           global_step == o.global_step && std::memcmp(&test_loss_sum, &o.test_loss_sum, sizeof(double)) == 0 &&
           test_correct == o.test_correct && epoch_losses == o.epoch_losses;
  }
};

RunState final_state(Trainer& trainer, const Communicator& comm) {
  RunState state;
  std::vector<double> losses;
  trainer.set_step_observer([&](const Trainer& t) {
    if (t.progress().step_in_epoch + 1 == t.data().batches().steps()) losses.push_back(t.progress().epoch_loss_sum);
  });
  trainer.run();
  const auto p = trainer.model().params();
  const auto v = trainer.optimizer().velocity();
  state.params.assign(p.begin(), p.end());
  state.velocity.assign(v.begin(), v.end());
  state.global_step = trainer.progress().global_step;
  const EvalResult test = trainer.data().test().run(trainer.model());
  (void)comm;
  state.test_loss_sum = test.loss_sum;
  state.test_correct = test.correct;
  state.epoch_losses = losses;
  return state;
}

TrainConfig exact_config(const std::string& data, const std::string& run_dir, bool relu) {
  TrainConfig config = small_config(data, run_dir);
  config.exact = true;
  config.epochs = 3;
  config.optimizer.sgd.momentum = 0.9f;
  config.optimizer.sgd.weight_decay = 1e-3f;
  config.optimizer.schedule = ScheduleKind::cosine;
  config.optimizer.lr = relu ? 0.05 : 0.5;
  if (relu) config.arch = Architecture{{8, 32, 16, 3}, Activation::relu, Activation::softmax, Loss::cross_entropy};
  return config;
}

// The run of `config` on every rank together against each rank's own run of it alone.
void expect_world_equals_one_rank(TrainConfig config, const SharedDir& dir, const std::string& what) {
  config.run_dir = dir / "parallel";
  Trainer parallel(world(), config, std::nullopt);
  const RunState shared = final_state(parallel, world());
  config.run_dir = dir / ("serial-rank-" + std::to_string(world().rank()));
  Trainer serial(self(), config, std::nullopt);
  const RunState alone = final_state(serial, self());
  EXPECT_EQ(alone.epoch_losses.size(), 3u);
  EXPECT_FALSE(alone.velocity.empty());
  EXPECT_TRUE(shared == alone) << what << " on " << world().size() << " ranks: max parameter difference "
                               << max_abs_difference(shared.params, alone.params);
}

TEST(Exact, BitIdenticalOnAnyNumberOfRanks) {
  SharedDir dir;
  const std::string data = make_data(dir);
  for (const bool relu : {false, true})
    expect_world_equals_one_rank(exact_config(data, dir / "parallel", relu), dir,
                                 relu ? "relu network" : "sigmoid network");
}

// MNIST-like inputs, every row 7 of 40 nonzero (17.5%), under a first layer
// of 64 outputs: the sparse first layer runs (one BLAS thread, as --exact
// chooses), and the exact mode stays bit-identical on any number of ranks.
TEST(Exact, BitIdenticalOnAnyNumberOfRanksWithTheSparseFirstLayer) {
  SharedDir dir;
  const std::string data = dir / "sparse.h5";
  world().collectively([&] {
    if (!world().is_root()) return;
    SyntheticSplit splits[2] = {make_split(203, 40, 3, 1), make_split(57, 40, 3, 2)};
    for (SyntheticSplit& split : splits) {
      // Only the even pixels of the label's class stay lit.
      for (std::size_t i = 0; i < split.pixels.size(); ++i) {
        const auto f = static_cast<int>(i % 40);
        const auto label = split.labels[i / 40];
        if (f % 2 == 1 || f % 3 != label) split.pixels[i] = 0;
      }
      const auto nonzero = std::count_if(split.pixels.begin(), split.pixels.end(), [](auto p) { return p != 0; });
      ASSERT_LE(static_cast<double>(nonzero) / static_cast<double>(split.pixels.size()), 0.2);
    }
    write_synthetic_hdf5(data, splits[0], splits[1]);
  });
  TrainConfig config = exact_config(data, dir / "parallel", true);
  config.arch = Architecture{{40, 64, 16, 3}, Activation::relu, Activation::softmax, Loss::cross_entropy};
  expect_world_equals_one_rank(config, dir, "the sparse first layer");
}

// Stopped mid-epoch on P ranks, resumed on P - 1: the same bits as one rank all along.
TEST(Exact, StoppedOnPRanksAndResumedOnFewerEqualsOneRank) {
  SharedDir dir;
  const std::string data = make_data(dir);
  TrainConfig config = exact_config(data, dir / "alone-" + std::to_string(world().rank()), true);
  Trainer serial(self(), config, std::nullopt);
  const RunState alone = final_state(serial, self());

  config.run_dir = dir / "stopped";
  {
    const StopSignals signals;
    Trainer first(world(), config, std::nullopt);
    first.set_step_observer([&](const Trainer& t) {
      if (t.progress().global_step == 30 && world().rank() == 0) std::raise(SIGUSR1);
    });
    EXPECT_EQ(first.run(), Trainer::Outcome::stopped);
    StopSignals::clear();
  }
  world().barrier();
  const int fewer = std::max(1, world().size() - 1);
  MPI_Comm sub = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, world().rank() < fewer ? 0 : MPI_UNDEFINED, world().rank(), &sub);
  if (sub != MPI_COMM_NULL) {
    const Communicator resumed_on(sub);
    Checkpoint checkpoint = read_checkpoint(dir / "stopped/checkpoints/latest.h5");
    EXPECT_EQ(checkpoint.progress.step_in_epoch, 31 - 21) << "a checkpoint from the middle of epoch 2";
    Trainer resumed(resumed_on, config, std::move(checkpoint));
    const RunState after = final_state(resumed, resumed_on);
    EXPECT_TRUE(after.params == alone.params && after.velocity == alone.velocity)
        << "resumed on " << fewer << " of " << world().size() << " ranks";
    MPI_Comm_free(&sub);
  }
  world().barrier();
}

TEST(DataParallel, ParametersAreIdenticalOnEveryRankAfterEveryStep) {
  SharedDir dir;
  TrainConfig config = small_config(make_data(dir), dir / "run");
  config.optimizer.sgd.momentum = 0.5f;
  Trainer trainer(world(), config, std::nullopt);
  std::int64_t steps = 0, mismatches = 0;
  trainer.set_step_observer([&](const Trainer& t) {
    ++steps;
    Sha256 hash;
    const auto p = t.model().params();
    hash.update({reinterpret_cast<const std::uint8_t*>(p.data()), p.size_bytes()});
    std::string mine = hash.hex_digest(), roots = mine;
    world().broadcast(roots);
    std::int64_t differs = mine != roots ? 1 : 0;
    world().allreduce_sum(std::span<std::int64_t>(&differs, 1));
    mismatches += differs;
  });
  trainer.run();
  EXPECT_EQ(steps, 5 * 21);
  EXPECT_EQ(mismatches, 0);
}

TEST(Overlap, BucketedAllreduceDuringBackpropGivesTheBlockingPathsParameters) {
  SharedDir dir;
  TrainConfig config = small_config(make_data(dir), dir / "blocking");
  // Layers of 576, 10,400 and 483 parameters: 1 KiB buckets make three
  // buckets, 4 KiB two (the top two layers together).
  config.arch = Architecture{{8, 64, 160, 3}, Activation::relu, Activation::softmax, Loss::cross_entropy};
  config.optimizer.lr = 0.1;
  config.optimizer.sgd.momentum = 0.9f;
  config.epochs = 3;
  config.reduce = ReduceMethod::mpi;
  config.bucket_kib = 0;
  const std::vector<float> blocking = params_after(world(), config);
  for (const std::int64_t kib : {1, 4}) {
    config.bucket_kib = kib;
    const Mlp model(config.arch);  // the trainer's buckets: the gradients and two values, kib * 256 floats
    ASSERT_EQ(model.bucket_cuts(model.num_params() + 2, static_cast<std::size_t>(kib) * 256).size() - 1,
              kib == 1 ? 3u : 2u);
    config.run_dir = dir / ("overlapped-" + std::to_string(kib));
    const std::vector<float> overlapped = params_after(world(), config);
    // Two ranks add two numbers, in either order the same float; with more,
    // MPI's reduction order may differ between its blocking and
    // non-blocking algorithms, in the last bits.
    if (world().size() <= 2) {
      EXPECT_EQ(overlapped, blocking) << kib << " KiB buckets on " << world().size() << " ranks";
    } else {
      EXPECT_LT(max_abs_difference(overlapped, blocking), 1e-5)
          << kib << " KiB buckets on " << world().size() << " ranks";
    }
  }
}

TEST(SharedMemory, ReducingInsideTheNodeGivesMpiAllreducesParameters) {
  SharedDir dir;
  TrainConfig config = small_config(make_data(dir), dir / "mpi");
  config.arch = Architecture{{8, 64, 160, 3}, Activation::relu, Activation::softmax, Loss::cross_entropy};
  config.optimizer.lr = 0.1;
  config.optimizer.sgd.momentum = 0.9f;
  config.epochs = 3;
  config.reduce = ReduceMethod::mpi;
  const std::vector<float> mpi = params_after(world(), config);
  config.reduce = ReduceMethod::shm;
  config.run_dir = dir / "shm";
  const std::vector<float> shm = params_after(world(), config);
  // Two fake nodes: the node sums are added by MPI between the two leaders.
  ::setenv(kFakeNodeRanksVariable, std::to_string((world().size() + 1) / 2).c_str(), 1);
  config.run_dir = dir / "shm-two-nodes";
  const std::vector<float> two_nodes = params_after(world(), config);
  ::unsetenv(kFakeNodeRanksVariable);
  if (world().size() <= 2) {  // a sum of two floats is the same in either order
    EXPECT_EQ(shm, mpi);
    EXPECT_EQ(two_nodes, mpi);
  } else {  // MPI's order of three or four addends is its own
    EXPECT_LT(max_abs_difference(shm, mpi), 1e-5) << world().size() << " ranks";
    EXPECT_LT(max_abs_difference(two_nodes, mpi), 1e-5) << world().size() << " ranks";
  }
}

TEST(DataParallel, EvaluationCountsAreExactOnAnyNumberOfRanks) {
  SharedDir dir;
  const std::string data = make_data(dir);
  const Architecture arch{{8, 6, 3}};
  Mlp model(arch);
  model.initialize(9);
  const EvalResult shared = Evaluator(data, "test", arch, world()).run(model);
  const EvalResult alone = Evaluator(data, "test", arch, self()).run(model);
  EXPECT_EQ(shared.total, 57);
  EXPECT_EQ(shared.correct, alone.correct);
  EXPECT_EQ(shared.loss_sum, alone.loss_sum) << "exact sums of the same passes";
  EXPECT_EQ(shared.top_probability_sum, alone.top_probability_sum);
  const EvalResult train = Evaluator(data, "train", arch, world()).run(model);
  EXPECT_EQ(train.total, 203);
}

TEST(DataParallel, EachRankReadsExactlyItsShards) {
  SharedDir dir;
  const std::string data = make_data(dir);
  const SyntheticSplit truth = make_split(203, 8, 3, 1);
  const ShardLayout layout(203, 12);
  const std::vector<std::int64_t> mine = layout.owned(world().rank(), world().size());
  const Shard shard = read_shards(data, "train", layout, mine, world().handle(), 8, 3);
  std::int64_t expected = 0;
  for (std::int64_t s : mine) expected += layout.size(s);
  ASSERT_EQ(shard.size(), expected);
  for (std::int64_t i = 0; i < shard.size(); ++i) {
    EXPECT_EQ(shard.labels()[static_cast<std::size_t>(i)],
              truth.labels[static_cast<std::size_t>(shard.global_index(i))]);
  }
  std::int64_t total = shard.size();
  world().allreduce_sum(std::span<std::int64_t>(&total, 1));
  EXPECT_EQ(total, 203);
}

TEST(Resume, ContinuingFromACheckpointIsBitForBitAnUninterruptedRun) {
  SharedDir dir;
  const std::string data = make_data(dir);
  TrainConfig config = small_config(data, dir / "straight");
  config.optimizer.sgd.momentum = 0.9f;
  config.optimizer.lr = 0.2;
  config.optimizer.schedule = ScheduleKind::cosine;
  config.epochs = 6;
  const std::vector<float> straight = params_after(world(), config);

  // A run stopped after epoch 3 of 6 left what the straight run wrote then.
  config.run_dir = dir / "resumed";
  Checkpoint checkpoint = read_checkpoint(dir / "straight/checkpoints/epoch-0003.h5");
  EXPECT_EQ(checkpoint.progress.epochs_done, 3);
  Trainer resumed(world(), config, std::move(checkpoint));
  resumed.run();
  ASSERT_EQ(resumed.model().params().size(), straight.size());
  EXPECT_EQ(std::memcmp(resumed.model().params().data(), straight.data(), straight.size() * sizeof(float)), 0);
  EXPECT_EQ(resumed.progress().global_step, 6 * 21);
}

TEST(Resume, AStopSignalOnOneRankStopsAllAfterTheSameStepAndResumesBitForBit) {
  SharedDir dir;
  TrainConfig config = small_config(make_data(dir), dir / "straight");
  config.optimizer.sgd.momentum = 0.9f;
  config.optimizer.lr = 0.2;
  config.optimizer.schedule = ScheduleKind::cosine;
  const std::vector<float> straight = params_after(world(), config);

  config.run_dir = dir / "stopped";
  const StopSignals signals;
  Trainer first(world(), config, std::nullopt);
  const int signalled_rank = world().size() - 1;
  first.set_step_observer([&](const Trainer& t) {
    if (t.progress().global_step == 30 && world().rank() == signalled_rank) std::raise(SIGUSR1);
  });
  EXPECT_EQ(first.run(), Trainer::Outcome::stopped);
  StopSignals::clear();
  EXPECT_EQ(first.progress().global_step, 31) << "every rank stops after the step following the signal";
  world().barrier();
  Checkpoint checkpoint = read_checkpoint(dir / "stopped/checkpoints/latest.h5");
  EXPECT_EQ(checkpoint.progress.epochs_done, 1);
  EXPECT_EQ(checkpoint.progress.step_in_epoch, 31 - 21);
  Trainer resumed(world(), config, std::move(checkpoint));
  EXPECT_EQ(resumed.run(), Trainer::Outcome::finished);
  EXPECT_EQ(std::memcmp(resumed.model().params().data(), straight.data(), straight.size() * sizeof(float)), 0);
}

TEST(Errors, ALabelOutOfRangeOnOneRankStopsEveryRankWithTheSameMessage) {
  SharedDir dir;
  const std::string data = make_data(dir, 203, 202);  // the last sample: the last rank's shard
  const TrainConfig config = small_config(data, dir / "run");
  try {
    Trainer trainer(world(), config, std::nullopt);
    FAIL() << "no error";
  } catch (const CollectiveError& e) {
    EXPECT_NE(std::string(e.what()).find("label 7 of sample 202 in /train/labels is outside [0, 3)"), std::string::npos)
        << e.what();
  }
}

TEST(Errors, DivergenceStopsEveryRankAndKeepsTheLastCheckpoint) {
  SharedDir dir;
  TrainConfig config = small_config(make_data(dir), dir / "run");
  config.arch = Architecture{{8, 6, 3}, Activation::relu, Activation::softmax, Loss::cross_entropy};
  config.epochs = 1;
  config.optimizer.lr = 0.1;
  params_after(world(), config);  // one good epoch, checkpointed
  config.epochs = 3;
  config.optimizer.lr = 1e30;
  Trainer trainer(world(), config, read_checkpoint(dir / "run/checkpoints/latest.h5"));
  try {
    trainer.run();
    FAIL() << "no error";
  } catch (const CollectiveError& e) {
    EXPECT_NE(std::string(e.what()).find("training diverged: the loss "), std::string::npos) << e.what();
  }
  world().barrier();
  EXPECT_EQ(read_checkpoint(dir / "run/checkpoints/latest.h5").progress.epochs_done, 1);
}

}  // namespace
}  // namespace dptrain
