// Checkpoints edited through the HDF5 API, as h5py or a script would edit
// them, then read as fuzz_checkpoint reads them. Byte mutations of a whole
// checkpoint mostly die at HDF5's metadata checksums (H5Fopen refuses the
// file); here the input is a program of edits to a valid checkpoint, so that
// every attribute and dataset check of read_checkpoint is reached with
// values that HDF5 accepts: any number, string, shape or type in any field.
//
// Input: a sequence of edits, each [op][field][payload...], until the bytes
// run out (a truncated payload reads as zeros).
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "dptrain/error.hpp"
#include "dptrain/io/checkpoint.hpp"
#include "dptrain/train/config.hpp"
#include "dptrain/util/hdf5.hpp"
#include "fuzz_support.hpp"

namespace dptrain::fuzz {
namespace {

struct Field {
  const char* group;
  const char* attribute;
};

// Every attribute write_checkpoint writes (and one it never writes).
constexpr Field kAttributes[] = {
    {"/", "config"},
    {"/model", "format"},
    {"/model", "format_version"},
    {"/model", "layers"},
    {"/model", "activation"},
    {"/model", "output"},
    {"/model", "loss"},
    {"/optimizer", "type"},
    {"/optimizer", "lr"},
    {"/optimizer", "momentum"},
    {"/optimizer", "weight_decay"},
    {"/optimizer", "nesterov"},
    {"/optimizer", "lr_schedule"},
    {"/optimizer", "warmup_epochs"},
    {"/optimizer", "lr_step_epochs"},
    {"/optimizer", "lr_gamma"},
    {"/progress", "epochs_done"},
    {"/progress", "step_in_epoch"},
    {"/progress", "global_step"},
    {"/progress", "world_size"},
    {"/progress", "batch_size"},
    {"/progress", "shards"},
    {"/progress", "seed"},
    {"/progress", "shuffle"},
    {"/progress", "data_file"},
    {"/progress", "data_sha256"},
    {"/progress", "epoch_loss_sum"},
    {"/progress", "epoch_seconds"},
    {"/progress", "unknown"},
};

constexpr const char* kDatasets[] = {
    "/model/layer_0/weight",     "/model/layer_0/bias",       "/model/layer_1/weight",
    "/model/layer_1/bias",       "/optimizer/layer_0/weight", "/optimizer/layer_0/bias",
    "/optimizer/layer_1/weight", "/optimizer/layer_1/bias",   "/model/layer_2/weight",
};

class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool done() const { return at_ >= size_; }
  std::uint8_t byte() { return at_ < size_ ? data_[at_++] : 0; }
  template <typename T>
  T value() {
    unsigned char bytes[sizeof(T)] = {};
    for (unsigned char& b : bytes) b = byte();
    T v;
    std::memcpy(&v, bytes, sizeof v);
    return v;
  }
  std::string text() {
    std::string s(byte() % 80, '\0');
    for (char& c : s) c = static_cast<char>(byte());
    return s;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t at_ = 0;
};

// A valid checkpoint of a 6-4-3 network with momentum, written once.
const std::vector<std::uint8_t>& base_checkpoint() {
  static const std::vector<std::uint8_t> bytes = [] {
    const std::string path = write_input_file(nullptr, 0, "-base.h5");
    std::filesystem::remove(path);
    ExampleCheckpoint().write(path);
    std::FILE* file = std::fopen(path.c_str(), "rb");
    std::vector<std::uint8_t> contents;
    for (int c; file != nullptr && (c = std::fgetc(file)) != EOF;) contents.push_back(static_cast<std::uint8_t>(c));
    if (file != nullptr) std::fclose(file);
    std::filesystem::remove(path);
    return contents;
  }();
  return bytes;
}

void replace_attribute(hid_t file, const Field& field, Input& in, int op) {
  h5::Handle object(H5Oopen(file, field.group, H5P_DEFAULT), H5Oclose);
  if (object.get() < 0) return;
  switch (op) {
    case 0:
      h5::write_attribute(object, field.attribute, in.value<std::int64_t>());
      break;
    case 1:
      h5::write_attribute(object, field.attribute, in.value<double>());
      break;
    case 2:
      h5::write_attribute(object, field.attribute, in.text());
      break;
    case 3: {
      std::vector<std::int64_t> values(in.byte() % 6);
      for (std::int64_t& v : values) v = in.byte() % 2 ? in.value<std::int64_t>() : in.byte();  // small or any
      h5::write_attribute(object, field.attribute, values);
      break;
    }
    default:
      if (H5Aexists(object, field.attribute) > 0) H5Adelete(object, field.attribute);
  }
}

void replace_dataset(hid_t file, const char* name, Input& in, int op) {
  if (H5Lexists(file, name, H5P_DEFAULT) > 0) H5Ldelete(file, name, H5P_DEFAULT);
  if (op == 6) return;  // deleted
  // A shape of up to 3 dimensions of up to 16, values from the input:
  // float32 (NaN and infinities included), or another type (op 7).
  std::vector<hsize_t> dims(1 + in.byte() % 3);
  hsize_t count = 1;
  for (hsize_t& d : dims) count *= (d = in.byte() % 17);
  std::vector<float> values(count);
  for (float& v : values) v = in.value<float>();
  const bool float32 = op == 5;
  std::vector<double> wide(values.begin(), values.end());
  try {
    if (float32) {
      h5::write_dataset(file, name, H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, dims, values.data(), 0, "edit");
    } else {
      h5::write_dataset(file, name, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, dims, wide.data(), 0, "edit");
    }
  } catch (const Error&) {
    // HDF5 refused the edit (a missing group): the file stays as it was.
  }
}

}  // namespace

int checkpoint_edits_input(const std::uint8_t* data, std::size_t size) {
  h5::silence_automatic_error_printing();
  const Hdf5Handles before = Hdf5Handles::now();
  const std::vector<std::uint8_t>& base = base_checkpoint();
  const std::string path = write_input_file(base.data(), base.size(), "-edits.h5");
  {
    // New object headers in the 1.10 format, as write_checkpoint makes them:
    // the reader refuses older ones before HDF5 parses them.
    h5::Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_LATEST);
    h5::Handle file(H5Fopen(path.c_str(), H5F_ACC_RDWR, fapl), H5Fclose);
    if (file.get() < 0) __builtin_trap();  // the base checkpoint must open
    Input in(data, size);
    for (int edits = 0; !in.done() && edits < 16; ++edits) {
      const int op = in.byte() % 8;
      const std::uint8_t field = in.byte();
      try {
        if (op < 5) {
          replace_attribute(file, kAttributes[field % std::size(kAttributes)], in, op);
        } else {
          replace_dataset(file, kDatasets[field % std::size(kDatasets)], in, op);
        }
      } catch (const Error&) {
      }
    }
  }
  try {
    const Checkpoint checkpoint = read_checkpoint(path);
    Mlp model(checkpoint.arch);
    load_parameters(checkpoint, model, path);
    for (float v : model.params()) {
      if (!std::isfinite(v)) __builtin_trap();  // a non-finite parameter was accepted
    }
  } catch (const Error&) {
    if (size == 0) __builtin_trap();  // the unedited base must read, or every edit tests one early error
  }
  require_no_hdf5_handles_left(before, "read_checkpoint");
  ::unlink(path.c_str());
  return 0;
}

}  // namespace dptrain::fuzz

DPTRAIN_FUZZ_ENTRY(checkpoint_edits_input)
