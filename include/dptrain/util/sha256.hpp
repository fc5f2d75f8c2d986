#pragma once
// SHA-256, to record and check where data came from (IDX sources, the HDF5
// data file a checkpoint was trained on).
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace dptrain {

class Sha256 {
 public:
  Sha256();
  void update(std::span<const std::uint8_t> bytes);
  std::string hex_digest();  // finishes the hash

 private:
  void compress(const std::uint8_t* block);
  std::array<std::uint32_t, 8> state_;
  std::array<std::uint8_t, 64> buffer_{};
  std::size_t buffered_ = 0;
  std::uint64_t total_bytes_ = 0;
};

// SHA-256 of a whole file, read in chunks.
std::string sha256_of_file(const std::string& path);

}  // namespace dptrain
