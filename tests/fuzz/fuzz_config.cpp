// `train` arguments and the INI text of `train --config FILE` and of a
// checkpoint's saved configuration, through the same parsers, merge and
// validation as the CLI.
//
// Input: INI text; when its first line starts with "#!", the rest of that
// line is the command line (split at spaces) and the INI text follows.
#include <sstream>
#include <string>
#include <vector>

#include "dptrain/cli/options.hpp"
#include "dptrain/error.hpp"
#include "fuzz_support.hpp"

namespace dptrain::fuzz {

int config_input(const std::uint8_t* data, std::size_t size) {
  std::string ini(reinterpret_cast<const char*>(data), size);
  cli::Args command_line;
  if (ini.starts_with("#!")) {
    const std::size_t end = std::min(ini.find('\n'), ini.size());
    std::istringstream words(ini.substr(2, end - 2));
    for (std::string word; std::getline(words, word, ' ');) {
      if (!word.empty()) command_line.push_back(word);
    }
    ini.erase(0, end);
  }
  try {
    const TrainConfig config = cli::train_config_from(command_line, ini, "fuzz.ini");
    // A configuration that parsed must build its network's layout (not its weights: the size is capped elsewhere).
    config.arch.validate();
  } catch (const Error&) {
  }
  return 0;
}

}  // namespace dptrain::fuzz

DPTRAIN_FUZZ_ENTRY(config_input)
