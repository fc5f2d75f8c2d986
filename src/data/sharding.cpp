#include "dptrain/data/sharding.hpp"

#include <algorithm>
#include <numeric>

#include "dptrain/error.hpp"
#include "dptrain/util/random.hpp"

namespace dptrain {

ShardLayout::ShardLayout(std::int64_t samples, std::int64_t shards) : samples_(samples), shards_(shards) {
  if (shards < 1) throw Error("--shards " + std::to_string(shards) + " is invalid: expected a positive count");
  if (samples < 0) throw Error("a split cannot hold " + std::to_string(samples) + " samples");
}

std::int64_t ShardLayout::first(std::int64_t shard) const {
  return shard * (samples_ / shards_) + std::min(shard, samples_ % shards_);
}

std::int64_t ShardLayout::size(std::int64_t shard) const {
  return samples_ / shards_ + (shard < samples_ % shards_ ? 1 : 0);
}

std::vector<std::int64_t> ShardLayout::owned(int rank, int ranks) const {
  std::vector<std::int64_t> shards;
  for (std::int64_t s = rank; s < shards_; s += ranks) shards.push_back(s);
  return shards;
}

RankBatches::RankBatches(const ShardLayout& layout, std::int64_t batch, int rank, int ranks)
    : layout_(layout), batch_(std::max<std::int64_t>(1, batch)), owned_(layout.owned(rank, ranks)) {
  for (std::int64_t s : owned_) {
    local_first_.push_back(local_samples_);
    local_samples_ += layout_.size(s);
  }
  // A shard has at most ceil(B / S) positions in any window of B positions.
  const std::int64_t per_shard = (batch_ + layout_.shards() - 1) / layout_.shards();
  max_rows_ = static_cast<int>(std::min<std::int64_t>(batch_, per_shard * static_cast<std::int64_t>(owned_.size())));
  order_.resize(static_cast<std::size_t>(local_samples_));
  start_epoch(0, 0, false);
}

std::int64_t RankBatches::global_batch_size(std::int64_t step) const {
  return std::clamp<std::int64_t>(layout_.samples() - step * batch_, 0, batch_);
}

void RankBatches::start_epoch(std::uint64_t seed, std::int64_t epoch, bool shuffle) {
  std::iota(order_.begin(), order_.end(), 0u);
  if (!shuffle) return;
  for (std::size_t j = 0; j < owned_.size(); ++j) {
    const std::span<std::uint32_t> shard_order(order_.data() + local_first_[j],
                                               static_cast<std::size_t>(layout_.size(owned_[j])));
    Rng rng(seed, purpose::epoch_order, static_cast<std::uint64_t>(epoch), static_cast<std::uint64_t>(owned_[j]));
    dptrain::shuffle(shard_order, rng);
  }
}

int RankBatches::step_rows(std::int64_t step, std::span<std::uint32_t> samples, std::span<MicroBatch> micro,
                           int& micro_count) const {
  const std::int64_t S = layout_.shards();
  const std::int64_t begin = step * batch_;
  const std::int64_t end = std::min(layout_.samples(), begin + batch_);
  int rows = 0;
  micro_count = 0;
  for (std::size_t j = 0; j < owned_.size(); ++j) {
    const std::int64_t s = owned_[j];
    // The shard's positions are k = i*S + s; the first one at or after `begin`.
    std::int64_t k = begin + ((s - begin) % S + S) % S;
    const int first_row = rows;
    for (; k < end; k += S) samples[static_cast<std::size_t>(rows++)] = order_[local_first_[j] + k / S];
    if (rows > first_row) micro[static_cast<std::size_t>(micro_count++)] = {s, first_row, rows - first_row};
  }
  return rows;
}

}  // namespace dptrain
