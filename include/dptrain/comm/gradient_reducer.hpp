#pragma once
// Sums the gradient buffer over ranks while backprop is still running. The
// buffer is cut into buckets; a bucket's non-blocking allreduce starts as soon
// as backprop has finished it. Buckets start in the same order on every rank
// (top of the buffer first), as MPI requires of collectives.
//
// Open MPI advances a non-blocking collective only inside MPI calls, so every
// report from backprop also tests the requests in flight.
#include <mpi.h>

#include <cstddef>
#include <span>
#include <vector>

#include "dptrain/comm/communicator.hpp"
#include "dptrain/nn/mlp.hpp"

namespace dptrain {

class GradientReducer final : public GradientSink {
 public:
  // cuts: descending offsets from buffer.size() to 0 (Mlp::bucket_cuts).
  // With one bucket nothing overlaps: finish() makes one blocking allreduce,
  // the plain synchronous path.
  GradientReducer(const Communicator& comm, std::span<float> buffer, std::vector<std::size_t> cuts);
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  std::size_t buckets() const { return cuts_.size() - 1; }
  bool overlapped() const { return buckets() > 1 && size_ > 1; }

  // One step: begin_step(), backprop reporting to this sink, finish().
  void begin_step();
  void ready_from(std::size_t offset) override;
  void finish();  // returns when the whole buffer holds the sum over ranks

 private:
  void start_bucket(std::size_t bucket);

  MPI_Comm comm_;
  int size_;
  std::span<float> buffer_;
  std::vector<std::size_t> cuts_;      // bucket b is [cuts_[b + 1], cuts_[b])
  std::vector<MPI_Request> requests_;  // one per bucket, sized once
  std::size_t started_ = 0;            // buckets started this step
};

}  // namespace dptrain
