#include <cstdio>
#include <optional>
#include <string>

#include "dptrain/cli/options.hpp"
#include "dptrain/error.hpp"
#include "dptrain/io/checkpoint.hpp"
#include "dptrain/train/evaluate.hpp"
#include "dptrain/util/json.hpp"

namespace dptrain::cli {
namespace {

void add_report(JsonObject& json, const EvalResult& r) {
  json.add("accuracy", r.accuracy()).add("correct", r.correct).add("total", r.total).add("loss", r.mean_loss());
  json.add("mean_top_probability", r.mean_top_probability());
  std::vector<std::string> per_class, confusion;
  for (int c = 0; c < r.classes; ++c) {
    JsonObject row;
    row.add("class", c).add("precision", r.precision(c)).add("recall", r.recall(c)).add("support", r.support(c));
    per_class.push_back(row.str());
    const auto first = r.confusion.begin() + static_cast<std::ptrdiff_t>(c) * r.classes;
    confusion.push_back(json_array(std::vector<std::int64_t>(first, first + r.classes)));
  }
  json.add_raw("per_class", json_array(per_class)).add_raw("confusion", json_array(confusion));
  json.add_raw("predicted", json_array(r.predicted));
}

void print_text_report(const EvalResult& r) {
  std::printf("\n%-6s %10s %10s %8s\n", "class", "precision", "recall", "support");
  for (int c = 0; c < r.classes; ++c) {
    std::printf("%-6d %10.4f %10.4f %8lld\n", c, r.precision(c), r.recall(c), static_cast<long long>(r.support(c)));
  }
  std::printf("\nconfusion matrix (rows: true label, columns: predicted)\n     ");
  for (int p = 0; p < r.classes; ++p) std::printf(" %6d", p);
  std::printf("\n");
  for (int t = 0; t < r.classes; ++t) {
    std::printf("%4d ", t);
    for (int p = 0; p < r.classes; ++p) std::printf(" %6lld", static_cast<long long>(r.count(t, p)));
    std::printf("\n");
  }
}

void print_noise_report(const EvalResult& noise, const EvalResult& real, const std::string& split) {
  std::printf("\nnoise experiment: %lld images of uniform random pixels\n", static_cast<long long>(noise.total));
  std::printf("%-6s %14s %14s\n", "digit", "noise share", (split + " share").c_str());
  for (int c = 0; c < noise.classes; ++c) {
    std::printf("%-6d %14.4f %14.4f\n", c, static_cast<double>(noise.predicted[c]) / static_cast<double>(noise.total),
                static_cast<double>(real.predicted[c]) / static_cast<double>(real.total));
  }
  std::printf("mean top probability: %.4f on noise, %.4f on the %s split\n", noise.mean_top_probability(),
              real.mean_top_probability(), split.c_str());
}

}  // namespace

int eval(const Args& args, const Communicator& comm) {
  po::options_description options("dptrain eval options");
  // clang-format off
  options.add_options()
      ("help,h", "show this help")
      ("checkpoint", po::value<std::string>(), "checkpoint file (e.g. RUN_DIR/checkpoints/latest.h5)")
      ("data", po::value<std::string>(), "HDF5 data file (default: the one the checkpoint was trained on)")
      ("split", po::value<std::string>()->default_value("test"), "split to evaluate: test or train")
      ("noise", po::value<std::int64_t>()->default_value(0), "also feed N images of uniform random pixels")
      ("seed", po::value<std::int64_t>()->default_value(1), "seed of the noise images")
      ("json", po::bool_switch(), "print one JSON object instead of text");
  // clang-format on
  const char* usage =
      "Usage: [mpirun -np P] dptrain eval --checkpoint FILE.h5 [--data FILE.h5] [--split test|train] [--noise N] "
      "[--json]\nAccuracy, loss, per-class precision and recall and the confusion matrix of a checkpoint on a "
      "split;\nthe ranks share the work and the result does not depend on their number.";

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
    const std::int64_t noise = vm["noise"].as<std::int64_t>();
    if (noise < 0 || noise > 1'000'000'000) {
      throw Error("--noise " + std::to_string(noise) + " is invalid: expected 0 to 1000000000 images");
    }
    checkpoint = read_checkpoint(checkpoint_path);
    data = vm.count("data") ? vm["data"].as<std::string>() : checkpoint->progress.data_file;
    model.emplace(checkpoint->arch);
    load_parameters(*checkpoint, *model, checkpoint_path);
    evaluator.emplace(data, split, checkpoint->arch, comm);
  });
  if (help) return 0;

  const EvalResult result = evaluator->run(*model);
  const std::int64_t noise_images = vm["noise"].as<std::int64_t>();
  std::optional<EvalResult> noise;
  if (noise_images > 0) {
    noise = evaluate_noise(*model, noise_images, static_cast<std::uint64_t>(vm["seed"].as<std::int64_t>()), comm);
  }
  if (!comm.is_root()) return 0;
  if (vm["json"].as<bool>()) {
    JsonObject json;
    json.add("checkpoint", checkpoint_path).add("data", data).add("split", split);
    add_report(json, result);
    if (noise) {
      JsonObject n;
      n.add("images", noise->total).add("mean_top_probability", noise->mean_top_probability());
      n.add_raw("predicted", json_array(noise->predicted));
      json.add("noise", n);
    }
    std::printf("%s\n", json.str().c_str());
  } else {
    std::printf("%s on %s /%s: accuracy %.4f (%lld/%lld), loss %.6f\n", checkpoint_path.c_str(), data.c_str(),
                split.c_str(), result.accuracy(), static_cast<long long>(result.correct),
                static_cast<long long>(result.total), result.mean_loss());
    print_text_report(result);
    if (noise) print_noise_report(*noise, result, split);
  }
  return 0;
}

}  // namespace dptrain::cli
