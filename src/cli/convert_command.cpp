#include <cstdio>

#include "dptrain/cli/options.hpp"
#include "dptrain/data/dataset.hpp"
#include "dptrain/error.hpp"

namespace dptrain::cli {

int convert(const Args& args, const Communicator& comm) {
  po::options_description options("dptrain convert options");
  // clang-format off
  options.add_options()
      ("help,h", "show this help")
      ("train-images", po::value<std::string>(), "IDX file of training images (raw or .gz)")
      ("train-labels", po::value<std::string>(), "IDX file of training labels (raw or .gz)")
      ("test-images", po::value<std::string>(), "IDX file of test images (raw or .gz)")
      ("test-labels", po::value<std::string>(), "IDX file of test labels (raw or .gz)")
      ("out", po::value<std::string>(), "HDF5 file to write (replaced atomically)");
  // clang-format on
  const char* usage =
      "Usage: dptrain convert --train-images F --train-labels F --test-images F --test-labels F "
      "--out FILE.h5\nConverts MNIST's IDX files to the HDF5 layout dptrain trains on.";
  po::variables_map vm;
  bool help = false;
  comm.collectively([&] {
    parse_command_line("convert", args, options, vm);
    po::notify(vm);
    if ((help = print_help_if_asked(usage, options, vm, comm)) || !comm.is_root()) return;
    auto source = [&](const std::string& name) {
      const std::string path = required_string(vm, name, "an IDX file");
      return IdxSource{path, read_idx(path)};
    };
    const std::string out = required_string(vm, "out", "the HDF5 file to write");
    const IdxSource train_images = source("train-images"), train_labels = source("train-labels");
    const IdxSource test_images = source("test-images"), test_labels = source("test-labels");
    write_mnist_hdf5(out, train_images, train_labels, test_images, test_labels);
    std::printf("wrote %s: %u training and %u test samples\n", out.c_str(), train_images.array.dims[0],
                test_images.array.dims[0]);
  });
  return 0;
}

}  // namespace dptrain::cli
