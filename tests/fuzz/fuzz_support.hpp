#pragma once
// Fuzz targets for every reader of outside input. Each target is a plain
// function, so that the same code is (a) a libFuzzer binary in a
// -DDPTRAIN_FUZZ=ON build (clang, -fsanitize=fuzzer) and (b) replayed on the
// checked-in corpus and regression inputs by dptrain_unit_tests in the normal
// and sanitizer builds. A target returns normally for good input and for
// input rejected with dptrain::Error; anything else (a crash, a sanitizer
// report, another exception, a huge allocation) is a finding.
#include <hdf5.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "dptrain/train/config.hpp"

namespace dptrain::fuzz {

int idx_input(const std::uint8_t* data, std::size_t size);         // IDX files, raw and gzip
int image_input(const std::uint8_t* data, std::size_t size);       // PGM (P2, P5) and PNG
int dataset_input(const std::uint8_t* data, std::size_t size);     // HDF5 data files: split_size, read_shards
int checkpoint_input(const std::uint8_t* data, std::size_t size);  // HDF5 checkpoints: read_checkpoint
// Edits (attributes, datasets) through the HDF5 API to a valid checkpoint, then read_checkpoint.
int checkpoint_edits_input(const std::uint8_t* data, std::size_t size);
int config_input(const std::uint8_t* data, std::size_t size);  // INI text of --config and checkpoints

// Writes the input to a file of this process's own (readers of HDF5, gzip
// and IDX take paths) and returns its name; /dev/shm when there is one.
std::string write_input_file(const std::uint8_t* data, std::size_t size, const std::string& suffix);

// The HDF5 handles open in this process: objects in open files (files,
// groups, datasets, named datatypes, attributes), counted, and marks from
// which to find the handles H5Fget_obj_count does not see: datatypes
// (H5Dget_type...), dataspaces (H5Dget_space, H5Screate...) and property
// lists (H5Pcreate...).
struct Hdf5Handles {
  long long file_objects = 0;
  hid_t datatype_mark = 0, dataspace_mark = 0, property_list_mark = 0;
  static Hdf5Handles now();
  // The handles open now that were not at `before`, as text ("" when none).
  std::string left_open_since(const Hdf5Handles& before) const;
};

// Traps (a finding) when a handle of any kind above is open that was not at
// `before`: after a reader returns or throws, every handle it opened must be
// closed (RAII, error paths included). LeakSanitizer cannot tell, as
// libhdf5's own allocations are suppressed.
void require_no_hdf5_handles_left(const Hdf5Handles& before, const char* after);

// The valid checkpoint that the edit fuzzer starts from and the hostile
// checkpoint tests edit: a 6-4-3 relu/softmax network with momentum, its
// progress, and the configuration whose INI it carries.
struct ExampleCheckpoint {
  TrainConfig config;
  Progress progress{2, 0, 20, 1, 8, kDefaultShards, 3, true, "/data/d.h5", std::string(64, 'b')};

  ExampleCheckpoint();
  void write(const std::string& path) const;
};

}  // namespace dptrain::fuzz

#ifdef DPTRAIN_LIBFUZZER
#define DPTRAIN_FUZZ_ENTRY(function)                                                  \
  extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) { \
    return dptrain::fuzz::function(data, size);                                       \
  }
#else
#define DPTRAIN_FUZZ_ENTRY(function)
#endif
