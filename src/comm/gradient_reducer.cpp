#include "dptrain/comm/gradient_reducer.hpp"

#include <cassert>
#include <climits>

#include "dptrain/error.hpp"

namespace dptrain {

GradientReducer::GradientReducer(const Communicator& comm, std::span<float> buffer, std::vector<std::size_t> cuts)
    : comm_(comm.handle()), size_(comm.size()), buffer_(buffer), cuts_(std::move(cuts)) {
  if (cuts_.size() < 2 || cuts_.front() != buffer_.size() || cuts_.back() != 0) {
    throw Error("gradient buckets must cover the buffer of " + std::to_string(buffer_.size()) + " values");
  }
  for (std::size_t b = 0; b + 1 < cuts_.size(); ++b) {
    if (cuts_[b + 1] >= cuts_[b]) throw Error("gradient bucket cuts must be strictly descending");
    if (cuts_[b] - cuts_[b + 1] > static_cast<std::size_t>(INT_MAX)) {
      throw Error("a gradient buffer of " + std::to_string(buffer_.size()) +
                  " values is too large for one MPI call: use a smaller --bucket-kib");
    }
  }
  requests_.assign(buckets(), MPI_REQUEST_NULL);
}

void GradientReducer::begin_step() {
  assert(started_ == 0 || started_ == buckets());
  started_ = 0;
}

void GradientReducer::start_bucket(std::size_t bucket) {
  float* first = buffer_.data() + cuts_[bucket + 1];
  const int count = static_cast<int>(cuts_[bucket] - cuts_[bucket + 1]);
  MPI_Iallreduce(MPI_IN_PLACE, first, count, MPI_FLOAT, MPI_SUM, comm_, &requests_[bucket]);
}

void GradientReducer::ready_from(std::size_t offset) {
  if (!overlapped()) return;
  while (started_ < buckets() && cuts_[started_ + 1] >= offset) start_bucket(started_++);
  if (started_ == 0) return;
  int all_done = 0;
  MPI_Testall(static_cast<int>(started_), requests_.data(), &all_done, MPI_STATUSES_IGNORE);
}

void GradientReducer::finish() {
  if (size_ == 1) {
    started_ = buckets();
    return;
  }
  if (!overlapped()) {
    MPI_Allreduce(MPI_IN_PLACE, buffer_.data(), static_cast<int>(buffer_.size()), MPI_FLOAT, MPI_SUM, comm_);
    started_ = buckets();
    return;
  }
  while (started_ < buckets()) start_bucket(started_++);
  MPI_Waitall(static_cast<int>(buckets()), requests_.data(), MPI_STATUSES_IGNORE);
}

}  // namespace dptrain
