#include <cstdio>
#include <cstring>

#include "dptrain/cli/commands.hpp"
#include "dptrain/error.hpp"
#include "dptrain/util/hdf5.hpp"
#include "dptrain/util/text.hpp"

namespace dptrain::cli {
namespace {

const char* kUsage =
    "Usage: [mpirun -np P] dptrain COMMAND [options]\n"
    "Commands:\n"
    "  train     train a multilayer perceptron by synchronous data-parallel SGD\n"
    "  eval      accuracy and loss of a checkpoint on a data file\n"
    "  predict   classify image files (PGM or PNG, 28x28 grayscale) with a checkpoint\n"
    "  inspect   a readable summary of a checkpoint\n"
    "  convert   convert MNIST IDX files (raw or gzipped) to dptrain's HDF5 layout\n"
    "Run 'dptrain COMMAND --help' for a command's options.\n";

}  // namespace

int run(int argc, char** argv, const Communicator& comm) {
  h5::silence_automatic_error_printing();
  const std::string command = argc > 1 ? argv[1] : "";
  const Args args(argv + std::min(argc, 2), argv + argc);
  try {
    if (command == "train") return train(args, comm);
    if (command == "eval") return eval(args, comm);
    if (command == "convert") return convert(args, comm);
    if (command == "inspect") return inspect(args, comm);
    if (command == "predict") return predict(args, comm);
    if (command == "--help" || command == "-h" || command == "help") {
      if (comm.is_root()) std::fputs(kUsage, stdout);
      return 0;
    }
    if (comm.is_root()) {
      std::fprintf(stderr, "dptrain: %s\n%s",
                   command.empty() ? "a command is required" : ("unknown command '" + printable(command) + "'").c_str(),
                   kUsage);
    }
    return 2;
  } catch (const CollectiveError& e) {
    // Every rank has the same error and leaves together; one line says it.
    if (comm.is_root()) std::fprintf(stderr, "dptrain: error: %s\n", printable(e.what()).c_str());
    return 1;
  } catch (const std::exception& e) {
    // Only this rank failed, outside a collective phase: the others may be
    // waiting in a collective, so end the whole job.
    std::fprintf(stderr, "dptrain: error on rank %d: %s\n", comm.rank(), printable(e.what()).c_str());
    std::fflush(stderr);
    if (comm.size() > 1) comm.abort(1);
    return 1;
  }
}

}  // namespace dptrain::cli
