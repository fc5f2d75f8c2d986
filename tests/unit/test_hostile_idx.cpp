// IDX headers that lie about the data's size: dimensions whose product wraps
// past 2^64 (it could match a tiny file), gzip streams that inflate to more
// than the header declares, or declare more than the stream could hold.
#include <gtest/gtest.h>

#include "dptrain/data/idx.hpp"
#include "dptrain/error.hpp"
#include "test_files.hpp"

namespace dptrain {
namespace {

TEST(HostileIdx, DimensionsThatOverflowAreRefused) {
  TempDir dir;
  // 2^24 * 2^24 * 2^16 = 2^64 wraps to 0, which the 0 bytes of data would "match".
  write_bytes(dir / "wrap.idx", {0, 0, 8, 3, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0});
  try {
    read_idx(dir / "wrap.idx");
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("wrap.idx: IDX header's dimensions 16777216x16777216x65536"),
              std::string::npos)
        << e.what();
  }
}

std::string idx_error(const std::string& path) {
  try {
    read_idx(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

// A gzip bomb: 64 MiB of zeros (about 64 KB gzipped) behind a header that
// declares 2 bytes. The reader stops at the first byte past the declared
// data instead of inflating all of it into memory first.
TEST(HostileIdx, AGzipStreamLongerThanItsHeaderIsRefusedAtTheFirstExtraByte) {
  TempDir dir;
  std::vector<std::uint8_t> bomb(8 + (std::size_t{64} << 20), 0);
  bomb[2] = 8;  // unsigned bytes
  bomb[3] = 1;  // one dimension
  bomb[7] = 2;  // of 2
  write_gzip(dir / "bomb.idx.gz", bomb);
  EXPECT_NE(idx_error(dir / "bomb.idx.gz")
                .find("bomb.idx.gz: has trailing bytes: header says 2 = 2 bytes of data, "
                      "file has more"),
            std::string::npos);
}

// A header that declares more than the gzip stream could inflate to is
// refused before anything is read for it.
TEST(HostileIdx, AHeaderLargerThanItsGzipStreamCanHoldIsRefused) {
  TempDir dir;
  write_gzip(dir / "liar.idx.gz", {0, 0, 8, 2, 0, 1, 0, 0, 0, 1, 0, 0, 7});  // 65536 x 65536 bytes declared
  EXPECT_NE(idx_error(dir / "liar.idx.gz")
                .find("liar.idx.gz: truncated: header says 65536x65536 = 4294967296 bytes "
                      "of data, more than its gzip stream can inflate to"),
            std::string::npos)
      << idx_error(dir / "liar.idx.gz");
}

}  // namespace
}  // namespace dptrain
