// HDF5 data files through the public reader only (include/dptrain/data/dataset.hpp):
// split_size, then read_shards of 4-value samples with 3 classes (rank 0's shards of 1 and of 2 ranks),
// and a gather of every row read.
// Kept thin on purpose: dataset.cpp is being rewritten behind that interface.
#include <mpi.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <vector>

#include "dptrain/data/dataset.hpp"
#include "dptrain/error.hpp"
#include "dptrain/util/hdf5.hpp"
#include "fuzz_support.hpp"

namespace dptrain::fuzz {

// The reader opens files through MPI-IO: a one-process MPI job (a singleton).
void ensure_mpi() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) return;
  MPI_Init(nullptr, nullptr);
  std::atexit([] {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  });
}

int dataset_input(const std::uint8_t* data, std::size_t size) {
  ensure_mpi();
  h5::silence_automatic_error_printing();
  const Hdf5Handles before = Hdf5Handles::now();
  const std::string path = write_input_file(data, size, ".h5");
  for (const char* split : {"train", "test"}) {
    try {
      const std::int64_t samples = split_size(path, split);
      // A valid header may declare any number of samples; only what a
      // seed-sized file can hold is read (the reader's own limits are its owner's).
      if (samples < 0 || samples > (1 << 16)) continue;
      for (int ranks : {1, 2}) {
        const ShardLayout layout(samples, 3);
        const Shard shard = read_shards(path, split, layout, layout.owned(0, ranks), MPI_COMM_SELF, 4, 3);
        if (shard.features() != 4) __builtin_trap();
        for (std::int32_t label : shard.labels()) {
          if (label < 0 || label >= 3) __builtin_trap();
        }
        // What a training step does with the shard: every row, gathered in
        // reverse order (ASan checks each read), finite and with its label.
        const std::size_t rows = shard.labels().size();
        std::vector<std::uint32_t> order(rows);
        for (std::size_t r = 0; r < rows; ++r) order[r] = static_cast<std::uint32_t>(rows - 1 - r);
        std::vector<float> input(rows * 4);
        std::vector<std::int32_t> labels(rows);
        shard.gather(order, Matrix{input.data(), static_cast<int>(rows), 4}, labels);
        for (float value : input) {
          if (!std::isfinite(value)) __builtin_trap();
        }
        for (std::size_t r = 0; r < rows; ++r) {
          if (labels[r] != shard.labels()[rows - 1 - r]) __builtin_trap();
        }
      }
    } catch (const Error&) {
    }
    require_no_hdf5_handles_left(before, "split_size and read_shards");
  }
  ::unlink(path.c_str());
  return 0;
}

}  // namespace dptrain::fuzz

DPTRAIN_FUZZ_ENTRY(dataset_input)
