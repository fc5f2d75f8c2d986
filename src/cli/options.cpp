#include "dptrain/cli/options.hpp"

#include <iostream>

#include "dptrain/error.hpp"

namespace dptrain::cli {

void parse_command_line(const std::string& command, const Args& args, const po::options_description& options,
                        po::variables_map& vm, const po::positional_options_description& positional) {
  try {
    po::store(po::command_line_parser(args).options(options).positional(positional).run(), vm);
  } catch (const po::error& e) {
    throw Error("dptrain " + command + ": " + e.what() + " (see dptrain " + command + " --help)");
  }
}

bool print_help_if_asked(const std::string& usage, const po::options_description& options, const po::variables_map& vm,
                         const Communicator& comm) {
  if (!vm.count("help")) return false;
  if (comm.is_root()) std::cout << usage << "\n\n" << options << std::flush;
  return true;
}

std::string required_string(const po::variables_map& vm, const std::string& name, const std::string& why) {
  if (!vm.count(name) || vm[name].as<std::string>().empty()) throw Error("--" + name + " is required: " + why);
  return vm[name].as<std::string>();
}

}  // namespace dptrain::cli
