#include <cstdio>
#include <optional>

#include "dptrain/cli/options.hpp"
#include "dptrain/error.hpp"
#include "dptrain/io/checkpoint.hpp"
#include "dptrain/train/evaluate.hpp"
#include "dptrain/util/json.hpp"

namespace dptrain::cli {

int eval(const Args& args, const Communicator& comm) {
  po::options_description options("dptrain eval options");
  // clang-format off
  options.add_options()
      ("help,h", "show this help")
      ("checkpoint", po::value<std::string>(), "checkpoint file (e.g. RUN_DIR/checkpoints/latest.h5)")
      ("data", po::value<std::string>(), "HDF5 data file (default: the one the checkpoint was trained on)")
      ("split", po::value<std::string>()->default_value("test"), "split to evaluate: test or train")
      ("json", po::bool_switch(), "print one JSON object instead of text");
  // clang-format on
  const char* usage =
      "Usage: [mpirun -np P] dptrain eval --checkpoint FILE.h5 [--data FILE.h5] [--json]\n"
      "Accuracy and mean loss of a checkpoint on a split; the ranks share the work.";

  po::variables_map vm;
  bool help = false;
  std::optional<Checkpoint> checkpoint;
  std::string checkpoint_path, data, split;
  std::optional<Mlp> model;
  std::optional<Evaluator> evaluator;
  comm.collectively([&] {
    parse_command_line("eval", args, options, vm);
    po::notify(vm);
    if ((help = print_help_if_asked(usage, options, vm, comm))) return;
    checkpoint_path = required_string(vm, "checkpoint", "the checkpoint to evaluate");
    split = vm["split"].as<std::string>();
    if (split != "test" && split != "train") throw Error("--split " + split + " is invalid: expected test or train");
    checkpoint = read_checkpoint(checkpoint_path);
    data = vm.count("data") ? vm["data"].as<std::string>() : checkpoint->progress.data_file;
    model.emplace(checkpoint->arch);
    std::copy(checkpoint->params.begin(), checkpoint->params.end(), model->params().begin());
    evaluator.emplace(data, split, checkpoint->arch, comm);
  });
  if (help) return 0;

  const EvalResult result = evaluator->run(*model);
  if (comm.is_root()) {
    if (vm["json"].as<bool>()) {
      JsonObject json;
      json.add("checkpoint", checkpoint_path).add("data", data).add("split", split);
      json.add("accuracy", result.accuracy()).add("correct", result.correct).add("total", result.total);
      json.add("loss", result.mean_loss());
      std::printf("%s\n", json.str().c_str());
    } else {
      std::printf("%s on %s /%s: accuracy %.4f (%lld/%lld), loss %.6f\n", checkpoint_path.c_str(), data.c_str(),
                  split.c_str(), result.accuracy(), static_cast<long long>(result.correct),
                  static_cast<long long>(result.total), result.mean_loss());
    }
  }
  return 0;
}

}  // namespace dptrain::cli
