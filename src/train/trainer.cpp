#include "dptrain/train/trainer.hpp"

#include <sched.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <thread>

#include "dptrain/blas.hpp"
#include "dptrain/comm/exact_sum.hpp"
#include "dptrain/comm/watchdog.hpp"
#include "dptrain/error.hpp"
#include "dptrain/train/stop_signal.hpp"
#include "dptrain/util/denormals.hpp"
#include "dptrain/util/json.hpp"
#include "dptrain/util/prefetch.hpp"
#include "dptrain/util/test_hooks.hpp"
#include "dptrain/util/text.hpp"

namespace dptrain {
namespace {

// A batch whose mean loss per sample is beyond this has exploded, even while
// it is still finite: a cross-entropy of 1e4 means the right class's logit is
// 1e4 below the best one (the quadratic cost of a sigmoid output cannot pass
// 5). Training on would only report a finite, meaningless loss.
constexpr double kExplodedLossPerSample = 1e4;

// The BLAS thread count and the handling of denormals: process-wide state,
// set once before any computation.
void configure_process(const Communicator& comm, const TrainConfig& config) {
  flush_denormals_to_zero();
  if (config.threads > 0)
    blas::set_threads(config.threads);
  else if (std::getenv("OPENBLAS_NUM_THREADS") != nullptr)
    return;
  else if (config.exact)
    blas::set_threads(1);  // a row's result depends on the thread count: one count for every rank count
  else
    blas::set_threads(auto_thread_count(comm));
}

// The optimizer's step on one slice of a node's shared parameters, taken by
// NodeReducer::finish as soon as that slice of the gradient sum is final.
// Nothing else reads the gradient sum, so only the loss and the stop flag,
// which follow the gradients, are stored.
class SliceUpdate final : public SliceConsumer<float> {
 public:
  SliceUpdate(Sgd& optimizer, std::span<float> params, float lr, WorkerPool& workers)
      : optimizer_(optimizer), params_(params), lr_(lr), workers_(workers) {}
  void consume(std::size_t begin, std::size_t end, const float* block) override {
    end = std::min(end, params_.size());
    // The next block's parameters were read by every rank's forward pass:
    // their lines are Shared, so the update asks to own them one block ahead.
    if (end < params_.size())
      prefetch_for_writing(params_.data() + end, std::min(end - begin, params_.size() - end) * sizeof(float));
    if (begin < end) optimizer_.step_slice(params_, {block, end - begin}, lr_, begin, workers_);
  }
  std::size_t stored_from() const override { return params_.size(); }

 private:
  Sgd& optimizer_;
  std::span<float> params_;
  float lr_;
  WorkerPool& workers_;
};

// The cores this process may run on (mpirun and Slurm bind ranks to some).
int usable_cores() {
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof allowed, &allowed) == 0) return CPU_COUNT(&allowed);
  return static_cast<int>(std::thread::hardware_concurrency());
}

}  // namespace

int auto_thread_count(const Communicator& comm) {
  const int per_rank = static_cast<int>(std::thread::hardware_concurrency()) / comm.ranks_on_this_node();
  return std::max(1, std::min(usable_cores(), per_rank));
}

Trainer::Trainer(const Communicator& comm, TrainConfig config, std::optional<Checkpoint> resume)
    : comm_(comm),
      config_(std::move(config)),
      model_(config_.arch),
      optimizer_(model_.num_params(), config_.optimizer.sgd),
      data_(comm_, config_),
      schedule_(config_.optimizer, data_.batches().steps(), data_.batches().steps() * config_.epochs),
      run_folder_(comm_, config_),
      workspace_(config_.arch, std::max(1, data_.batches().max_rows())),
      batch_samples_(static_cast<std::size_t>(workspace_.max_rows())),
      batch_labels_(batch_samples_.size()),
      micro_batches_(static_cast<std::size_t>(data_.batches().max_micro_batches())),
      reducer_(comm, config_.reduce, model_.num_params() + 2,
               model_.bucket_cuts(model_.num_params() + 2, static_cast<std::size_t>(config_.bucket_kib) * 1024 / 4),
               shares_parameters() ? model_.num_params() + optimizer_.velocity().size() : 0),
      exact_buffer_(config_.exact && config_.reduce == ReduceMethod::mpi ? model_.num_params() + 3 : 0),
      progress_line_(stdout, false, 0, 1),
      timer_(config_.profile_steps) {
  comm_.collectively([&] {
    configure_process(comm_, config_);
    slow_rank_ = test_hooks::SlowRank::from_environment(comm_.rank());
  });
  // Helpers on cores the rank does not have would only take turns with it.
  update_workers_.emplace(std::max(1, std::min(blas::threads(), usable_cores())));
  model_.set_sparse_input(config_.sparse_input);
  if (config_.exact && config_.reduce == ReduceMethod::shm) exact_shm_.emplace(comm_, model_.num_params() + 3);

  progress_.world_size = comm_.size();
  progress_.batch_size = config_.batch_size;
  progress_.shards = config_.shards;
  progress_.seed = config_.seed;
  progress_.shuffle = config_.shuffle;
  progress_.data_file = config_.data;
  progress_.data_sha256 = data_.sha256();
  comm_.collectively([&] {
    if (resume)
      restore(*resume);
    else
      model_.initialize(static_cast<std::uint64_t>(config_.seed));
  });
  if (shares_parameters()) share_parameters();  // after every rank has its values: it waits for the node's ranks

  // Metrics of steps after the checkpoint are dropped only if this run trains.
  run_folder_.prepare(progress_.epochs_done < config_.epochs ? std::optional(progress_.global_step) : std::nullopt);
  const std::string data_report = data_.report_json();
  run_folder_.write_text("data.json", data_report + "\n");
  progress_line_ = ProgressLine(stdout, comm_.is_root() && !config_.quiet, config_.log_every, data_.batches().steps(),
                                config_.progress);
}

// THE INVARIANT (--reduce shm, without --exact): the ranks of a node hold one
// copy of the parameters and velocities, in the reducer's shared segment. In
// each step every rank updates only its slice of them, in the pass that sums
// that slice's gradients (NodeReducer::finish); no rank reads them before
// every slice is updated (finish's last node barrier), and no rank writes
// them anywhere else. Every node's copy takes the same updates from the same
// sums, so all copies stay equal.
void Trainer::share_parameters() {
  const std::size_t n = model_.num_params();
  const std::span<float> shared = reducer_.shared_state();
  reducer_.share(0, model_.params());
  reducer_.share(n, optimizer_.velocity());
  model_.use_shared_params(shared.first(n));
  optimizer_.use_shared_velocity(shared.subspan(n));
}

void Trainer::restore(const Checkpoint& checkpoint) {
  if (checkpoint.progress.data_sha256 != data_.sha256()) {
    throw Error(config_.data + ": its SHA-256 " + data_.sha256().substr(0, 16) +
                "... differs from the data the checkpoint was trained on (" +
                checkpoint.progress.data_sha256.substr(0, 16) + "..., " + checkpoint.progress.data_file + ")");
  }
  std::copy(checkpoint.params.begin(), checkpoint.params.end(), model_.params().begin());
  if (!optimizer_.velocity().empty() && !checkpoint.velocity.empty()) {
    std::copy(checkpoint.velocity.begin(), checkpoint.velocity.end(), optimizer_.velocity().begin());
  }
  progress_.epochs_done = checkpoint.progress.epochs_done;
  progress_.global_step = checkpoint.progress.global_step;
  // The batches of an epoch are a function of (seed, epoch, step, shards,
  // batch size) alone: with the same shards and batch size, a half-done epoch
  // continues exactly, on any number of ranks. Otherwise it restarts.
  const bool same_batches = checkpoint.progress.batch_size == config_.batch_size &&
                            checkpoint.progress.shards == config_.shards && checkpoint.progress.seed == config_.seed &&
                            checkpoint.progress.shuffle == config_.shuffle;
  // A checkpoint part-way through an epoch is taken between its steps: at most
  // all of them (a stop seen at the epoch's last step saves step_in_epoch ==
  // steps, and the resumed run then ends that epoch).
  if (same_batches && checkpoint.progress.step_in_epoch > data_.batches().steps()) {
    throw Error(checkpoint.path + ": /progress attribute step_in_epoch " +
                std::to_string(checkpoint.progress.step_in_epoch) + " is past the " +
                std::to_string(data_.batches().steps()) + " steps of an epoch of the same batches (damaged or edited)");
  }
  progress_.step_in_epoch = same_batches ? checkpoint.progress.step_in_epoch : 0;
  if (same_batches) {
    progress_.epoch_loss_sum = checkpoint.progress.epoch_loss_sum;
    progress_.epoch_seconds = checkpoint.progress.epoch_seconds;
  }
}

Trainer::Outcome Trainer::run() {
  if (comm_.is_root() && !config_.quiet) {
    std::printf(
        "dptrain: %s, %zu parameters, %d rank%s x %d BLAS thread%s (OpenBLAS %s kernels), global batch %lld, "
        "%lld steps per epoch, %s%s\n",
        config_.arch.layers_string().c_str(), model_.num_params(), comm_.size(), comm_.size() == 1 ? "" : "s",
        blas::threads(), blas::threads() == 1 ? "" : "s", blas::core_name().c_str(),
        static_cast<long long>(config_.batch_size), static_cast<long long>(data_.batches().steps()),
        config_.exact ? "exact sums, " : "",
        progress_.epochs_done > 0 || progress_.step_in_epoch > 0
            ? ("resuming after epoch " + std::to_string(progress_.epochs_done)).c_str()
            : "fresh start");
    std::printf("dptrain: data: %s\n", data_.summary().c_str());
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
      check_parameters(epoch);
      const std::string name = RunFolder::step_checkpoint_name(progress_.global_step);
      const WatchdogScope watched("checkpoint", progress_.global_step);
      run_folder_.save_checkpoint(name, model_, optimizer_, progress_);
      if (comm_.is_root()) {
        std::printf(
            "dptrain: stopped by a signal after step %lld (epoch %lld); checkpoint %s/%s; "
            "continue with --resume auto\n",
            static_cast<long long>(progress_.global_step), static_cast<long long>(epoch),
            run_folder_.checkpoint_folder().c_str(), name.c_str());
        std::fflush(stdout);
      }
      if (timer_.profiling()) run_folder_.write_profile(timer_.chrome_trace(comm_.rank()));
      return Outcome::stopped;
    }
    finish_epoch(epoch, progress_.epoch_seconds);
  }
  if (timer_.profiling()) run_folder_.write_profile(timer_.chrome_trace(comm_.rank()));
  if (comm_.is_root() && last_test_.total > 0) {
    std::printf("dptrain: done after epoch %lld: test accuracy %.4f, test loss %.5f\n",
                static_cast<long long>(config_.epochs), last_test_.accuracy(), last_test_.mean_loss());
    std::fflush(stdout);
  }
  return Outcome::finished;
}

bool Trainer::train_epoch(std::int64_t epoch) {
  RankBatches& batches = data_.batches();
  batches.start_epoch(static_cast<std::uint64_t>(config_.seed), epoch, config_.shuffle);
  progress_line_.start_epoch();
  timer_.reset_epoch();
  while (progress_.step_in_epoch < batches.steps()) {
    const std::int64_t step = progress_.step_in_epoch;
    const bool stop = train_step(epoch);
    ++progress_.step_in_epoch;
    progress_line_.after_step(epoch, config_.epochs, step,
                              std::min(batches.layout().samples(), (step + 1) * batches.batch()),
                              batches.layout().samples(), progress_.epoch_loss_sum);
    if (stop) return false;
  }
  progress_line_.end_epoch();
  return true;
}

// Returns whether any rank was asked to stop (the step itself is complete).
bool Trainer::train_step(std::int64_t epoch) {
  const std::int64_t step = progress_.step_in_epoch;
  Watchdog::arm("compute", progress_.global_step + 1);
  slow_rank_.delay_step(progress_.global_step);  // a test hook, off unless a test sets it
  timer_.begin_step();
  const int rows = data_.batches().step_rows(step, batch_samples_, micro_batches_, micro_batch_count_);
  data_.train().gather(std::span(batch_samples_).first(static_cast<std::size_t>(rows)), workspace_.input(rows),
                       batch_labels_);
  timer_.end_phase(Phase::data);
  const auto lr = static_cast<float>(schedule_.lr_at(progress_.global_step));
  const StepSums sums = config_.exact ? sum_gradients_exact(step) : sum_gradients_fast(rows, lr);

  // With shared parameters the update is already done (a diverged step's
  // update included: the run ends here, and nothing saves those parameters).
  check_loss(sums.loss, epoch);
  if (!sums.updated) optimizer_.step_slice(model_.params(), sums.grads, lr, 0, *update_workers_);
  timer_.end_phase(Phase::update);
  progress_.epoch_loss_sum += sums.loss;
  ++progress_.global_step;
  if (step_observer_) step_observer_(*this);
  return sums.stop;
}

// All of the rank's rows in one pass, and a float sum over ranks (in shared
// memory, or by MPI_Allreduce, overlapped with backprop when --bucket-kib
// asks). Results match other rank counts to round-off: the GEMMs and the sums
// group the rows differently. With shared parameters, the update at `lr` is
// done inside the sum (and counted in its phase).
Trainer::StepSums Trainer::sum_gradients_fast(int rows, float lr) {
  const auto global_rows = static_cast<float>(data_.batches().global_batch_size(progress_.step_in_epoch));
  const std::span<float> local = reducer_.local();  // this rank's gradients, loss and stop flag
  const std::span<float> grads = local.first(model_.num_params());
  double loss = 0.0;
  if (rows > 0) {
    model_.forward(workspace_, rows);
    loss = model_.output_delta(workspace_, rows, batch_labels_, 1.0f / global_rows);
  } else {
    std::fill(grads.begin(), grads.end(), 0.0f);  // a step with no rows of this rank's shards
  }
  timer_.end_phase(Phase::forward);
  // The loss and stop flag ride in the top bucket, the first to be reduced.
  local[loss_slot()] = static_cast<float>(loss);
  local[stop_slot()] = StopSignals::received() != 0 ? 1.0f : 0.0f;
  reducer_.begin_step();
  if (rows > 0) model_.backpropagate(workspace_, rows, grads, reducer_.sink());
  timer_.end_phase(Phase::backward);
  Watchdog::arm("allreduce", progress_.global_step + 1);
  SliceUpdate update(optimizer_, model_.params(), lr, *update_workers_);
  const bool fused = shares_parameters();
  const std::span<const float> sum =
      reducer_.finish(fused ? &update : nullptr);  // waiting for what backprop did not hide
  Watchdog::disarm();
  timer_.end_phase(Phase::allreduce);
  // Fused, the gradient sum went into the update and is not kept.
  return {fused ? std::span<const float>() : sum.first(model_.num_params()), sum[loss_slot()], sum[stop_slot()] > 0.0f,
          fused};
}

// Bit-identical on any number of ranks. Invariant: every value that is
// summed is a function of one micro-batch (one shard's rows of the step,
// data/sharding.hpp), computed by GEMM calls on exactly those rows, and every
// sum over micro-batches is an integer sum (comm/exact_sum.hpp), so neither
// which rank holds a micro-batch nor the order ranks are added in changes a bit.
Trainer::StepSums Trainer::sum_gradients_exact(std::int64_t step) {
  const auto global_rows = static_cast<float>(data_.batches().global_batch_size(step));
  // The float reducer's slot is idle in this mode: each micro-batch's
  // gradients go there, then the step's sum.
  const std::span<float> grads = reducer_.local().first(model_.num_params());
  const std::span<std::int64_t> sums = exact_shm_ ? exact_shm_->local() : std::span<std::int64_t>(exact_buffer_);
  const std::span<std::int64_t> grad_sums = sums.first(model_.num_params());
  std::fill(sums.begin(), sums.end(), 0);
  std::int64_t refused = 0;
  for (int m = 0; m < micro_batch_count_; ++m) {
    const MicroBatch& micro = micro_batches_[static_cast<std::size_t>(m)];
    model_.forward(workspace_, micro.rows, micro.first_row);
    const double loss = model_.output_delta(workspace_, micro.rows, std::span(batch_labels_).subspan(micro.first_row),
                                            1.0f / global_rows, micro.first_row);
    model_.backpropagate(workspace_, micro.rows, grads, nullptr, micro.first_row);
    refused += exact::accumulate(grads, grad_sums, exact::kGradientBits);
    refused += exact::accumulate(loss, sums[loss_slot()], exact::kStatisticBits);
  }
  timer_.end_phase(Phase::backward);
  sums[stop_slot()] = StopSignals::received() != 0 ? 1 : 0;
  sums[refused_slot()] = refused;
  Watchdog::arm("allreduce", progress_.global_step + 1);
  std::span<const std::int64_t> total = sums;
  if (exact_shm_)
    total = exact_shm_->finish();
  else
    comm_.allreduce_sum(sums);
  Watchdog::disarm();
  timer_.end_phase(Phase::allreduce);
  exact::to_floats(total.first(model_.num_params()), grads, exact::kGradientBits);
  const double loss = total[refused_slot()] > 0 ? std::numeric_limits<double>::infinity()
                                                : exact::to_double(total[loss_slot()], exact::kStatisticBits);
  return {grads, loss, total[stop_slot()] > 0};
}

// Every rank holds the same reduced loss, so every rank throws the same error
// at the same step: a collective decision without a collective.
void Trainer::check_loss(double batch_loss, std::int64_t epoch) const {
  const double samples = static_cast<double>(data_.batches().global_batch_size(progress_.step_in_epoch));
  const bool finite = std::isfinite(batch_loss);
  if (finite && batch_loss <= kExplodedLossPerSample * samples) return;
  const std::string what = finite ? "exploded to " + format_number(batch_loss / samples) + " per sample"
                           : std::isnan(batch_loss) ? "became NaN"
                                                    : "became infinite";
  throw CollectiveError(
      "training diverged: the loss " + what + " at epoch " + std::to_string(epoch) + ", step " +
      std::to_string(progress_.global_step + 1) + " (lr " + format_number(schedule_.lr_at(progress_.global_step)) +
      "); try a smaller --lr. The last good checkpoint is kept in " + run_folder_.checkpoint_folder());
}

// Before anything is evaluated or saved: a parameter that is not finite
// stops the run on every rank (they all hold the same parameters).
void Trainer::check_parameters(std::int64_t epoch) const {
  const auto params = model_.params();
  const auto bad = std::find_if(params.begin(), params.end(), [](float v) { return !std::isfinite(v); });
  if (bad == params.end()) return;
  throw CollectiveError("training diverged: parameter " + std::to_string(bad - params.begin()) + " became " +
                        (std::isnan(*bad) ? "NaN" : "infinite") + " in epoch " + std::to_string(epoch) +
                        "; try a smaller --lr. The last good checkpoint is kept in " + run_folder_.checkpoint_folder());
}

void Trainer::finish_epoch(std::int64_t epoch, double seconds) {
  check_parameters(epoch);
  progress_.epochs_done = epoch;
  progress_.step_in_epoch = 0;
  Watchdog::arm("evaluate", progress_.global_step);  // the checkpoint below re-arms
  const EvalResult test = data_.test().run(model_);
  last_test_ = test;
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double peak_rss_mb = static_cast<double>(comm_.max(usage.ru_maxrss)) / 1024.0;  // the largest rank
  const std::int64_t samples = data_.batches().layout().samples();
  const double train_loss = progress_.epoch_loss_sum / static_cast<double>(samples);
  const double samples_per_second = static_cast<double>(samples) / seconds;
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
  if (comm_.is_root() && !config_.quiet) {
    std::printf(
        "epoch %3lld/%lld  step %8lld  train_loss %.5f  test_loss %.5f  test_acc %.4f  %7.2f s  %9.0f samples/s  "
        "%6.2f GFLOP/s  ms/step:%s\n",
        static_cast<long long>(epoch), static_cast<long long>(config_.epochs),
        static_cast<long long>(progress_.global_step), train_loss, test.mean_loss(), test.accuracy(), seconds,
        samples_per_second, gflops, phase_text.c_str());
    std::fflush(stdout);
  }
  JsonObject line;
  // epoch and step first: a resume finds a line's step there (run_folder.cpp).
  line.add("epoch", epoch).add("step", progress_.global_step);
  line.add("lr", schedule_.lr_at(std::max<std::int64_t>(0, progress_.global_step - 1)));
  line.add("train_loss", train_loss).add("test_loss", test.mean_loss()).add("test_accuracy", test.accuracy());
  line.add("test_correct", test.correct).add("test_total", test.total);
  line.add("epoch_seconds", seconds).add("samples_per_second", samples_per_second).add("gflops", gflops);
  line.add("step_ms", step_ms).add("phase_ms", phases).add("peak_rss_mb", peak_rss_mb);
  line.add("world_size", comm_.size());
  run_folder_.append_metrics(line.str());
  progress_.epoch_loss_sum = 0.0;
  progress_.epoch_seconds = 0.0;
  if (epoch % config_.checkpoint_every == 0 || epoch == config_.epochs) {
    const WatchdogScope watched("checkpoint", progress_.global_step);
    run_folder_.save_checkpoint(RunFolder::epoch_checkpoint_name(epoch), model_, optimizer_, progress_);
  }
}

}  // namespace dptrain
