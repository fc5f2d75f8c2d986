#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "dptrain/cli/options.hpp"
#include "dptrain/error.hpp"
#include "dptrain/io/checkpoint.hpp"
#include "dptrain/util/text.hpp"

namespace dptrain::cli {
namespace {
namespace fs = std::filesystem;

// The run's metrics.jsonl, next to the checkpoints folder, printed as it is.
void print_metrics_history(const std::string& checkpoint_path) {
  const fs::path metrics = fs::path(checkpoint_path).parent_path().parent_path() / "metrics.jsonl";
  std::ifstream in(metrics);
  if (!in) {
    std::printf("metrics      none found next to the checkpoint (%s)\n", metrics.c_str());
    return;
  }
  std::printf("metrics      %s:\n", metrics.c_str());
  for (std::string line; std::getline(in, line);) std::printf("  %s\n", line.c_str());
}

}  // namespace

int inspect(const Args& args, const Communicator& comm) {
  po::options_description options("dptrain inspect options");
  // clang-format off
  options.add_options()
      ("help,h", "show this help")
      ("checkpoint", po::value<std::string>(), "the checkpoint to describe (also the first positional argument)")
      ("no-metrics", po::bool_switch(), "leave out the run's metrics history");
  // clang-format on
  po::positional_options_description positional;
  positional.add("checkpoint", 1);
  po::variables_map vm;
  bool help = false;
  comm.collectively([&] {
    parse_command_line("inspect", args, options, vm, positional);
    po::notify(vm);
    help = print_help_if_asked("Usage: dptrain inspect CHECKPOINT.h5\nA readable summary of a checkpoint.", options, vm,
                               comm);
    if (help || !comm.is_root()) return;
    const std::string path = required_string(vm, "checkpoint", "the checkpoint to describe");
    const Checkpoint c = read_checkpoint(path);
    const std::vector<LayerSlice> layout = layer_slices(c.arch);
    const Architecture& a = c.arch;
    std::printf("checkpoint   %s (dptrain-checkpoint, format %lld)\n", path.c_str(),
                static_cast<long long>(c.format_version));
    std::printf("network      %s, %zu parameters; hidden %s, output %s, loss %s\n", a.layers_string().c_str(),
                a.parameter_count(), to_string(a.hidden).c_str(), to_string(a.output).c_str(),
                to_string(a.loss).c_str());
    for (std::size_t i = 0; i < layout.size(); ++i) {
      const LayerSlice& l = layout[i];
      double sum_squares = 0.0;
      for (std::size_t k = 0; k < static_cast<std::size_t>(l.in) * l.out; ++k) {
        sum_squares += double{c.params[l.weight_offset + k]} * c.params[l.weight_offset + k];
      }
      std::printf("  layer_%zu    weight [%d x %d], bias [%d]; weight RMS %.4f\n", i, l.out, l.in, l.out,
                  std::sqrt(sum_squares / (static_cast<double>(l.in) * l.out)));
    }
    const OptimizerSettings& o = c.optimizer;
    std::printf("optimizer    sgd: lr %s, %s schedule (warm-up %s epochs), momentum %s%s, weight decay %s\n",
                format_number(o.lr).c_str(), to_string(o.schedule).c_str(), format_number(o.warmup_epochs).c_str(),
                format_number(o.sgd.momentum).c_str(), o.sgd.nesterov ? " (Nesterov)" : "",
                format_number(o.sgd.weight_decay).c_str());
    const Progress& p = c.progress;
    std::printf(
        "progress     %lld epochs done, %lld steps of the next; global step %lld; %lld rank%s, global batch "
        "%lld, seed %lld, %s\n",
        static_cast<long long>(p.epochs_done), static_cast<long long>(p.step_in_epoch),
        static_cast<long long>(p.global_step), static_cast<long long>(p.world_size), p.world_size == 1 ? "" : "s",
        static_cast<long long>(p.batch_size), static_cast<long long>(p.seed), p.shuffle ? "shuffled" : "not shuffled");
    std::printf("data         %s\n             SHA-256 %s\n", p.data_file.c_str(), p.data_sha256.c_str());
    if (!vm["no-metrics"].as<bool>()) print_metrics_history(path);
  });
  return 0;
}

}  // namespace dptrain::cli
