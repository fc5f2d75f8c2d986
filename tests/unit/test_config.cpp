// The merge of `train` arguments with an INI text (a --config file or a
// checkpoint's saved configuration), as train does it.
#include <gtest/gtest.h>

#include <filesystem>

#include "dptrain/cli/options.hpp"
#include "dptrain/error.hpp"

namespace dptrain {

TEST(Config, TheCommandLineWinsOverTheIniAndTheIniOverTheDefaults) {
  const TrainConfig config = cli::train_config_from({"--lr", "0.5", "--layers", "784,32,10"},
                                                    "lr = 3\ndata = d.h5\nbatch-size = 20\n", "c.ini");
  EXPECT_EQ(config.optimizer.lr, 0.5);
  EXPECT_EQ(config.arch.layers, (std::vector<int>{784, 32, 10}));
  EXPECT_EQ(config.data, std::filesystem::absolute("d.h5").string());  // paths are made absolute
  EXPECT_EQ(config.batch_size, 20);
  EXPECT_EQ(config.epochs, TrainConfig{}.epochs);
}

TEST(Config, ErrorsNameWhereTheValueCameFrom) {
  try {
    cli::train_config_from({"--batch-size", "x"}, "", "c.ini");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("dptrain train: "), std::string::npos) << e.what();
  }
  try {
    cli::train_config_from({}, "batch-size = x\n", "c.ini");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("c.ini: ", 0), 0u) << e.what();
  }
}

}  // namespace dptrain
