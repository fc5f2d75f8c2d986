#pragma once
// Which samples each rank owns.
//
// Global batch t is samples [t*B, min(N, (t+1)*B)) of the (unshuffled) split,
// whatever the number of ranks P. Rank r owns the same slice of every global
// batch: offset r*(B/P) + min(r, B%P), width B/P (+1 for the first B%P ranks).
// A last, partial batch is cut the same way, so some ranks may hold fewer (or
// no) samples of it. Hence N ranks take the same steps as 1 rank, and rank r's
// whole shard is one block-cyclic HDF5 hyperslab (plus the partial tail).
//
// With B = N (one batch) this is a contiguous split, used for evaluation.
#include <cstdint>

namespace dptrain {

class BatchSlicing {
 public:
  BatchSlicing(std::int64_t samples, std::int64_t batch, int ranks);

  std::int64_t samples() const { return samples_; }
  std::int64_t batch() const { return batch_; }
  int ranks() const { return ranks_; }
  std::int64_t steps() const { return (samples_ + batch_ - 1) / batch_; }
  std::int64_t full_batches() const { return samples_ / batch_; }
  std::int64_t global_batch_size(std::int64_t step) const;

  std::int64_t offset(int rank) const;  // within every global batch
  std::int64_t width(int rank) const;   // of a full global batch
  std::int64_t local_batch_size(int rank, std::int64_t step) const;
  std::int64_t shard_size(int rank) const;
  // Global index of the rank's i-th sample (the shard in file order).
  std::int64_t global_index(int rank, std::int64_t i) const;

 private:
  std::int64_t samples_;
  std::int64_t batch_;
  int ranks_;
};

}  // namespace dptrain
