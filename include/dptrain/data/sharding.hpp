#pragma once
// Which samples each rank owns, and which samples form each global batch.
//
// A split of N samples is cut into S contiguous shards (S = --shards, a
// setting of the run, saved in its checkpoints): shard s holds rows
// [first(s), first(s) + size(s)), size(s) = N/S, plus one for the first N%S
// shards. Rank r of P owns shards r, r+P, r+2P, ...: whole shards, balanced to
// within one shard, each read from the file as one contiguous hyperslab.
//
// The order of an epoch does not depend on P. Position k of epoch e is sample
// order_{e,s}(k / S) of shard s = k % S: the shards take turns, each in its
// own order, a pure function of (seed, e, s). Global batch t is positions
// [t*B, min(N, (t+1)*B)). So which samples form batch t is a function of
// (seed, e, t, S, B, N) alone, and a run resumed mid-epoch on any number of
// ranks continues the same sequence.
//
// A rank's rows of batch t are its shards' positions in the batch, grouped
// by shard (ascending) and by position within a shard: one micro-batch per
// shard. A micro-batch's rows, and their order, depend only on (t, s), never
// on P; the exact mode computes each micro-batch in its own GEMM calls for
// that reason (see comm/exact_sum.hpp).
#include <cstdint>
#include <span>
#include <vector>

namespace dptrain {

class ShardLayout {
 public:
  ShardLayout(std::int64_t samples, std::int64_t shards);

  std::int64_t samples() const { return samples_; }
  std::int64_t shards() const { return shards_; }
  std::int64_t first(std::int64_t shard) const;
  std::int64_t size(std::int64_t shard) const;
  static int owner(std::int64_t shard, int ranks) { return static_cast<int>(shard % ranks); }
  // rank's shards, ascending.
  std::vector<std::int64_t> owned(int rank, int ranks) const;

 private:
  std::int64_t samples_;
  std::int64_t shards_;
};

// The rows of one global batch that one rank computes, from one shard.
struct MicroBatch {
  std::int64_t shard = 0;
  int first_row = 0;  // in the rank's batch
  int rows = 0;
};

// One rank's view of the training order: its shards' samples held
// contiguously (ascending shard order, file order inside a shard), the
// epoch's per-shard orders, and each step's rows.
class RankBatches {
 public:
  RankBatches(const ShardLayout& layout, std::int64_t batch, int rank, int ranks);

  const ShardLayout& layout() const { return layout_; }
  std::int64_t batch() const { return batch_; }
  std::int64_t steps() const { return (layout_.samples() + batch_ - 1) / batch_; }
  std::int64_t global_batch_size(std::int64_t step) const;
  const std::vector<std::int64_t>& owned_shards() const { return owned_; }
  std::int64_t local_samples() const { return local_samples_; }
  // Upper bound of the rows and micro-batches of any step on this rank.
  int max_rows() const { return max_rows_; }
  int max_micro_batches() const { return static_cast<int>(owned_.size()); }

  // Draws the epoch's order of every owned shard: identity without shuffling,
  // else a permutation keyed by (seed, epoch, shard). Allocates nothing.
  void start_epoch(std::uint64_t seed, std::int64_t epoch, bool shuffle);

  // This rank's rows of global batch `step`: local sample indices (into the
  // rank's samples) in `samples`, micro-batches in `micro`. Returns the row
  // count; `micro_count` is set. Allocates nothing.
  int step_rows(std::int64_t step, std::span<std::uint32_t> samples, std::span<MicroBatch> micro,
                int& micro_count) const;

 private:
  ShardLayout layout_;
  std::int64_t batch_;
  std::vector<std::int64_t> owned_;
  std::vector<std::int64_t> local_first_;  // per owned shard: its first local sample
  std::int64_t local_samples_ = 0;
  int max_rows_ = 0;
  std::vector<std::uint32_t> order_;  // per owned shard, its epoch order as local indices
};

}  // namespace dptrain
