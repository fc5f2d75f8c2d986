// The INI text of `train --config FILE` and of a checkpoint's saved
// configuration, through the same parser and validation as the CLI.
#include "dptrain/cli/options.hpp"
#include "dptrain/error.hpp"
#include "fuzz_support.hpp"

namespace dptrain::fuzz {

int config_input(const std::uint8_t* data, std::size_t size) {
  try {
    const TrainConfig config =
        cli::train_config_from_ini(std::string(reinterpret_cast<const char*>(data), size), "fuzz.ini");
    // A configuration that parsed must build its network's layout (not its weights: the size is capped elsewhere).
    config.arch.validate();
  } catch (const Error&) {
  }
  return 0;
}

}  // namespace dptrain::fuzz

DPTRAIN_FUZZ_ENTRY(config_input)
