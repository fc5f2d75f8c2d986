#include "dptrain/cli/commands.hpp"

int main(int argc, char** argv) {
  dptrain::MpiSession mpi(argc, argv);
  const dptrain::Communicator world;
  return dptrain::cli::run(argc, argv, world);
}
