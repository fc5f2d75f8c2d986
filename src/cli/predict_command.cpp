#include <cstdio>
#include <vector>

#include "dptrain/cli/options.hpp"
#include "dptrain/data/image.hpp"
#include "dptrain/error.hpp"
#include "dptrain/io/checkpoint.hpp"
#include "dptrain/train/evaluate.hpp"
#include "dptrain/util/json.hpp"

namespace dptrain::cli {

int predict(const Args& args, const Communicator& comm) {
  po::options_description options("dptrain predict options");
  // clang-format off
  options.add_options()
      ("help,h", "show this help")
      ("checkpoint", po::value<std::string>(), "checkpoint to classify with")
      ("images", po::value<std::vector<std::string>>(), "image files (also the positional arguments)")
      ("invert", po::bool_switch(), "the images are dark on light: invert them")
      ("no-invert", po::bool_switch(), "the images are light on dark, as MNIST: use them as they are")
      ("json", po::bool_switch(), "one JSON object per image");
  // clang-format on
  po::positional_options_description positional;
  positional.add("images", -1);
  const char* usage =
      "Usage: dptrain predict --checkpoint FILE.h5 [--invert|--no-invert] [--json] IMAGE...\n"
      "Classifies 8-bit grayscale PGM (P2, P5) or PNG images of the input layer's size (28x28 for MNIST).\n"
      "MNIST digits are light on dark; without --invert or --no-invert, an image whose border is light\n"
      "is taken for a dark-on-light drawing and inverted (and the output says so).";
  po::variables_map vm;
  comm.collectively([&] {
    parse_command_line("predict", args, options, vm, positional);
    po::notify(vm);
    if (print_help_if_asked(usage, options, vm, comm) || !comm.is_root()) return;
    if (vm["invert"].as<bool>() && vm["no-invert"].as<bool>())
      throw Error("--invert and --no-invert exclude each other");
    if (!vm.count("images")) throw Error("dptrain predict: no image files given (see dptrain predict --help)");
    const std::string checkpoint_path = required_string(vm, "checkpoint", "the checkpoint to classify with");
    const Checkpoint checkpoint = read_checkpoint(checkpoint_path);
    Mlp model(checkpoint.arch);
    load_parameters(checkpoint, model, checkpoint_path);
    const int inputs = model.arch().inputs(), classes = model.arch().outputs();
    Workspace workspace(model.arch(), 1);
    std::vector<float> probabilities(static_cast<std::size_t>(classes));
    for (const std::string& path : vm["images"].as<std::vector<std::string>>()) {
      // The size is checked against the header before the pixels are read.
      const GrayImage image = read_gray_image(path, static_cast<std::size_t>(inputs));
      const bool invert = vm["invert"].as<bool>() || (!vm["no-invert"].as<bool>() && looks_dark_on_light(image));
      Matrix input = workspace.input(1);
      for (int i = 0; i < inputs; ++i) {
        const float v = image.pixels[static_cast<std::size_t>(i)] / 255.0f;
        input(0, i) = invert ? 1.0f - v : v;
      }
      output_probabilities(model.arch().output, model.forward(workspace, 1).row(0), classes, probabilities.data());
      const int digit =
          static_cast<int>(std::max_element(probabilities.begin(), probabilities.end()) - probabilities.begin());
      if (vm["json"].as<bool>()) {
        JsonObject json;
        json.add("file", path).add("digit", digit).add("probability", double{probabilities[digit]});
        json.add_raw("probabilities", json_array(std::vector<double>(probabilities.begin(), probabilities.end())))
            .add_raw("inverted", invert ? "true" : "false");
        std::printf("%s\n", json.str().c_str());
      } else {
        std::printf("%s: %d (probability %.3f%s)\n  ", path.c_str(), digit, probabilities[digit],
                    invert ? "; inverted: dark on light" : "");
        for (int c = 0; c < classes; ++c) std::printf("%d:%.3f ", c, probabilities[c]);
        std::printf("\n");
      }
    }
  });
  return 0;
}

}  // namespace dptrain::cli
