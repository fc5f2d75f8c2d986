#include "dptrain/data/idx.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>

#include "dptrain/error.hpp"
#include "dptrain/util/files.hpp"
#include "dptrain/util/sha256.hpp"
#include "dptrain/util/text.hpp"

namespace dptrain {
namespace {

constexpr std::uint8_t kUnsignedByte = 0x08;

// gzread reads plain files as they are, so one path serves raw and .gz files.
class IdxReader {
 public:
  explicit IdxReader(const std::string& path) : path_(path), file_(open_gzip(path), &gzclose) {
    if (!file_) throw Error(path + ": cannot open: " + std::strerror(errno));
  }

  // Appends up to `count` more bytes to `bytes`, fewer only at the end of the data.
  void read(std::vector<std::uint8_t>& bytes, std::size_t count) {
    while (count > 0) {
      const std::size_t at = bytes.size();
      const unsigned want = static_cast<unsigned>(std::min<std::size_t>(count, 1 << 20));
      bytes.resize(at + want);
      const int got = gzread(file_.get(), bytes.data() + at, want);
      if (got < 0) {
        int code = 0;
        const char* message = gzerror(file_.get(), &code);
        throw Error(path_ + ": corrupt or unreadable: " + (code == Z_ERRNO ? std::strerror(errno) : message));
      }
      bytes.resize(at + static_cast<std::size_t>(got));
      if (got == 0) return;
      count -= static_cast<std::size_t>(got);
    }
  }

  // The most bytes a gzipped file can inflate to: deflate's largest ratio
  // (1032:1, zlib's technical notes) times its size. Unbounded for a file read
  // as it is (its bytes arrive only as they exist), or not of a known size.
  std::uint64_t most_bytes() {
    std::error_code error;
    const std::uint64_t size = std::filesystem::file_size(path_, error);
    if (error || gzdirect(file_.get())) return std::numeric_limits<std::uint64_t>::max();
    return size * 1032;
  }

  bool at_end() {
    std::vector<std::uint8_t> one;
    read(one, 1);
    return one.empty();
  }

 private:
  // gzopen on a FIFO would block until a writer came.
  static gzFile open_gzip(const std::string& path) {
    require_regular_file(path);
    return gzopen(path.c_str(), "rb");
  }

  std::string path_;
  std::unique_ptr<gzFile_s, int (*)(gzFile)> file_;
};

}  // namespace

// The header is read first and sizes the rest: a gzip file that inflates to
// more than its header declares is refused at the first byte too many, not
// after inflating all of it into memory.
IdxArray read_idx(const std::string& path) {
  IdxReader in(path);
  std::vector<std::uint8_t> bytes;
  in.read(bytes, 4);
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
  in.read(bytes, header - 4);
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
  const std::string shape = join(array.dims, "x");
  if (expected > in.most_bytes()) {
    throw Error(path + ": truncated: header says " + shape + " = " + std::to_string(expected) +
                " bytes of data, more than its gzip stream can inflate to (at most 1032 times its size)");
  }
  in.read(bytes, expected);
  const std::size_t actual = bytes.size() - header;
  if (actual < expected) {
    throw Error(path + ": truncated: header says " + shape + " = " + std::to_string(expected) +
                " bytes of data, file has " + std::to_string(actual));
  }
  if (!in.at_end()) {
    throw Error(path + ": has trailing bytes: header says " + shape + " = " + std::to_string(expected) +
                " bytes of data, file has more");
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
