#pragma once
// The subcommands. Each parses its own options (Boost.Program_options) and
// runs on every rank of the job; run() dispatches and is the one place where
// errors are caught and reported.
#include <string>
#include <vector>

#include "dptrain/comm/communicator.hpp"

namespace dptrain::cli {

using Args = std::vector<std::string>;  // the subcommand's arguments, without its name

// Exit codes: 0 done, 1 error, 2 usage; and for train, stopped by SIGUSR1 or
// SIGTERM with a checkpoint written (EX_TEMPFAIL: run again with --resume auto).
// 76 (kExitWatchdog, dptrain/comm/watchdog.hpp): a rank waited longer than
// --watchdog-seconds for a collective or its own step; every live rank exits so.
inline constexpr int kExitStopped = 75;

int train(const Args& args, const Communicator& comm);
int convert(const Args& args, const Communicator& comm);
int eval(const Args& args, const Communicator& comm);
int inspect(const Args& args, const Communicator& comm);
int predict(const Args& args, const Communicator& comm);

// Dispatches argv[1] to a subcommand; returns the process exit code.
int run(int argc, char** argv, const Communicator& comm);

}  // namespace dptrain::cli
