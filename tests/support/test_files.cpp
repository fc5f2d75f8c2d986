#include "test_files.hpp"

#include <unistd.h>
#include <zlib.h>

#include <fstream>
#include <iterator>
#include <stdexcept>

#include "dptrain/data/dataset.hpp"
#include "dptrain/util/hdf5.hpp"
#include "dptrain/util/random.hpp"

namespace dptrain {

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "dptrain-test-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

void write_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

void write_gzip(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(file);
}

std::vector<std::uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

SyntheticSplit make_split(std::int64_t samples, int features, int classes, std::uint64_t seed) {
  SyntheticSplit s;
  s.samples = samples;
  s.features = features;
  Rng rng(seed, 1234);
  for (std::int64_t i = 0; i < samples; ++i) {
    const auto label = static_cast<std::int32_t>(rng.below(static_cast<std::uint64_t>(classes)));
    s.labels.push_back(label);
    for (int f = 0; f < features; ++f) {
      const bool lit = f % classes == label;
      s.pixels.push_back(static_cast<std::uint8_t>((lit ? 160 : 0) + rng.below(90)));
    }
  }
  return s;
}

void write_synthetic_hdf5(const std::string& path, const SyntheticSplit& train, const SyntheticSplit& test) {
  auto source = [](const SyntheticSplit& s, bool images) {
    IdxSource src;
    src.path = images ? "images" : "labels";
    if (images) {
      src.array.dims = {static_cast<std::uint32_t>(s.samples), 2, static_cast<std::uint32_t>(s.features / 2)};
      src.array.data = s.pixels;
    } else {
      src.array.dims = {static_cast<std::uint32_t>(s.samples)};
      src.array.data.assign(s.labels.begin(), s.labels.end());
    }
    return src;
  };
  write_mnist_hdf5(path, source(train, true), source(train, false), source(test, true), source(test, false));
}

void write_custom_hdf5(const std::string& path, const std::string& variant) {
  h5::Handle file = h5::create_file(path);
  h5::Handle group = h5::create_group(file, "/train", path);
  std::vector<float> floats(24);
  for (std::size_t i = 0; i < floats.size(); ++i) floats[i] = static_cast<float>(i) + 0.5f;
  std::vector<std::int16_t> shorts(24, 1);
  std::vector<std::uint8_t> labels = {0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2};
  std::vector<std::int64_t> wide_labels(labels.begin(), labels.begin() + 6);
  wide_labels[4] = std::int64_t{1} << 40;
  if (variant == "no samples") {
    h5::write_dataset(group, "images", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, {0, 2, 2}, floats.data(), 0, path);
    h5::write_dataset(group, "labels", H5T_NATIVE_UINT8, H5T_STD_U8LE, {0}, labels.data(), 0, path);
    return;
  }
  if (variant == "int16 images") {
    h5::write_dataset(group, "images", H5T_NATIVE_INT16, H5T_STD_I16LE, {6, 2, 2}, shorts.data(), 0, path);
  } else {
    h5::write_dataset(group, "images", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, {6, 2, 2}, floats.data(), 0, path);
  }
  if (variant == "2-D labels") {
    h5::write_dataset(group, "labels", H5T_NATIVE_UINT8, H5T_STD_U8LE, {6, 2}, labels.data(), 0, path);
  } else if (variant == "a 2^40 label") {
    h5::write_dataset(group, "labels", H5T_NATIVE_INT64, H5T_STD_I64LE, {6}, wide_labels.data(), 0, path);
  } else if (variant == "float labels") {
    h5::write_dataset(group, "labels", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, {6}, floats.data(), 0, path);
  } else {
    h5::write_dataset(group, "labels", H5T_NATIVE_UINT8, H5T_STD_U8LE, {6}, labels.data(), 0, path);
  }
}

}  // namespace dptrain
