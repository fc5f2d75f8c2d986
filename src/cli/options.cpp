#include "dptrain/cli/options.hpp"

#include <iostream>

#include "dptrain/error.hpp"

namespace dptrain::cli {

std::string program_options_message(const po::error& e, const std::string& input) {
  if (input.find('%') == std::string::npos) return e.what();
  if (const auto* named = dynamic_cast<const po::error_with_option_name*>(&e)) {
    return "option '" + named->get_option_name() + "': unknown, or its value is invalid";
  }
  return "invalid options";
}

void parse_command_line(const std::string& command, const Args& args, const po::options_description& options,
                        po::variables_map& vm, const po::positional_options_description& positional) {
  try {
    po::store(po::command_line_parser(args).options(options).positional(positional).run(), vm);
  } catch (const po::error& e) {
    std::string input;
    for (const std::string& arg : args) input += arg + " ";
    throw Error("dptrain " + command + ": " + program_options_message(e, input) + " (see dptrain " + command +
                " --help)");
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
