// The data readers open files through MPI-IO, so the unit tests run as a
// one-process MPI job (a "singleton": no launcher needed).
#include <gtest/gtest.h>
#include <mpi.h>

namespace {

class MpiEnvironment : public testing::Environment {
 public:
  void SetUp() override {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) MPI_Init(nullptr, nullptr);
  }
  void TearDown() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }
};

const testing::Environment* const kMpi = testing::AddGlobalTestEnvironment(new MpiEnvironment);

}  // namespace
