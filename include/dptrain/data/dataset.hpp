#pragma once
// The HDF5 data layout dptrain trains on, and each rank's shard of it.
//
//   /train/images  uint8 (scaled by 1/255) or float32 (as is), [N, ...]: the
//                  trailing dimensions multiply to the input layer's size
//   /train/labels  integers in [0, classes), [N]
//   /test/images, /test/labels  the same for the test split
#include <mpi.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "dptrain/data/idx.hpp"
#include "dptrain/data/sharding.hpp"
#include "dptrain/tensor.hpp"

namespace dptrain {

// One rank's shards of one split (ascending, file order inside each); nothing
// else is in memory.
class Shard {
 public:
  std::int64_t size() const { return static_cast<std::int64_t>(labels_.size()); }
  // The file's rows this rank holds: [first, first + count) per owned shard.
  struct Rows {
    std::int64_t first = 0;
    std::int64_t count = 0;
  };
  const std::vector<Rows>& rows() const { return rows_; }
  std::int64_t global_index(std::int64_t local) const;
  // What the read took: the bytes of the rows selected, and the bytes this
  // process read from files meanwhile (Linux's rchar), the I/O it really did.
  std::int64_t bytes_selected() const { return bytes_selected_; }
  std::int64_t bytes_read() const { return bytes_read_; }
  int features() const { return features_; }
  std::span<const std::int32_t> labels() const { return labels_; }

  // input[rows x features] = samples local_indices[0..rows), scaled to [0, 1]
  // (the uint8 -> float conversion happens here, once per batch).
  void gather(std::span<const std::uint32_t> local_indices, Matrix input, std::span<std::int32_t> labels) const;

 private:
  friend Shard read_shards(const std::string&, const std::string&, const ShardLayout&, std::span<const std::int64_t>,
                           MPI_Comm, int, int);
  int features_ = 0;
  std::vector<Rows> rows_;
  std::int64_t bytes_selected_ = 0;
  std::int64_t bytes_read_ = 0;
  std::vector<std::uint8_t> bytes_;  // uint8 files
  std::vector<float> floats_;        // float32 files
  std::vector<std::int32_t> labels_;
};

// Number of samples in split ("train" or "test"), after checking that its
// datasets exist and agree. Throws Error naming the file and dataset.
std::int64_t split_size(const std::string& path, const std::string& split);

// Reads `shards` of the layout (ascending; a rank's ShardLayout::owned):
// collective over `comm`, each rank with its own shards, through the MPI-IO
// file driver with a collective transfer, one contiguous hyperslab per shard.
// Checks types, shapes (against `inputs`) and labels (against `classes`).
Shard read_shards(const std::string& path, const std::string& split, const ShardLayout& layout,
                  std::span<const std::int64_t> shards, MPI_Comm comm, int inputs, int classes);

// Writes the layout above from MNIST's four IDX arrays, under a temporary
// name first, so that a failed conversion leaves no half-written file. The
// datasets are contiguous (not chunked): any shard is then one contiguous
// byte range of the file, whatever --shards a run picks.
struct IdxSource {
  std::string path;
  IdxArray array;
};
void write_mnist_hdf5(const std::string& out, const IdxSource& train_images, const IdxSource& train_labels,
                      const IdxSource& test_images, const IdxSource& test_labels);

}  // namespace dptrain
