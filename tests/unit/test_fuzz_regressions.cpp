// Every input in tests/fuzz/corpus/<target>/ (the seeds) and
// tests/fuzz/regressions/<target>/ (inputs that once crashed or misbehaved)
// replayed through its fuzz target: in the sanitizer build, this is where a
// regression would show as an ASan or UBSan report.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "fuzz_support.hpp"

namespace dptrain {
namespace {
namespace fs = std::filesystem;

using Target = int (*)(const std::uint8_t*, std::size_t);

int replay(const std::string& name, Target target) {
  int replayed = 0;
  for (const char* kind : {"corpus", "regressions"}) {
    const fs::path folder = fs::path(DPTRAIN_FUZZ_DIR) / kind / name;
    if (!fs::is_directory(folder)) continue;
    for (const auto& entry : fs::directory_iterator(folder)) {
      std::ifstream in(entry.path(), std::ios::binary);
      const std::vector<std::uint8_t> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
      SCOPED_TRACE(entry.path().string());
      EXPECT_EQ(target(bytes.data(), bytes.size()), 0);
      ++replayed;
    }
  }
  return replayed;
}

TEST(FuzzRegressions, Idx) { EXPECT_GT(replay("idx", fuzz::idx_input), 0); }
TEST(FuzzRegressions, Image) { EXPECT_GT(replay("image", fuzz::image_input), 0); }
TEST(FuzzRegressions, Dataset) { EXPECT_GT(replay("dataset", fuzz::dataset_input), 0); }
TEST(FuzzRegressions, Checkpoint) { EXPECT_GT(replay("checkpoint", fuzz::checkpoint_input), 0); }
TEST(FuzzRegressions, CheckpointEdits) { EXPECT_GT(replay("checkpoint_edits", fuzz::checkpoint_edits_input), 0); }
TEST(FuzzRegressions, Config) { EXPECT_GT(replay("config", fuzz::config_input), 0); }

}  // namespace
}  // namespace dptrain
