#pragma once
// The HDF5 data layout dptrain trains on, and each rank's shard of it.
//
//   /train/images  uint8 (scaled by 1/255) or float32 (as is), [N, ...]: the
//                  trailing dimensions multiply to the input layer's size
//   /train/labels  integers in [0, classes), [N]
//   /test/images, /test/labels  the same for the test split
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "dptrain/data/idx.hpp"
#include "dptrain/data/sharding.hpp"
#include "dptrain/tensor.hpp"

namespace dptrain {

// One rank's samples of one split, in file order; nothing else is in memory.
class Shard {
 public:
  std::int64_t size() const { return static_cast<std::int64_t>(labels_.size()); }
  int features() const { return features_; }
  std::span<const std::int32_t> labels() const { return labels_; }

  // input[rows x features] = samples local_indices[0..rows), scaled to [0, 1]
  // (the uint8 -> float conversion happens here, once per batch).
  void gather(std::span<const std::uint32_t> local_indices, Matrix input, std::span<std::int32_t> labels) const;

 private:
  friend Shard read_shard(const std::string&, const std::string&, const BatchSlicing&, int, int, int);
  int features_ = 0;
  std::vector<std::uint8_t> bytes_;  // uint8 files
  std::vector<float> floats_;        // float32 files
  std::vector<std::int32_t> labels_;
};

// Number of samples in split ("train" or "test"), after checking that its
// datasets exist and agree. Throws Error naming the file and dataset.
std::int64_t split_size(const std::string& path, const std::string& split);

// Reads rank's shard of the split with one hyperslab selection per dataset,
// checking types, shapes (against `inputs`) and labels (against `classes`).
Shard read_shard(const std::string& path, const std::string& split, const BatchSlicing& slicing, int rank, int inputs,
                 int classes);

// Writes the layout above from MNIST's four IDX arrays, under a temporary
// name first, so that a failed conversion leaves no half-written file.
struct IdxSource {
  std::string path;
  IdxArray array;
};
void write_mnist_hdf5(const std::string& out, const IdxSource& train_images, const IdxSource& train_labels,
                      const IdxSource& test_images, const IdxSource& test_labels);

}  // namespace dptrain
