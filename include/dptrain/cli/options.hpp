#pragma once
// Helpers shared by the subcommands' option parsing.
#include <boost/program_options.hpp>
#include <string>

#include "dptrain/cli/commands.hpp"
#include "dptrain/train/config.hpp"

namespace dptrain::cli {

namespace po = boost::program_options;

// Parses args into vm (no notify); Boost's errors become Error naming the command.
void parse_command_line(const std::string& command, const Args& args, const po::options_description& options,
                        po::variables_map& vm, const po::positional_options_description& positional = {});

// The message of a Boost.Program_options error about `input` (the arguments
// or INI text parsed). Boost 1.74 fills placeholders such as %value% into its
// messages in a loop that never ends when the user's text holds one (found by
// fuzzing: `lr = %value%x` hung); input containing '%' gets a message built
// without what().
std::string program_options_message(const po::error& e, const std::string& input);

// Prints the usage (rank 0 only) when --help was given; returns whether it was.
bool print_help_if_asked(const std::string& usage, const po::options_description& options, const po::variables_map& vm,
                         const Communicator& comm);

// Reads a required option, with an error naming it when it is missing.
std::string required_string(const po::variables_map& vm, const std::string& name, const std::string& why);

// The training configuration that `train` arguments and an INI text (a
// --config file, a checkpoint's saved configuration) give, merged as train
// merges them: a value on the command line wins over the INI's, defaults
// fill the rest. `source` names the text in errors. For the fuzzer.
TrainConfig train_config_from(const Args& command_line, const std::string& ini, const std::string& source);

}  // namespace dptrain::cli
