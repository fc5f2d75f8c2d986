#include "dptrain/data/dataset.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "dptrain/error.hpp"
#include "dptrain/util/hdf5.hpp"
#include "dptrain/util/text.hpp"

namespace dptrain {
namespace {

struct SplitDatasets {
  h5::Handle images;
  h5::Handle labels;
  h5::DatasetInfo image_info;
  h5::DatasetInfo label_info;
};

SplitDatasets open_split(hid_t file, const std::string& path, const std::string& split) {
  SplitDatasets s;
  const std::string images = "/" + split + "/images";
  const std::string labels = "/" + split + "/labels";
  s.images = h5::open_dataset(file, images, path);
  s.labels = h5::open_dataset(file, labels, path);
  s.image_info = h5::describe(s.images);
  s.label_info = h5::describe(s.labels);
  const h5::DatasetInfo& im = s.image_info;
  const bool is_uint8 = im.type_class == H5T_INTEGER && im.type_size == 1 && !im.is_signed;
  const bool is_float32 = im.type_class == H5T_FLOAT && im.type_size == 4;
  if (!is_uint8 && !is_float32) {
    throw Error(path + ": dataset " + images + " is " + im.type_name() + ", expected uint8 or float32");
  }
  if (im.dims.size() < 2) {
    throw Error(path + ": dataset " + images + " has shape " + im.dims_string() +
                ", expected [samples, ...] with at least 2 dimensions");
  }
  const h5::DatasetInfo& lb = s.label_info;
  if (lb.type_class != H5T_INTEGER) {
    throw Error(path + ": dataset " + labels + " is " + lb.type_name() + ", expected integers");
  }
  if (lb.dims.size() != 1 || lb.dims[0] != im.dims[0]) {
    throw Error(path + ": dataset " + labels + " has shape " + lb.dims_string() + ", expected [" +
                std::to_string(im.dims[0]) + "] to match " + images + " " + im.dims_string());
  }
  return s;
}

// Selects rank's shard: the block-cyclic slices of the full batches, then its
// part of the partial tail batch; whole samples (all trailing dimensions).
h5::Handle select_shard(hid_t dataset, const BatchSlicing& slicing, int rank) {
  h5::Handle space(H5Dget_space(dataset), H5Sclose);
  const int ndims = H5Sget_simple_extent_ndims(space);
  std::vector<hsize_t> dims(static_cast<std::size_t>(ndims));
  H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  std::vector<hsize_t> start(dims.size(), 0), stride(dims.size(), 1), count(dims.size(), 1), block = dims;
  H5Sselect_none(space);
  const auto width = static_cast<hsize_t>(slicing.width(rank));
  const auto full = static_cast<hsize_t>(slicing.full_batches());
  if (width > 0 && full > 0) {
    start[0] = static_cast<hsize_t>(slicing.offset(rank));
    stride[0] = static_cast<hsize_t>(slicing.batch());
    count[0] = full;
    block[0] = width;
    H5Sselect_hyperslab(space, H5S_SELECT_OR, start.data(), stride.data(), count.data(), block.data());
  }
  const auto tail = static_cast<hsize_t>(slicing.local_batch_size(rank, slicing.full_batches()));
  if (tail > 0) {
    start[0] = full * static_cast<hsize_t>(slicing.batch()) + static_cast<hsize_t>(slicing.offset(rank));
    stride[0] = 1;
    count[0] = 1;
    block[0] = tail;
    H5Sselect_hyperslab(space, H5S_SELECT_OR, start.data(), stride.data(), count.data(), block.data());
  }
  return space;
}

void read_selection(hid_t dataset, hid_t file_space, hid_t mem_type, void* out, std::size_t rows,
                    std::size_t row_values, const std::string& what) {
  const hsize_t total = rows * row_values;
  h5::Handle mem(H5Screate_simple(1, &total, nullptr), H5Sclose);
  if (total == 0) H5Sselect_none(mem);
  if (H5Dread(dataset, mem_type, mem, file_space, H5P_DEFAULT, out) < 0) {
    throw Error(what + ": " + h5::last_error());
  }
}

}  // namespace

void Shard::gather(std::span<const std::uint32_t> local_indices, Matrix input, std::span<std::int32_t> labels) const {
  const std::size_t n = static_cast<std::size_t>(features_);
  for (int r = 0; r < input.rows; ++r) {
    const std::size_t sample = local_indices[static_cast<std::size_t>(r)];
    float* out = input.row(r);
    if (!bytes_.empty()) {
      const std::uint8_t* in = bytes_.data() + sample * n;
      for (std::size_t c = 0; c < n; ++c) out[c] = static_cast<float>(in[c]) * (1.0f / 255.0f);
    } else {
      std::copy_n(floats_.data() + sample * n, n, out);
    }
    labels[static_cast<std::size_t>(r)] = labels_[sample];
  }
}

std::int64_t split_size(const std::string& path, const std::string& split) {
  h5::Handle file = h5::open_file(path);
  return static_cast<std::int64_t>(open_split(file, path, split).image_info.dims[0]);
}

Shard read_shard(const std::string& path, const std::string& split, const BatchSlicing& slicing, int rank, int inputs,
                 int classes) {
  h5::Handle file = h5::open_file(path);
  SplitDatasets s = open_split(file, path, split);
  const std::string images = "/" + split + "/images";
  const std::string labels = "/" + split + "/labels";
  const std::vector<hsize_t> sample_dims(s.image_info.dims.begin() + 1, s.image_info.dims.end());
  std::size_t features = 1;
  for (hsize_t d : sample_dims) features *= d;
  const std::string shape = join(sample_dims, "x");
  if (features != static_cast<std::size_t>(inputs)) {
    throw Error(path + ": samples of " + images + " have " + shape + " = " + std::to_string(features) +
                " values, but the input layer has " + std::to_string(inputs) + " (the first of --layers must be " +
                std::to_string(features) + ")");
  }
  if (static_cast<std::int64_t>(s.image_info.dims[0]) != slicing.samples()) {
    throw Error(path + ": " + images + " has " + std::to_string(s.image_info.dims[0]) + " samples, expected " +
                std::to_string(slicing.samples()));
  }

  Shard shard;
  shard.features_ = inputs;
  const auto rows = static_cast<std::size_t>(slicing.shard_size(rank));
  const std::string reading = path + ": reading " + images;
  h5::Handle image_space = select_shard(s.images, slicing, rank);
  if (s.image_info.type_class == H5T_FLOAT) {
    shard.floats_.resize(rows * features);
    read_selection(s.images, image_space, H5T_NATIVE_FLOAT, shard.floats_.data(), rows, features, reading);
    for (std::size_t i = 0; i < shard.floats_.size(); ++i) {
      if (!std::isfinite(shard.floats_[i])) {
        throw Error(path + ": " + images + " holds a value that is not finite (sample " +
                    std::to_string(slicing.global_index(rank, static_cast<std::int64_t>(i / features))) + ")");
      }
    }
  } else {
    shard.bytes_.resize(rows * features);
    read_selection(s.images, image_space, H5T_NATIVE_UINT8, shard.bytes_.data(), rows, features, reading);
  }
  shard.labels_.resize(rows);
  h5::Handle label_space = select_shard(s.labels, slicing, rank);
  read_selection(s.labels, label_space, H5T_NATIVE_INT32, shard.labels_.data(), rows, 1, path + ": reading " + labels);
  for (std::size_t i = 0; i < rows; ++i) {
    const std::int32_t label = shard.labels_[i];
    if (label < 0 || label >= classes) {
      throw Error(path + ": label " + std::to_string(label) + " of sample " +
                  std::to_string(slicing.global_index(rank, static_cast<std::int64_t>(i))) + " in " + labels +
                  " is outside [0, " + std::to_string(classes) + ") (the output layer has " + std::to_string(classes) +
                  " units)");
    }
  }
  return shard;
}

void write_mnist_hdf5(const std::string& out, const IdxSource& train_images, const IdxSource& train_labels,
                      const IdxSource& test_images, const IdxSource& test_labels) {
  auto check_pair = [](const IdxSource& images, const IdxSource& labels) {
    if (images.array.dims.size() < 2) {
      throw Error(images.path + ": images need at least 2 dimensions, the file has " +
                  std::to_string(images.array.dims.size()));
    }
    if (labels.array.dims.size() != 1) {
      throw Error(labels.path + ": labels need 1 dimension, the file has " + std::to_string(labels.array.dims.size()));
    }
    if (images.array.dims[0] != labels.array.dims[0]) {
      throw Error(images.path + " holds " + std::to_string(images.array.dims[0]) + " images but " + labels.path +
                  " holds " + std::to_string(labels.array.dims[0]) + " labels");
    }
  };
  check_pair(train_images, train_labels);
  check_pair(test_images, test_labels);

  const std::string temporary = out + ".tmp-" + std::to_string(::getpid());
  try {
    {
      h5::Handle file = h5::create_file(temporary);
      h5::write_attribute(file, "format", std::string("dptrain-data"));
      auto write_split = [&](const std::string& split, const IdxSource& images, const IdxSource& labels) {
        h5::Handle group = h5::create_group(file, "/" + split, out);
        for (const IdxSource* source : {&images, &labels}) {
          const std::string name = source == &images ? "images" : "labels";
          const std::vector<hsize_t> dims(source->array.dims.begin(), source->array.dims.end());
          h5::write_dataset(group, name, H5T_NATIVE_UINT8, H5T_STD_U8LE, dims, source->array.data.data(),
                            name == "images" ? 1024 : 65536, out);
          h5::Handle dataset = h5::open_dataset(group, name, out);
          h5::write_attribute(dataset, "source", std::filesystem::path(source->path).filename().string());
          h5::write_attribute(dataset, "source_sha256", source->array.sha256);
        }
      };
      write_split("train", train_images, train_labels);
      write_split("test", test_images, test_labels);
      h5::flush(file, out);
    }
    std::filesystem::rename(temporary, out);
  } catch (const std::exception& e) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    if (dynamic_cast<const Error*>(&e)) throw;
    throw Error(out + ": " + e.what());
  }
}

}  // namespace dptrain
