// IDX headers whose dimensions multiply past 2^64: without a check the
// product wraps and can match a tiny file, so convert would trust dims that
// promise far more bytes than data holds.
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

}  // namespace
}  // namespace dptrain
