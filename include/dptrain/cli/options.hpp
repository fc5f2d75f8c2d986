#pragma once
// Helpers shared by the subcommands' option parsing.
#include <boost/program_options.hpp>
#include <string>

#include "dptrain/cli/commands.hpp"

namespace dptrain::cli {

namespace po = boost::program_options;

// Parses args into vm (no notify); Boost's errors become Error naming the command.
void parse_command_line(const std::string& command, const Args& args, const po::options_description& options,
                        po::variables_map& vm, const po::positional_options_description& positional = {});

// Prints the usage (rank 0 only) when --help was given; returns whether it was.
bool print_help_if_asked(const std::string& usage, const po::options_description& options, const po::variables_map& vm,
                         const Communicator& comm);

// Reads a required option, with an error naming it when it is missing.
std::string required_string(const po::variables_map& vm, const std::string& name, const std::string& why);

}  // namespace dptrain::cli
