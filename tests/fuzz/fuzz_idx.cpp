// IDX files through read_idx: the input is written as it is, so a gzip
// stream goes through zlib and anything else is read raw.
#include <unistd.h>

#include "dptrain/data/idx.hpp"
#include "dptrain/error.hpp"
#include "fuzz_support.hpp"

namespace dptrain::fuzz {

int idx_input(const std::uint8_t* data, std::size_t size) {
  const std::string path = write_input_file(data, size, ".idx");
  try {
    const IdxArray array = read_idx(path);
    std::size_t elements = 1;
    for (std::uint32_t d : array.dims) elements *= d;
    if (elements != array.data.size()) __builtin_trap();  // the header's promise, relied on by convert
  } catch (const Error&) {
  }
  ::unlink(path.c_str());
  return 0;
}

}  // namespace dptrain::fuzz

DPTRAIN_FUZZ_ENTRY(idx_input)
