#pragma once
// Small files for tests: temporary folders, IDX bytes, synthetic HDF5 data
// sets in dptrain's layout, and deliberately wrong ones.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace dptrain {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

void write_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes);
void write_gzip(const std::string& path, const std::vector<std::uint8_t>& bytes);
std::vector<std::uint8_t> read_bytes(const std::string& path);

// n samples of 2x(features/2) uint8 pixels and labels in [0, classes);
// pixel values depend on the label, so a network can learn them.
struct SyntheticSplit {
  std::int64_t samples = 0;
  int features = 0;
  std::vector<std::uint8_t> pixels;
  std::vector<std::int32_t> labels;
};
SyntheticSplit make_split(std::int64_t samples, int features, int classes, std::uint64_t seed);
void write_synthetic_hdf5(const std::string& path, const SyntheticSplit& train, const SyntheticSplit& test);

// Six 2x2 training samples in a layout that is wrong in the way `variant`
// says: "int16 images", "2-D labels", "float labels", "a 2^40 label" (int64,
// sample 4), "no samples" (0 of them), or "float32 images" (valid).
void write_custom_hdf5(const std::string& path, const std::string& variant);

}  // namespace dptrain
