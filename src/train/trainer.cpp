#include "dptrain/train/trainer.hpp"

#include <sched.h>
#include <sys/resource.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <thread>

#include "dptrain/blas.hpp"
#include "dptrain/error.hpp"
#include "dptrain/train/stop_signal.hpp"
#include "dptrain/util/denormals.hpp"
#include "dptrain/util/json.hpp"
#include "dptrain/util/random.hpp"
#include "dptrain/util/sha256.hpp"
#include "dptrain/util/text.hpp"

namespace dptrain {
namespace fs = std::filesystem;
namespace {

std::string checkpoint_folder(const TrainConfig& c) { return (fs::path(c.run_dir) / "checkpoints").string(); }

std::string epoch_file_name(std::int64_t epoch) {
  char name[32];
  std::snprintf(name, sizeof name, "epoch-%04lld.h5", static_cast<long long>(epoch));
  return name;
}

// A checkpoint taken part-way through an epoch (on a stop signal).
std::string step_file_name(std::int64_t global_step) {
  char name[32];
  std::snprintf(name, sizeof name, "step-%09lld.h5", static_cast<long long>(global_step));
  return name;
}

}  // namespace

int auto_thread_count(const Communicator& comm) {
  cpu_set_t allowed;
  int usable = static_cast<int>(std::thread::hardware_concurrency());
  if (sched_getaffinity(0, sizeof allowed, &allowed) == 0) usable = CPU_COUNT(&allowed);
  const int per_rank = static_cast<int>(std::thread::hardware_concurrency()) / comm.ranks_on_this_node();
  return std::max(1, std::min(usable, per_rank));
}

Trainer::Trainer(const Communicator& comm, TrainConfig config, std::optional<Checkpoint> resume)
    : comm_(comm),
      config_(std::move(config)),
      model_(config_.arch),
      optimizer_(model_.num_params(), config_.optimizer.sgd),
      slicing_(0, config_.batch_size, comm.size()),
      // Sized once for this rank's widest batch: the step allocates nothing.
      workspace_(config_.arch, static_cast<int>(slicing_.width(comm.rank()))),
      reducer_(comm, config_.reduce, model_.num_params() + 2,
               model_.bucket_cuts(model_.num_params() + 2, static_cast<std::size_t>(config_.bucket_kib) * 1024 / 4)),
      batch_labels_(static_cast<std::size_t>(slicing_.width(comm.rank()))),
      progress_line_(stdout, false, 0, 1),
      timer_(config_.profile_steps) {
  flush_denormals_to_zero();
  comm_.collectively([&] {
    if (config_.batch_size < comm_.size()) {
      throw Error("--batch-size " + std::to_string(config_.batch_size) + " is smaller than the " +
                  std::to_string(comm_.size()) + " ranks: every rank needs at least one sample of each batch");
    }
    if (config_.threads > 0)
      blas::set_threads(config_.threads);
    else if (std::getenv("OPENBLAS_NUM_THREADS") == nullptr)
      blas::set_threads(auto_thread_count(comm_));

    const std::int64_t samples = split_size(config_.data, "train");
    if (samples < config_.batch_size) {
      throw Error(config_.data + ": /train holds " + std::to_string(samples) + " samples, fewer than --batch-size " +
                  std::to_string(config_.batch_size));
    }
    slicing_ = BatchSlicing(samples, config_.batch_size, comm_.size());
    shard_ = read_shard(config_.data, "train", slicing_, comm_.rank(), config_.arch.inputs(), config_.arch.outputs());
    evaluator_.emplace(config_.data, "test", config_.arch, comm_);
    order_.resize(static_cast<std::size_t>(shard_.size()));
  });

  std::string data_sha256;
  comm_.collectively([&] {
    if (comm_.is_root()) data_sha256 = sha256_of_file(config_.data);
  });
  comm_.broadcast(data_sha256);

  progress_.world_size = comm_.size();
  progress_.batch_size = config_.batch_size;
  progress_.seed = config_.seed;
  progress_.shuffle = config_.shuffle;
  progress_.data_file = config_.data;
  progress_.data_sha256 = data_sha256;

  comm_.collectively([&] {
    if (!resume) {
      model_.initialize(static_cast<std::uint64_t>(config_.seed));
      return;
    }
    if (resume->progress.data_sha256 != data_sha256) {
      throw Error(config_.data + ": its SHA-256 " + data_sha256.substr(0, 16) +
                  "... differs from the data the checkpoint was trained on (" +
                  resume->progress.data_sha256.substr(0, 16) + "..., " + resume->progress.data_file + ")");
    }
    std::copy(resume->params.begin(), resume->params.end(), model_.params().begin());
    if (!optimizer_.velocity().empty() && !resume->velocity.empty()) {
      std::copy(resume->velocity.begin(), resume->velocity.end(), optimizer_.velocity().begin());
    }
    progress_.epochs_done = resume->progress.epochs_done;
    progress_.global_step = resume->progress.global_step;
    // A changed batch size moves the batch boundaries: a half-done epoch restarts then.
    const bool same_batches = resume->progress.batch_size == config_.batch_size;
    progress_.step_in_epoch = same_batches ? resume->progress.step_in_epoch : 0;
    if (same_batches) {
      progress_.epoch_loss_sum = resume->progress.epoch_loss_sum;
      progress_.epoch_seconds = resume->progress.epoch_seconds;
    }
  });

  schedule_.kind = config_.optimizer.schedule;
  schedule_.base_lr = config_.optimizer.lr;
  schedule_.steps_per_epoch = slicing_.steps();
  schedule_.total_steps = slicing_.steps() * config_.epochs;
  schedule_.warmup_epochs = config_.optimizer.warmup_epochs;
  schedule_.step_epochs = config_.optimizer.lr_step_epochs;
  schedule_.gamma = config_.optimizer.lr_gamma;

  comm_.collectively([&] { prepare_run_dir(); });
  progress_line_ = ProgressLine(stdout, comm_.is_root() && !config_.quiet, config_.log_every, slicing_.steps());
}

// Every rank writes its own trace: RUN_DIR/profile/rank-R.json.
void Trainer::write_profile() {
  if (!timer_.profiling()) return;
  comm_.collectively([&] {
    const fs::path folder = fs::path(config_.run_dir) / "profile";
    fs::create_directories(folder);
    const std::string path = (folder / ("rank-" + std::to_string(comm_.rank()) + ".json")).string();
    std::ofstream out(path);
    out << timer_.chrome_trace(comm_.rank()) << std::flush;
    if (!out) throw Error(path + ": cannot write the profile");
  });
}

void Trainer::prepare_run_dir() {
  if (!comm_.is_root()) return;
  fs::create_directories(checkpoint_folder(config_));
  remove_stale_temporaries(checkpoint_folder(config_));
  const std::string config_path = (fs::path(config_.run_dir) / "config.ini").string();
  std::ofstream config_file(config_path);
  config_file << config_.to_ini() << std::flush;
  if (!config_file) throw Error(config_path + ": cannot write");
  const std::string metrics_path = (fs::path(config_.run_dir) / "metrics.jsonl").string();
  metrics_.open(metrics_path, std::ios::app);
  if (!metrics_) throw Error(metrics_path + ": cannot open for writing");
}

Trainer::Outcome Trainer::run() {
  if (comm_.is_root() && !config_.quiet) {
    std::printf(
        "dptrain: %s, %zu parameters, %d rank%s x %d BLAS thread%s (OpenBLAS %s kernels), global batch %lld, "
        "%lld steps per epoch, %s\n",
        config_.arch.layers_string().c_str(), model_.num_params(), comm_.size(), comm_.size() == 1 ? "" : "s",
        blas::threads(), blas::threads() == 1 ? "" : "s", blas::core_name().c_str(),
        static_cast<long long>(config_.batch_size), static_cast<long long>(slicing_.steps()),
        progress_.epochs_done > 0 || progress_.step_in_epoch > 0
            ? ("resuming after epoch " + std::to_string(progress_.epochs_done)).c_str()
            : "fresh start");
    std::fflush(stdout);
  }
  if (progress_.epochs_done >= config_.epochs && comm_.is_root() && !config_.quiet) {
    std::printf("dptrain: the run has done %lld epochs already (--epochs %lld): nothing to do\n",
                static_cast<long long>(progress_.epochs_done), static_cast<long long>(config_.epochs));
  }
  for (std::int64_t epoch = progress_.epochs_done + 1; epoch <= config_.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    const bool completed = train_epoch(epoch);
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    progress_.epoch_seconds += elapsed.count();
    if (!completed) {
      const std::string name = step_file_name(progress_.global_step);
      save_checkpoint(name);
      if (comm_.is_root()) {
        std::printf(
            "dptrain: stopped by a signal after step %lld (epoch %lld); checkpoint %s; "
            "continue with --resume auto\n",
            static_cast<long long>(progress_.global_step), static_cast<long long>(epoch),
            (fs::path(checkpoint_folder(config_)) / name).c_str());
        std::fflush(stdout);
      }
      write_profile();
      return Outcome::stopped;
    }
    finish_epoch(epoch, progress_.epoch_seconds);
  }
  write_profile();
  if (comm_.is_root() && last_test_.total > 0) {
    std::printf("dptrain: done after epoch %lld: test accuracy %.4f, test loss %.5f\n",
                static_cast<long long>(config_.epochs), last_test_.accuracy(), last_test_.mean_loss());
    std::fflush(stdout);
  }
  return Outcome::finished;
}

// This rank's sample order for the epoch: its shard, shuffled by a pure
// function of (seed, epoch, rank), so that a resumed run draws the same.
std::vector<std::uint32_t>& Trainer::epoch_order(std::int64_t epoch) {
  std::iota(order_.begin(), order_.end(), 0u);
  if (config_.shuffle) {
    Rng rng(static_cast<std::uint64_t>(config_.seed), purpose::epoch_order, static_cast<std::uint64_t>(epoch),
            static_cast<std::uint64_t>(comm_.rank()));
    shuffle(order_, rng);
  }
  return order_;
}

bool Trainer::train_epoch(std::int64_t epoch) {
  const std::vector<std::uint32_t>& order = epoch_order(epoch);
  progress_line_.start_epoch();
  timer_.reset_epoch();
  while (progress_.step_in_epoch < slicing_.steps()) {
    const std::int64_t step = progress_.step_in_epoch;
    const bool stop = train_step(epoch, step, order);
    ++progress_.step_in_epoch;
    progress_line_.after_step(epoch, config_.epochs, step, std::min(slicing_.samples(), (step + 1) * slicing_.batch()),
                              slicing_.samples(), progress_.epoch_loss_sum);
    if (stop) return false;
  }
  progress_line_.end_epoch();
  return true;
}

// Returns whether any rank was asked to stop (the step itself is complete).
bool Trainer::train_step(std::int64_t epoch, std::int64_t step, std::span<const std::uint32_t> order) {
  const int rank = comm_.rank();
  const int rows = static_cast<int>(slicing_.local_batch_size(rank, step));
  const auto first = static_cast<std::size_t>(step * slicing_.width(rank));
  const auto global_rows = static_cast<float>(slicing_.global_batch_size(step));
  const std::span<float> local = reducer_.local();  // this rank's gradients, loss and stop flag
  const std::span<float> grads = local.first(model_.num_params());

  timer_.begin_step();
  shard_.gather(order.subspan(first, static_cast<std::size_t>(rows)), workspace_.input(rows), batch_labels_);
  timer_.end_phase(Phase::data);
  model_.forward(workspace_, rows);
  timer_.end_phase(Phase::forward);
  // The loss and stop flag ride in the top bucket, the first to be reduced.
  local[loss_slot()] = static_cast<float>(model_.output_delta(workspace_, rows, batch_labels_, 1.0f / global_rows));
  local[stop_slot()] = StopSignals::received() != 0 ? 1.0f : 0.0f;
  reducer_.begin_step();
  model_.backpropagate(workspace_, rows, grads, reducer_.sink());
  timer_.end_phase(Phase::backward);
  const std::span<const float> sum = reducer_.finish();  // the allreduce phase: waiting for what backprop did not hide
  timer_.end_phase(Phase::allreduce);

  const float batch_loss = sum[loss_slot()];
  if (!std::isfinite(batch_loss)) {
    throw CollectiveError("training diverged: the loss became " +
                          std::string(std::isnan(batch_loss) ? "NaN" : "infinite") + " at epoch " +
                          std::to_string(epoch) + ", step " + std::to_string(progress_.global_step + 1) + " (lr " +
                          format_number(schedule_.lr_at(progress_.global_step)) +
                          "); try a smaller --lr. The last good checkpoint is kept in " + checkpoint_folder(config_));
  }
  optimizer_.step(model_.params(), sum.first(model_.num_params()),
                  static_cast<float>(schedule_.lr_at(progress_.global_step)));
  timer_.end_phase(Phase::update);
  progress_.epoch_loss_sum += batch_loss;
  ++progress_.global_step;
  if (step_observer_) step_observer_(*this);
  return sum[stop_slot()] > 0.0f;
}

void Trainer::finish_epoch(std::int64_t epoch, double seconds) {
  progress_.epochs_done = epoch;
  progress_.step_in_epoch = 0;
  const EvalResult test = evaluator_->run(model_);
  last_test_ = test;
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double peak_rss_mb = static_cast<double>(comm_.max(usage.ru_maxrss)) / 1024.0;  // the largest rank
  const double train_loss = progress_.epoch_loss_sum / static_cast<double>(slicing_.samples());
  const double samples_per_second = static_cast<double>(slicing_.samples()) / seconds;
  const double gflops = flops_per_sample(config_.arch.layers) * samples_per_second / 1e9;
  const double steps = static_cast<double>(std::max<std::int64_t>(1, timer_.epoch_steps()));
  JsonObject phases;
  std::string phase_text;
  double step_ms = 0.0;
  for (std::size_t p = 0; p < kPhases; ++p) {
    const double ms = 1e3 * timer_.epoch_seconds()[p] / steps;
    step_ms += ms;
    phases.add(phase_name(static_cast<Phase>(p)), ms);
    char part[48];
    std::snprintf(part, sizeof part, " %s %.3f", phase_name(static_cast<Phase>(p)), ms);
    phase_text += part;
  }
  comm_.collectively([&] {
    if (!comm_.is_root()) return;
    if (!config_.quiet)
      std::printf(
          "epoch %3lld/%lld  step %8lld  train_loss %.5f  test_loss %.5f  test_acc %.4f  %7.2f s  %9.0f samples/s  "
          "%6.2f GFLOP/s  ms/step:%s\n",
          static_cast<long long>(epoch), static_cast<long long>(config_.epochs),
          static_cast<long long>(progress_.global_step), train_loss, test.mean_loss(), test.accuracy(), seconds,
          samples_per_second, gflops, phase_text.c_str());
    std::fflush(stdout);
    JsonObject line;
    line.add("epoch", epoch).add("step", progress_.global_step);
    line.add("lr", schedule_.lr_at(std::max<std::int64_t>(0, progress_.global_step - 1)));
    line.add("train_loss", train_loss).add("test_loss", test.mean_loss()).add("test_accuracy", test.accuracy());
    line.add("test_correct", test.correct).add("test_total", test.total);
    line.add("epoch_seconds", seconds).add("samples_per_second", samples_per_second).add("gflops", gflops);
    line.add("step_ms", step_ms).add("phase_ms", phases).add("peak_rss_mb", peak_rss_mb);
    line.add("world_size", comm_.size());
    metrics_ << line.str() << "\n" << std::flush;
    if (!metrics_) throw Error((fs::path(config_.run_dir) / "metrics.jsonl").string() + ": write failed");
  });
  progress_.epoch_loss_sum = 0.0;
  progress_.epoch_seconds = 0.0;
  if (epoch % config_.checkpoint_every == 0 || epoch == config_.epochs) save_checkpoint(epoch_file_name(epoch));
}

void Trainer::save_checkpoint(const std::string& name) {
  comm_.collectively([&] {
    if (!comm_.is_root()) return;
    const std::string folder = checkpoint_folder(config_);
    write_checkpoint((fs::path(folder) / name).string(), model_, optimizer_, config_.optimizer, progress_,
                     config_.to_ini());
    point_link_atomically((fs::path(folder) / "latest.h5").string(), name);
    prune_checkpoints(folder, config_.keep_checkpoints);
  });
}

}  // namespace dptrain
