// HDF5 checkpoints through read_checkpoint, and what a checkpoint that reads
// is then used for: building its network and loading the parameters.
#include <unistd.h>

#include "dptrain/error.hpp"
#include "dptrain/io/checkpoint.hpp"
#include "dptrain/util/hdf5.hpp"
#include "fuzz_support.hpp"

namespace dptrain::fuzz {

int checkpoint_input(const std::uint8_t* data, std::size_t size) {
  h5::silence_automatic_error_printing();
  const Hdf5Handles before = Hdf5Handles::now();
  const std::string path = write_input_file(data, size, ".h5");
  try {
    const Checkpoint checkpoint = read_checkpoint(path);
    Mlp model(checkpoint.arch);
    load_parameters(checkpoint, model, path);
  } catch (const Error&) {
  }
  require_no_hdf5_handles_left(before, "read_checkpoint");
  ::unlink(path.c_str());
  return 0;
}

}  // namespace dptrain::fuzz

DPTRAIN_FUZZ_ENTRY(checkpoint_input)
