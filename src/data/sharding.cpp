#include "dptrain/data/sharding.hpp"

#include <algorithm>
#include <cassert>

namespace dptrain {

BatchSlicing::BatchSlicing(std::int64_t samples, std::int64_t batch, int ranks)
    : samples_(samples), batch_(std::max<std::int64_t>(1, batch)), ranks_(ranks) {
  assert(ranks >= 1 && samples >= 0);
}

std::int64_t BatchSlicing::global_batch_size(std::int64_t step) const {
  return std::clamp<std::int64_t>(samples_ - step * batch_, 0, batch_);
}

std::int64_t BatchSlicing::offset(int rank) const {
  return rank * (batch_ / ranks_) + std::min<std::int64_t>(rank, batch_ % ranks_);
}

std::int64_t BatchSlicing::width(int rank) const { return batch_ / ranks_ + (rank < batch_ % ranks_ ? 1 : 0); }

std::int64_t BatchSlicing::local_batch_size(int rank, std::int64_t step) const {
  return std::clamp<std::int64_t>(global_batch_size(step) - offset(rank), 0, width(rank));
}

std::int64_t BatchSlicing::shard_size(int rank) const {
  return full_batches() * width(rank) + local_batch_size(rank, full_batches());
}

std::int64_t BatchSlicing::global_index(int rank, std::int64_t i) const {
  const std::int64_t w = width(rank);
  return (i / w) * batch_ + offset(rank) + i % w;
}

}  // namespace dptrain
