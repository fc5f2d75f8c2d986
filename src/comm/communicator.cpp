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

std::vector<std::string> Communicator::gather(const std::string& text, int root) const {
  int length = static_cast<int>(text.size());
  std::vector<int> lengths(rank_ == root ? static_cast<std::size_t>(size_) : 0);
  MPI_Gather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, root, comm_);
  std::vector<int> offsets(lengths.size());
  std::string all;
  if (rank_ == root) {
    for (std::size_t r = 1; r < lengths.size(); ++r) offsets[r] = offsets[r - 1] + lengths[r - 1];
    all.resize(lengths.empty() ? 0 : static_cast<std::size_t>(offsets.back() + lengths.back()));
  }
  MPI_Gatherv(text.data(), length, MPI_CHAR, all.data(), lengths.data(), offsets.data(), MPI_CHAR, root, comm_);
  std::vector<std::string> texts;
  for (std::size_t r = 0; r < lengths.size(); ++r) texts.push_back(all.substr(offsets[r], lengths[r]));
  return texts;
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
