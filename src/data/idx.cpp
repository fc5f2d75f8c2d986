#include "dptrain/data/idx.hpp"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "dptrain/error.hpp"
#include "dptrain/util/sha256.hpp"
#include "dptrain/util/text.hpp"

namespace dptrain {
namespace {

constexpr std::uint8_t kUnsignedByte = 0x08;

// gzread reads plain files as they are, so one path serves raw and .gz files.
std::vector<std::uint8_t> read_all(const std::string& path) {
  std::unique_ptr<gzFile_s, int (*)(gzFile)> file(gzopen(path.c_str(), "rb"), &gzclose);
  if (!file) throw Error(path + ": cannot open: " + std::strerror(errno));
  std::vector<std::uint8_t> bytes;
  std::vector<std::uint8_t> chunk(1 << 16);
  while (true) {
    const int got = gzread(file.get(), chunk.data(), static_cast<unsigned>(chunk.size()));
    if (got < 0) {
      int code = 0;
      const char* message = gzerror(file.get(), &code);
      throw Error(path + ": corrupt or unreadable: " + (code == Z_ERRNO ? std::strerror(errno) : message));
    }
    if (got == 0) break;
    bytes.insert(bytes.end(), chunk.begin(), chunk.begin() + got);
  }
  return bytes;
}

}  // namespace

IdxArray read_idx(const std::string& path) {
  const std::vector<std::uint8_t> bytes = read_all(path);
  if (bytes.size() < 4 || bytes[0] != 0 || bytes[1] != 0) {
    throw Error(path + ": not an IDX file (bad magic number; expected 00 00 <type> <ndims>)");
  }
  if (bytes[2] != kUnsignedByte) {
    char type[8];
    std::snprintf(type, sizeof type, "0x%02X", bytes[2]);
    throw Error(path + ": IDX element type " + type + " is not supported (expected 0x08, unsigned byte)");
  }
  const std::size_t ndims = bytes[3];
  const std::size_t header = 4 + 4 * ndims;
  if (ndims == 0 || bytes.size() < header) {
    throw Error(path + ": truncated IDX header (" + std::to_string(ndims) + " dimensions declared, " +
                std::to_string(bytes.size()) + " bytes in the file)");
  }
  IdxArray array;
  std::size_t expected = 1;
  for (std::size_t i = 0; i < ndims; ++i) {
    const std::uint8_t* p = bytes.data() + 4 + 4 * i;
    const std::uint32_t dim =
        (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
    array.dims.push_back(dim);
    // A product that wraps around could equal the file's length by accident.
    if (__builtin_mul_overflow(expected, std::size_t{dim}, &expected)) {
      throw Error(path + ": IDX header's dimensions " + join(array.dims, "x") + "... multiply to more than 2^64 bytes");
    }
  }
  const std::size_t actual = bytes.size() - header;
  if (actual != expected) {
    const std::string shape = join(array.dims, "x");
    throw Error(path + ": " + (actual < expected ? "truncated" : "has trailing bytes") + ": header says " + shape +
                " = " + std::to_string(expected) + " bytes of data, file has " + std::to_string(actual));
  }
  Sha256 hash;
  hash.update(bytes);
  array.sha256 = hash.hex_digest();
  array.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end());
  return array;
}

std::vector<std::uint8_t> encode_idx(const std::vector<std::uint32_t>& dims, const std::vector<std::uint8_t>& data) {
  std::vector<std::uint8_t> bytes = {0, 0, kUnsignedByte, static_cast<std::uint8_t>(dims.size())};
  for (std::uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<std::uint8_t>(d >> shift));
  }
  bytes.insert(bytes.end(), data.begin(), data.end());
  return bytes;
}

}  // namespace dptrain
