#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>

#include "dptrain/cli/options.hpp"
#include "dptrain/comm/watchdog.hpp"
#include "dptrain/error.hpp"
#include "dptrain/nn/sparse_input.hpp"
#include "dptrain/train/run_folder.hpp"
#include "dptrain/train/stop_signal.hpp"
#include "dptrain/train/trainer.hpp"
#include "dptrain/util/files.hpp"
#include "dptrain/util/text.hpp"

namespace dptrain::cli {
namespace {
namespace fs = std::filesystem;

const char* kUsage =
    "Usage: mpirun -np P dptrain train --data FILE.h5 [options]\n"
    "Trains a multilayer perceptron by synchronous data-parallel SGD. The defaults are the\n"
    "reference network: --layers 784,16,16,10 --activation sigmoid --output sigmoid --loss mse\n"
    "--lr 3.0 --batch-size 10 --epochs 30.\n"
    "SIGUSR1 or SIGTERM stops all ranks after the same step, writes a checkpoint and exits with 75;\n"
    "--resume auto then continues exactly where the run stopped. A rank that waits longer than\n"
    "--watchdog-seconds (a stalled or lost rank) ends every rank with exit code 76, leaving\n"
    "RUN_DIR/watchdog/ (who reported, and silent-hosts: the hosts that did not).";

po::options_description train_options(const std::string& default_run_dir) {
  po::options_description o("dptrain train options");
  // clang-format off
  o.add_options()
      ("help,h", "show this help")
      ("config", po::value<std::string>(), "read options from an INI file (key = value); the command line wins")
      ("data", po::value<std::string>(), "HDF5 data file with /train and /test splits (see dptrain convert)")
      ("layers", po::value<std::string>()->default_value("784,16,16,10"), "layer sizes, input first")
      ("activation", po::value<std::string>()->default_value("sigmoid"), "hidden activation: sigmoid, tanh, relu")
      ("output", po::value<std::string>()->default_value("sigmoid"), "output activation: sigmoid, softmax")
      ("loss", po::value<std::string>()->default_value("mse"), "loss: mse (quadratic cost) or cross-entropy")
      ("lr", po::value<double>()->default_value(3.0), "learning rate")
      ("momentum", po::value<double>()->default_value(0.0), "momentum (0 = plain SGD)")
      ("nesterov", po::value<bool>()->default_value(false)->implicit_value(true), "Nesterov momentum")
      ("weight-decay", po::value<double>()->default_value(0.0), "L2 weight decay, on all parameters")
      ("lr-schedule", po::value<std::string>()->default_value("constant"), "constant, step or cosine (per step, to 0)")
      ("warmup-epochs", po::value<double>()->default_value(0.0), "linear warm-up of the learning rate, in epochs")
      ("lr-step-epochs", po::value<double>()->default_value(10.0), "step schedule: epochs between decays")
      ("lr-gamma", po::value<double>()->default_value(0.1), "step schedule: decay factor")
      ("batch-size", po::value<std::int64_t>()->default_value(10), "global mini-batch size, split across ranks")
      ("epochs", po::value<std::int64_t>()->default_value(30), "total epochs to reach (also when resuming)")
      ("seed", po::value<std::int64_t>()->default_value(1), "seed of initialisation and shuffling")
      ("shuffle", po::value<bool>()->default_value(true), "shuffle each rank's shard every epoch")
      ("no-shuffle", po::bool_switch(), "same as --shuffle false: batches in file order")
      ("shards", po::value<std::int64_t>()->default_value(kDefaultShards),
       "contiguous shards each split is cut into; ranks own whole shards (at least as many as ranks)")
      ("exact", po::value<bool>()->default_value(false)->implicit_value(true),
       "exact gradient sums: bit-identical results on any number of ranks (slower; see README)")
      ("run-dir", po::value<std::string>()->default_value(default_run_dir),
       "folder for metrics.jsonl, config.ini and checkpoints/ (default: runs/<UTC time>)")
      ("resume", po::value<std::string>(), "checkpoint to resume from, or 'auto': RUN_DIR/checkpoints/latest.h5, "
                                           "or a fresh start when the run dir has no checkpoints")
      ("checkpoint-every", po::value<std::int64_t>()->default_value(1), "epochs between checkpoints")
      ("keep-checkpoints", po::value<std::int64_t>()->default_value(0), "checkpoint files to keep: those of the highest steps, always with the one just written (0 = all)")
      ("threads", po::value<int>()->default_value(0),
       "OpenBLAS threads per rank (0 = cores / ranks per node; with --exact, 1)")
      ("bucket-kib", po::value<std::int64_t>()->default_value(0),
       "gradient allreduce bucket size in KiB, reduced while backprop goes on (0 = one blocking allreduce)")
      ("reduce", po::value<std::string>()->default_value("shm"),
       "gradient sum: shm (shared memory inside a node, MPI between nodes) or mpi (MPI_Allreduce; "
       "the default when --bucket-kib is given)")
      ("sparse-input", po::value<bool>()->default_value(true),
       ("let the first layer skip zero inputs where at most " +
        std::to_string(static_cast<int>(100 * kSparseInputMaxDensity)) +
        "% of a batch's are nonzero, on 1 BLAS thread (MNIST: 19%; false: sgemm always)")
           .c_str())
      ("quiet,q", po::bool_switch(), "print only errors and the final summary (metrics.jsonl is still written)")
      ("profile", po::value<std::int64_t>()->default_value(0),
       "write the first K steps of every rank as a Chrome trace: RUN_DIR/profile/rank-R.json")
      ("log-every", po::value<std::int64_t>()->default_value(0),
       "steps between progress lines (0: on a terminal a live line, else about ten lines an epoch)")
      ("progress", po::value<std::string>()->default_value("auto"),
       "auto: a live line only when a person watches (a terminal, also behind mpirun); "
       "live: always; plain: lines without carriage returns")
      ("watchdog-seconds", po::value<double>()->default_value(600),
       "a rank waiting longer than this for a collective or its own step ends the job with exit code 76 "
       "(0 = never; otherwise at least 1)");
  // clang-format on
  return o;
}

template <class T>
T get(const po::variables_map& vm, const std::string& name) {
  return vm[name].as<T>();
}

constexpr std::int64_t kMaxEpochs = 1'000'000'000;

void require(bool ok, const std::string& option, const std::string& value, const std::string& expected) {
  if (!ok) throw Error("--" + option + " " + value + " is invalid: expected " + expected);
}

TrainConfig config_from(const po::variables_map& vm) {
  TrainConfig c;
  // Absolute, so that checkpoints and config.ini still find it from elsewhere.
  c.data = fs::absolute(
      required_string(vm, "data", "the HDF5 file to train on (dptrain convert or tools/fetch-mnist.sh makes one)"));
  c.arch.layers = parse_layers(get<std::string>(vm, "layers"));
  c.arch.hidden = parse_activation(get<std::string>(vm, "activation"));
  c.arch.output = parse_activation(get<std::string>(vm, "output"));
  c.arch.loss = parse_loss(get<std::string>(vm, "loss"));
  c.arch.validate();

  OptimizerSettings& o = c.optimizer;
  o.lr = get<double>(vm, "lr");
  require(std::isfinite(o.lr) && o.lr > 0, "lr", format_number(o.lr), "a positive number");
  const double momentum = get<double>(vm, "momentum");
  require(momentum >= 0 && momentum < 1, "momentum", format_number(momentum), "a number in [0, 1)");
  o.sgd.momentum = static_cast<float>(momentum);
  o.sgd.nesterov = get<bool>(vm, "nesterov");
  require(!o.sgd.nesterov || momentum > 0, "nesterov", "true", "a positive --momentum with it");
  const double decay = get<double>(vm, "weight-decay");
  require(std::isfinite(decay) && decay >= 0, "weight-decay", format_number(decay), "a number >= 0");
  o.sgd.weight_decay = static_cast<float>(decay);
  o.schedule = parse_schedule(get<std::string>(vm, "lr-schedule"));
  o.lr_step_epochs = get<double>(vm, "lr-step-epochs");
  require(std::isfinite(o.lr_step_epochs) && o.lr_step_epochs > 0, "lr-step-epochs", format_number(o.lr_step_epochs),
          "a positive number of epochs");
  o.lr_gamma = get<double>(vm, "lr-gamma");
  require(std::isfinite(o.lr_gamma) && o.lr_gamma > 0, "lr-gamma", format_number(o.lr_gamma), "a positive factor");

  c.batch_size = get<std::int64_t>(vm, "batch-size");
  require(c.batch_size >= 1 && c.batch_size <= (1 << 24), "batch-size", std::to_string(c.batch_size),
          "a whole number from 1 to 16777216");
  c.epochs = get<std::int64_t>(vm, "epochs");
  // The bound keeps the step counters in int64: 10^9 epochs of even 10^9
  // steps each are 10^18 steps, under 9.2 x 10^18.
  require(c.epochs >= 1 && c.epochs <= kMaxEpochs, "epochs", std::to_string(c.epochs),
          "a whole number from 1 to " + std::to_string(kMaxEpochs));
  o.warmup_epochs = get<double>(vm, "warmup-epochs");
  // Bounded as --epochs is (warm-up steps are counted in int64), not by this
  // run's --epochs: a resumed run takes it from the checkpoint's config.
  require(std::isfinite(o.warmup_epochs) && o.warmup_epochs >= 0 && o.warmup_epochs <= static_cast<double>(kMaxEpochs),
          "warmup-epochs", format_number(o.warmup_epochs),
          "a number of epochs from 0 to " + std::to_string(kMaxEpochs));
  c.seed = get<std::int64_t>(vm, "seed");
  c.shuffle = get<bool>(vm, "shuffle") && !get<bool>(vm, "no-shuffle");
  c.shards = get<std::int64_t>(vm, "shards");
  require(c.shards >= 1 && c.shards <= kMaxShards, "shards", std::to_string(c.shards),
          "a whole number from 1 to " + std::to_string(kMaxShards));
  c.exact = get<bool>(vm, "exact");
  c.sparse_input = get<bool>(vm, "sparse-input");
  c.checkpoint_every = get<std::int64_t>(vm, "checkpoint-every");
  require(c.checkpoint_every >= 1, "checkpoint-every", std::to_string(c.checkpoint_every), "a whole number >= 1");
  c.keep_checkpoints = get<std::int64_t>(vm, "keep-checkpoints");
  require(c.keep_checkpoints >= 0, "keep-checkpoints", std::to_string(c.keep_checkpoints), "0 (all) or a count");
  c.threads = get<int>(vm, "threads");
  require(c.threads >= 0 && c.threads <= 1024, "threads", std::to_string(c.threads), "0 (automatic) or a thread count");
  c.bucket_kib = get<std::int64_t>(vm, "bucket-kib");
  require(c.bucket_kib >= 0 && c.bucket_kib <= (1 << 21), "bucket-kib", std::to_string(c.bucket_kib),
          "0 (one blocking allreduce) or a size in KiB up to 2097152");
  c.reduce = parse_reduce_method(get<std::string>(vm, "reduce"));
  if (c.bucket_kib > 0 && vm["reduce"].defaulted()) c.reduce = ReduceMethod::mpi;  // buckets are MPI's
  require(c.bucket_kib == 0 || c.reduce == ReduceMethod::mpi, "bucket-kib", std::to_string(c.bucket_kib),
          "0 with --reduce shm (buckets are reduced by MPI: use --reduce mpi)");
  c.run_dir = get<std::string>(vm, "run-dir");
  require(!c.run_dir.empty(), "run-dir", "''", "a folder (the run's files would land in the working directory)");
  c.quiet = get<bool>(vm, "quiet");
  c.log_every = get<std::int64_t>(vm, "log-every");
  c.profile_steps = get<std::int64_t>(vm, "profile");
  require(c.profile_steps >= 0 && c.profile_steps <= 1'000'000, "profile", std::to_string(c.profile_steps),
          "a number of steps from 0 to 1000000");
  require(c.log_every >= 0, "log-every", std::to_string(c.log_every), "0 (automatic) or a number of steps");
  c.progress = parse_progress_mode(get<std::string>(vm, "progress"));
  c.watchdog_seconds = get<double>(vm, "watchdog-seconds");
  // Under a second, set-up and a checkpoint write are "stalls".
  require(std::isfinite(c.watchdog_seconds) &&
              (c.watchdog_seconds == 0 || (c.watchdog_seconds >= 1 && c.watchdog_seconds <= 1e7)),
          "watchdog-seconds", format_number(c.watchdog_seconds), "0 (never) or a number of seconds from 1 to 1e+07");
  return c;
}

// MemAvailable of /proc/meminfo in bytes, or -1 where it cannot be read.
double available_memory_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  double kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024.0;
  }
  return -1;
}

// A network under kMaxParameters can still exceed a node's memory, and then
// every rank dies by bad_alloc or the OOM killer amid MPI's messages. Before
// anything is allocated, a lower bound of what the node needs (each rank's
// gradients, one copy of the parameters and of the velocities) is checked
// against what the node has: only a run that cannot fit is refused.
// On resume it runs before the checkpoint's parameters are read, and counts
// them too: every rank reads the checkpoint's parameters and velocities, and
// holds them while the trainer allocates its own.
void require_memory_for(const Architecture& arch, const SgdSettings& sgd, int ranks_on_node,
                        const std::string& resume_path) {
  const double available = available_memory_bytes();
  if (available < 0) return;
  const double copy = static_cast<double>(arch.parameter_count()) * sizeof(float);
  const bool momentum = sgd.momentum != 0.0f;
  const double model_copies = 1.0 + (momentum ? 1.0 : 0.0);  // parameters, velocities
  const double copies = ranks_on_node + model_copies + (resume_path.empty() ? 0.0 : ranks_on_node * model_copies);
  const double needed = copy * copies;
  if (needed <= available) return;
  auto gib = [](double bytes) { return format_number(std::round(bytes / (1 << 30) * 10) / 10); };
  const std::string model = momentum ? "parameters and the velocities" : "parameters";
  throw Error((resume_path.empty() ? "--layers " + arch.layers_string()
                                   : "--resume " + resume_path + " (layers " + arch.layers_string() + ")") +
              ": " + std::to_string(arch.parameter_count()) + " parameters need at least " + gib(needed) +
              " GiB on this node (" + gib(copy) + " GiB for the gradients of each of its " +
              std::to_string(ranks_on_node) + " ranks, the " + model +
              (resume_path.empty() ? "" : ", and each rank's copy of the checkpoint's " + model) + "), which has " +
              gib(available) + " GiB available: use fewer ranks per node or a smaller network");
}

// The architecture comes from the checkpoint: an explicit conflicting value is an error.
void check_architecture_matches(const po::variables_map& user, const Checkpoint& checkpoint, const std::string& path) {
  const Architecture& a = checkpoint.arch;
  const std::pair<const char*, std::string> fields[] = {{"layers", a.layers_string()},
                                                        {"activation", to_string(a.hidden)},
                                                        {"output", to_string(a.output)},
                                                        {"loss", to_string(a.loss)}};
  for (const auto& [name, stored] : fields) {
    if (!user.count(name) || user[name].defaulted()) continue;
    std::string given = user[name].as<std::string>();
    if (std::string(name) == "layers") given = Architecture{parse_layers(given)}.layers_string();
    if (given != stored) {
      throw Error("--" + std::string(name) + " " + given + " conflicts with the checkpoint " + path + ", which has " +
                  stored + ": a resumed run keeps the checkpoint's architecture");
    }
  }
}

std::string default_run_dir(const Communicator& comm) {
  std::string dir;
  if (comm.is_root()) {
    const std::time_t now = std::time(nullptr);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::gmtime(&now));
    dir = std::string("runs/") + stamp;
  }
  comm.broadcast(dir);
  return dir;
}

// INI text into `vm`, with errors that name `source`. The text is checked
// first: Boost's messages quote values, and a NUL or an escape sequence
// would reach the error line.
void store_ini(const std::string& text, const std::string& source, const po::options_description& options,
               po::variables_map& vm) {
  require_text(text, source);
  std::istringstream in(text);
  try {
    po::store(po::parse_config_file(in, options), vm);
  } catch (const po::error& e) {
    throw Error(source + ": " + program_options_message(e, text));
  }
}

}  // namespace

TrainConfig train_config_from(const Args& command_line, const std::string& ini, const std::string& source) {
  const po::options_description options = train_options("runs/from-ini");
  po::variables_map vm;
  parse_command_line("train", command_line, options, vm);
  store_ini(ini, source, options, vm);
  try {
    po::notify(vm);
  } catch (const po::error& e) {
    throw Error(source + ": " + program_options_message(e, ini));
  }
  return config_from(vm);
}

int train(const Args& args, const Communicator& comm) {
  const StopSignals stop_signals;  // from the start: a signal during set-up stops after the first step
  const po::options_description options = train_options(default_run_dir(comm));
  po::variables_map vm;
  TrainConfig config;
  std::optional<Checkpoint> resume;
  bool help = false;

  comm.collectively([&] {
    parse_command_line("train", args, options, vm);
    if ((help = print_help_if_asked(kUsage, options, vm, comm))) return;
    if (vm.count("config")) {
      const std::string path = vm["config"].as<std::string>();
      try {
        require_regular_file(path);
      } catch (const Error& e) {
        throw Error("--config " + std::string(e.what()));
      }
      std::ifstream file(path);
      if (!file) throw Error("--config " + path + ": cannot open: " + std::strerror(errno));
      const std::string text{std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
      store_ini(text, "--config " + path, options, vm);
    }
    const std::string run_dir = vm["run-dir"].as<std::string>();
    std::string resume_path;
    if (vm.count("resume")) {
      resume_path = vm["resume"].as<std::string>();
      if (resume_path == "auto") {
        if (vm["run-dir"].defaulted())
          throw Error("--resume auto needs --run-dir: the folder whose latest checkpoint to resume");
        resume_path = RunFolder::checkpoint_to_resume(run_dir);
      } else if (!fs::exists(resume_path)) {
        throw Error("--resume " + resume_path + ": no such checkpoint");
      }
    }
    if (!vm.count("resume")) RunFolder::require_no_earlier_run(run_dir);
    if (!resume_path.empty()) {
      resume = read_checkpoint(resume_path, [&](const Checkpoint& header) {
        require_memory_for(header.arch, header.optimizer.sgd, comm.ranks_on_this_node(), resume_path);
      });
      check_architecture_matches(vm, *resume, resume_path);
      store_ini(resume->config, resume_path + ": the configuration saved in the checkpoint", options, vm);
    }
    po::notify(vm);
    config = config_from(vm);
    if (resume) {
      // The parameters were shaped by /model: it, not the INI text or a
      // default, is the architecture of a resumed run (read_checkpoint has
      // checked that the saved INI agrees with it).
      config.arch = resume->arch;
    }
    // A resume was checked before its parameters were read: now that each
    // rank holds them, MemAvailable already counts them as used.
    if (!resume) require_memory_for(config.arch, config.optimizer.sgd, comm.ranks_on_this_node(), "");
  });
  if (help) return 0;

  // Armed from here to the end: set-up (the first read), training, and a
  // last barrier, so that a rank stalled anywhere ends the job.
  const Watchdog watchdog(comm, config.watchdog_seconds, config.run_dir);
  Watchdog::arm("set-up", 0);
  Trainer trainer(comm, config, std::move(resume));
  watchdog.record_hosts(comm);
  const Trainer::Outcome outcome = trainer.run();
  Watchdog::arm("finish", trainer.progress().global_step);
  comm.barrier();
  Watchdog::disarm();
  return outcome == Trainer::Outcome::stopped ? kExitStopped : 0;
}

}  // namespace dptrain::cli
