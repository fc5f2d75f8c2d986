// `train` arguments and the INI text of `train --config FILE` and of a
// checkpoint's saved configuration, through the same parsers, merge and
// validation as the CLI.
//
// Input: INI text; when its first line starts with "#!", the rest of that
// line is the command line and the INI text follows. The line is split at
// unit separators (0x1f) if it has any, keeping empty words, so that empty
// arguments and arguments with spaces are reachable; otherwise at spaces,
// dropping empty words, so that a seed stays readable.
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
    const std::string line = ini.substr(2, end - 2);
    const bool separated = line.find('\x1f') != std::string::npos;
    std::istringstream words(line);
    for (std::string word; std::getline(words, word, separated ? '\x1f' : ' ');) {
      if (separated || !word.empty()) command_line.push_back(word);
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
