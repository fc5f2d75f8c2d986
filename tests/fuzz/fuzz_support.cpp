#include "fuzz_support.hpp"

#include <hdf5.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>

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

namespace {

// HDF5 1.10 numbers the ids of each kind consecutively and never reuses one,
// and its H5Inmembers refuses the library's own kinds: so a fresh id, closed
// at once, marks the point, and the ids issued between two marks that are
// still valid are the handles opened in between and left open.
hid_t next_datatype() {
  const hid_t id = H5Tcopy(H5T_NATIVE_INT);
  H5Tclose(id);
  return id;
}
hid_t next_dataspace() {
  const hid_t id = H5Screate(H5S_SCALAR);
  H5Sclose(id);
  return id;
}
hid_t next_property_list() {
  const hid_t id = H5Pcreate(H5P_DATASET_CREATE);
  H5Pclose(id);
  return id;
}

long long still_valid_between(hid_t first, hid_t last) {
  long long valid = 0;
  for (hid_t id = first + 1; id < last; ++id) valid += H5Iis_valid(id) > 0 ? 1 : 0;
  return valid;
}

}  // namespace

Hdf5Handles Hdf5Handles::now() {
  return {H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), next_datatype(), next_dataspace(), next_property_list()};
}

std::string Hdf5Handles::left_open_since(const Hdf5Handles& before) const {
  std::string left;
  auto report = [&](const char* what, long long count) {
    if (count != 0) left += std::string(left.empty() ? "" : ", ") + std::to_string(count) + " " + what;
  };
  report("objects in files", file_objects - before.file_objects);
  report("datatypes", still_valid_between(before.datatype_mark, datatype_mark));
  report("dataspaces", still_valid_between(before.dataspace_mark, dataspace_mark));
  report("property lists", still_valid_between(before.property_list_mark, property_list_mark));
  return left;
}

void require_no_hdf5_handles_left(const Hdf5Handles& before, const char* after) {
  const std::string left = Hdf5Handles::now().left_open_since(before);
  if (left.empty()) return;
  std::fprintf(stderr, "HDF5 handles left open after %s: %s\n", after, left.c_str());
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
