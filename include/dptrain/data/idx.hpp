#pragma once
// IDX files (the MNIST distribution format), raw or gzip-compressed:
// magic 0x00 0x00 <type> <ndims>, then ndims big-endian uint32 dimensions,
// then the data. Only type 0x08 (unsigned byte) is used by MNIST and read here.
#include <cstdint>
#include <string>
#include <vector>

namespace dptrain {

struct IdxArray {
  std::vector<std::uint32_t> dims;
  std::vector<std::uint8_t> data;  // row-major, product(dims) bytes
  std::string sha256;              // of the uncompressed file
};

// Throws Error naming the file and the problem: bad magic, unsupported type,
// data shorter or longer than the header's dimensions say, gzip corruption.
IdxArray read_idx(const std::string& path);

// The bytes of an IDX file holding `data` with these dimensions.
std::vector<std::uint8_t> encode_idx(const std::vector<std::uint32_t>& dims, const std::vector<std::uint8_t>& data);

}  // namespace dptrain
