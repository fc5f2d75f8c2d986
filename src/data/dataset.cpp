#include "dptrain/data/dataset.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <new>

#include "dptrain/error.hpp"
#include "dptrain/util/hdf5.hpp"
#include "dptrain/util/prefetch.hpp"
#include "dptrain/util/text.hpp"

namespace dptrain {
namespace {

struct SplitDatasets {
  h5::Handle images;
  h5::Handle labels;
  h5::DatasetInfo image_info;
  h5::DatasetInfo label_info;
};

// An uncompressed dataset must store at least its values' bytes (exactly, when
// contiguous; whole chunks cover more). Less means chunks or a contiguous
// block that were never written: HDF5 would hand out fill values as samples,
// and the header alone would size this rank's shard. A compressed one's size
// says nothing about its values; its reads are bounded by the allocation.
void check_stored(hid_t dataset, const h5::DatasetInfo& info, const std::string& path, const std::string& name) {
  std::uint64_t values = 1;
  for (hsize_t d : info.dims) {
    if (__builtin_mul_overflow(values, d, &values)) {
      throw Error(path + ": dataset " + name + " has shape " + info.dims_string() +
                  ", whose number of values overflows 64 bits (a damaged or crafted header)");
    }
  }
  h5::Handle create(H5Dget_create_plist(dataset), H5Pclose);
  const int filters = create.get() < 0 ? -1 : H5Pget_nfilters(create);
  if (filters < 0) throw Error(path + ": dataset " + name + ": cannot read its filters: " + h5::last_error());
  if (filters > 0) return;
  const hsize_t stored = H5Dget_storage_size(dataset);
  if (stored / info.type_size < values) {
    throw Error(path + ": dataset " + name + " " + info.dims_string() + " stores " + std::to_string(stored) +
                " bytes, expected at least " + std::to_string(values * info.type_size) +
                " (its values were never written, or the file is damaged)");
  }
}

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
  if (im.dims[0] == 0) throw Error(path + ": dataset " + images + " holds no samples, expected at least 1");
  const h5::DatasetInfo& lb = s.label_info;
  if (lb.type_class != H5T_INTEGER) {
    throw Error(path + ": dataset " + labels + " is " + lb.type_name() + ", expected integers");
  }
  if (lb.dims.size() != 1 || lb.dims[0] != im.dims[0]) {
    throw Error(path + ": dataset " + labels + " has shape " + lb.dims_string() + ", expected [" +
                std::to_string(im.dims[0]) + "] to match " + images + " " + im.dims_string());
  }
  check_stored(s.images, im, path, images);
  check_stored(s.labels, lb, path, labels);
  return s;
}

// Selects the rows of `shards` (ascending): one contiguous hyperslab each,
// whole samples (all trailing dimensions).
h5::Handle select_rows(hid_t dataset, const std::vector<Shard::Rows>& shards, const std::string& what) {
  h5::Handle space(H5Dget_space(dataset), H5Sclose);
  if (space.get() < 0) throw Error(what + ": " + h5::last_error());
  const int ndims = H5Sget_simple_extent_ndims(space);
  if (ndims < 1) throw Error(what + ": " + h5::last_error());
  std::vector<hsize_t> dims(static_cast<std::size_t>(ndims));
  if (H5Sget_simple_extent_dims(space, dims.data(), nullptr) < 0 || H5Sselect_none(space) < 0) {
    throw Error(what + ": " + h5::last_error());
  }
  std::vector<hsize_t> start(dims.size(), 0), count = dims;
  for (const Shard::Rows& rows : shards) {
    if (rows.count == 0) continue;
    start[0] = static_cast<hsize_t>(rows.first);
    count[0] = static_cast<hsize_t>(rows.count);
    if (H5Sselect_hyperslab(space, H5S_SELECT_OR, start.data(), nullptr, count.data(), nullptr) < 0) {
      throw Error(what + ": " + h5::last_error());
    }
  }
  return space;
}

// A collective read (every rank calls it, each with its own selection) whose
// I/O each rank does for itself: MPI-IO's two-phase "collective buffering"
// would have aggregator ranks read other ranks' rows and send them on, and a
// rank's shards are already contiguous byte ranges, so there is nothing to
// merge. Each rank thus reads exactly its rows from the file.
h5::Handle collective_transfer(const std::string& what) {
  h5::Handle xfer(H5Pcreate(H5P_DATASET_XFER), H5Pclose);
  if (xfer.get() < 0 || H5Pset_dxpl_mpio(xfer, H5FD_MPIO_COLLECTIVE) < 0 ||
      H5Pset_dxpl_mpio_collective_opt(xfer, H5FD_MPIO_INDIVIDUAL_IO) < 0) {
    throw Error(what + ": " + h5::last_error());
  }
  return xfer;
}

void read_selection(hid_t dataset, hid_t file_space, hid_t mem_type, hid_t xfer, void* out, std::size_t rows,
                    std::size_t row_values, const std::string& what) {
  const hsize_t total = rows * row_values;
  h5::Handle mem(H5Screate_simple(1, &total, nullptr), H5Sclose);
  if (mem.get() < 0 || (total == 0 && H5Sselect_none(mem) < 0)) throw Error(what + ": " + h5::last_error());
  if (H5Dread(dataset, mem_type, mem, file_space, xfer, out) < 0) throw Error(what + ": " + h5::last_error());
}

// Bytes this process has read through read(2) and friends so far (Linux's
// rchar): what the file system was asked for, whoever asked.
std::int64_t process_bytes_read() {
  std::ifstream io("/proc/self/io");
  std::string key;
  std::int64_t value = 0;
  while (io >> key >> value) {
    if (key == "rchar:") return value;
  }
  return 0;
}

}  // namespace

void Shard::gather(std::span<const std::uint32_t> local_indices, Matrix input, std::span<std::int32_t> labels) const {
  const std::size_t n = static_cast<std::size_t>(features_);
  // The rows are random samples of a shard larger than the caches: each one
  // would cost a memory latency (its first lines, before the hardware
  // prefetcher sees a stream, and its label), unless asked for rows ahead.
  constexpr int kRowsAhead = 4;
  const auto prefetch_row = [&](int r) {
    if (r >= input.rows) return;
    const std::size_t sample = local_indices[static_cast<std::size_t>(r)];
    if (!bytes_.empty())
      prefetch_for_reading(bytes_.data() + sample * n, n);
    else
      prefetch_for_reading(floats_.data() + sample * n, n * sizeof(float));
    prefetch_for_reading(labels_.data() + sample, 1);
  };
  for (int r = 0; r < kRowsAhead; ++r) prefetch_row(r);
  for (int r = 0; r < input.rows; ++r) {
    prefetch_row(r + kRowsAhead);
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

std::int64_t Shard::global_index(std::int64_t local) const {
  for (const Rows& r : rows_) {
    if (local < r.count) return r.first + local;
    local -= r.count;
  }
  return -1;
}

Shard read_shards(const std::string& path, const std::string& split, const ShardLayout& layout,
                  std::span<const std::int64_t> shards, MPI_Comm comm, int inputs, int classes) {
  const std::int64_t read_before = process_bytes_read();
  Shard shard;
  std::size_t features = 0;
  const std::string images = "/" + split + "/images";
  const std::string labels = "/" + split + "/labels";
  // Labels are read as 64-bit, whatever their stored width, so that a value
  // out of int32's range is reported as it is, not clipped by HDF5.
  std::vector<std::int64_t> labels_read;
  // The file's MPI-IO driver refuses to close while datasets are open: the
  // handles of this block close first. The values read are checked after it,
  // so that a bad value on one rank does not skip that rank's collective close.
  {
    h5::Handle file = h5::open_file_parallel(path, comm);
    SplitDatasets s = open_split(file, path, split);
    const std::vector<hsize_t> sample_dims(s.image_info.dims.begin() + 1, s.image_info.dims.end());
    const std::string shape = join(sample_dims, "x");
    features = 1;  // open_split checked that the whole shape's product fits in 64 bits
    for (hsize_t d : sample_dims) features *= d;
    if (features != static_cast<std::size_t>(inputs)) {
      throw Error(path + ": samples of " + images + " have " + shape + " = " + std::to_string(features) +
                  " values, but the input layer has " + std::to_string(inputs) + " (the first of --layers must be " +
                  std::to_string(features) + ")");
    }
    if (static_cast<std::int64_t>(s.image_info.dims[0]) != layout.samples()) {
      throw Error(path + ": " + images + " has " + std::to_string(s.image_info.dims[0]) + " samples, expected " +
                  std::to_string(layout.samples()));
    }

    shard.features_ = inputs;
    for (std::int64_t owned : shards) shard.rows_.push_back({layout.first(owned), layout.size(owned)});
    std::size_t rows = 0;
    for (const Shard::Rows& r : shard.rows_) rows += static_cast<std::size_t>(r.count);
    const std::string reading = path + ": reading " + images;
    const h5::Handle xfer = collective_transfer(reading);
    h5::Handle image_space = select_rows(s.images, shard.rows_, reading);
    const bool float_images = s.image_info.type_class == H5T_FLOAT;
    try {
      if (float_images) {
        shard.floats_.resize(rows * features);
      } else {
        shard.bytes_.resize(rows * features);
      }
      shard.labels_.resize(rows);
      labels_read.resize(rows);
    } catch (const std::bad_alloc&) {
      throw Error(path + ": this rank's shard of /" + split + " (" + std::to_string(rows) + " of " +
                  std::to_string(s.image_info.dims[0]) + " samples of " + std::to_string(features) + " " +
                  s.image_info.type_name() + " values) does not fit in memory: use more ranks, or check the file");
    }
    if (float_images) {
      read_selection(s.images, image_space, H5T_NATIVE_FLOAT, xfer, shard.floats_.data(), rows, features, reading);
    } else {
      read_selection(s.images, image_space, H5T_NATIVE_UINT8, xfer, shard.bytes_.data(), rows, features, reading);
    }
    const std::string reading_labels = path + ": reading " + labels;
    h5::Handle label_space = select_rows(s.labels, shard.rows_, reading_labels);
    read_selection(s.labels, label_space, H5T_NATIVE_INT64, xfer, labels_read.data(), rows, 1, reading_labels);
    shard.bytes_selected_ =
        static_cast<std::int64_t>(rows * (features * s.image_info.type_size + s.label_info.type_size));
  }
  shard.bytes_read_ = process_bytes_read() - read_before;

  for (std::size_t i = 0; i < shard.floats_.size(); ++i) {
    if (!std::isfinite(shard.floats_[i])) {
      throw Error(path + ": " + images + " holds a value that is not finite (sample " +
                  std::to_string(shard.global_index(static_cast<std::int64_t>(i / features))) + ")");
    }
  }
  for (std::size_t i = 0; i < labels_read.size(); ++i) {
    const std::int64_t label = labels_read[i];
    if (label < 0 || label >= classes) {
      throw Error(path + ": label " + std::to_string(label) + " of sample " +
                  std::to_string(shard.global_index(static_cast<std::int64_t>(i))) + " in " + labels +
                  " is outside [0, " + std::to_string(classes) + ") (the output layer has " + std::to_string(classes) +
                  " units)");
    }
    shard.labels_[i] = static_cast<std::int32_t>(label);
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
          h5::write_dataset(group, name, H5T_NATIVE_UINT8, H5T_STD_U8LE, dims, source->array.data.data(), 0, out);
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
