#include "dptrain/comm/communicator.hpp"

#include <climits>
#include <cstdlib>

#include "dptrain/error.hpp"

namespace dptrain {

MpiSession::MpiSession(int& argc, char**& argv) { MPI_Init(&argc, &argv); }

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

Communicator::Communicator(MPI_Comm comm) : comm_(comm) {
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
  MPI_Comm node;
  MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node);
  MPI_Comm_size(node, &local_size_);
  MPI_Comm_free(&node);
}

void Communicator::allreduce_sum(std::span<float> values) const {
  MPI_Allreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_FLOAT, MPI_SUM, comm_);
}

void Communicator::allreduce_sum(std::span<double> values) const {
  MPI_Allreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_DOUBLE, MPI_SUM, comm_);
}

void Communicator::allreduce_sum(std::span<std::int64_t> values) const {
  MPI_Allreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_INT64_T, MPI_SUM, comm_);
}

std::int64_t Communicator::max(std::int64_t value) const {
  MPI_Allreduce(MPI_IN_PLACE, &value, 1, MPI_INT64_T, MPI_MAX, comm_);
  return value;
}

void Communicator::broadcast(std::string& text, int root) const {
  long long length = static_cast<long long>(text.size());
  MPI_Bcast(&length, 1, MPI_LONG_LONG, root, comm_);
  text.resize(static_cast<std::size_t>(length));
  MPI_Bcast(text.data(), static_cast<int>(length), MPI_CHAR, root, comm_);
}

void Communicator::barrier() const { MPI_Barrier(comm_); }

void Communicator::collectively(const std::function<void()>& phase) const {
  std::string message;
  bool failed = false;
  try {
    phase();
  } catch (const std::exception& e) {
    failed = true;
    message = e.what();
  }
  int first_failed = failed ? rank_ : INT_MAX;
  MPI_Allreduce(MPI_IN_PLACE, &first_failed, 1, MPI_INT, MPI_MIN, comm_);
  if (first_failed == INT_MAX) return;
  broadcast(message, first_failed);
  throw CollectiveError(message);
}

void Communicator::abort(int exit_code) const {
  MPI_Abort(comm_, exit_code);
  std::abort();
}

}  // namespace dptrain
