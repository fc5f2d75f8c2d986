#include "fuzz_support.hpp"

#include <hdf5.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "dptrain/io/checkpoint.hpp"
#include "dptrain/nn/mlp.hpp"
#include "dptrain/optim/sgd.hpp"

namespace dptrain::fuzz {

std::string write_input_file(const std::uint8_t* data, std::size_t size, const std::string& suffix) {
  const std::string folder = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
  const std::string path = folder + "/dptrain-fuzz-" + std::to_string(::getpid()) + suffix;
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) throw std::runtime_error("cannot write " + path);
  const bool written = size == 0 || std::fwrite(data, 1, size, file) == size;
  if (std::fclose(file) != 0 || !written) throw std::runtime_error("cannot write " + path);
  return path;
}

void require_no_open_hdf5_objects(const char* after) {
  const ssize_t open = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
  if (open == 0) return;
  std::fprintf(stderr, "%zd HDF5 objects left open after %s\n", open, after);
  __builtin_trap();
}

ExampleCheckpoint::ExampleCheckpoint() {
  config.data = progress.data_file;
  config.arch = Architecture{{6, 4, 3}, Activation::relu, Activation::softmax, Loss::cross_entropy};
  config.optimizer.lr = 0.1;
  config.optimizer.sgd = SgdSettings{0.9f, 0.0f, false};
  config.batch_size = progress.batch_size;
  config.seed = progress.seed;
  config.shuffle = progress.shuffle;
}

void ExampleCheckpoint::write(const std::string& path) const {
  Mlp model(config.arch);
  model.initialize(1);
  const Sgd optimizer(model.num_params(), config.optimizer.sgd);
  write_checkpoint(path, model, optimizer, config.optimizer, progress, config.to_ini());
}

}  // namespace dptrain::fuzz
