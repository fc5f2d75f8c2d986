#pragma once
// Sums a buffer over ranks in two levels, without copying it through an MPI
// transport inside a node:
//
//   1. every rank writes its values into its own slot of one shared-memory
//      segment of its node (an MPI-3 shared window; local() is that slot);
//   2. node rank r sums slice r of every slot, in node-rank order, into the
//      node's result region;
//   3. between nodes, the node leaders (node rank 0) allreduce the result
//      region with MPI;
//   4. every rank reads the sum from the result region (finish()).
//
// Optionally the segment also holds state that the node's ranks keep in one
// copy (shared_state(): the model's parameters and velocities), and finish()
// hands each rank its slice of the sum as soon as it is final (a
// SliceConsumer: the optimizer's update of that slice of the shared state),
// so that the update is divided among the node's ranks and, on one node,
// done in the same pass as the sum.
//
// On one node no MPI collective carries the data: the ranks only
// synchronise, through counters in the segment (NodeSync::flags) or
// MPI_Win_sync + MPI_Barrier (NodeSync::barrier).
//
// The step allocates nothing: the segment is allocated once, here.
#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "dptrain/comm/communicator.hpp"
#include "dptrain/nn/mlp.hpp"

namespace dptrain {

// An MPI communicator freed on destruction (MPI_COMM_NULL is allowed: a rank
// outside a split).
class OwnedComm {
 public:
  OwnedComm() = default;
  explicit OwnedComm(MPI_Comm comm) : comm_(comm) {}
  ~OwnedComm();
  OwnedComm(OwnedComm&& other) noexcept : comm_(other.comm_) { other.comm_ = MPI_COMM_NULL; }
  OwnedComm& operator=(OwnedComm&& other) noexcept;
  OwnedComm(const OwnedComm&) = delete;
  OwnedComm& operator=(const OwnedComm&) = delete;

  MPI_Comm get() const { return comm_; }
  bool null() const { return comm_ == MPI_COMM_NULL; }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
};

// An MPI shared-memory window in a passive-target epoch (MPI_Win_lock_all) for
// its whole life, so that MPI_Win_sync may be called at any time; unlocked and
// freed (collectively) on destruction.
class SharedWindow {
 public:
  SharedWindow(MPI_Comm node, std::size_t bytes);
  ~SharedWindow();
  SharedWindow(const SharedWindow&) = delete;
  SharedWindow& operator=(const SharedWindow&) = delete;

  std::byte* base_of(int node_rank) const;  // where node_rank's part of the segment starts, in this process
  MPI_Win get() const { return window_; }

 private:
  MPI_Win window_ = MPI_WIN_NULL;
};

enum class NodeSync {
  flags,    // each rank publishes a step counter in the segment; the others spin on it
  barrier,  // MPI_Win_sync + MPI_Barrier on the node's communicator
};

// The environment variable that groups ranks into fake nodes of N consecutive
// ranks (rank / N), for testing the two-level path on one machine.
inline constexpr const char* kFakeNodeRanksVariable = "DPTRAIN_FAKE_NODE_RANKS";

// Told the parts of this rank's slice of the sum as they become final:
// block[i - begin] is the sum over all ranks of index i, for i in
// [begin, end). Each index of the buffer is given to exactly one rank of each
// node, once per finish().
template <typename T>
class SliceConsumer {
 public:
  virtual ~SliceConsumer() = default;
  virtual void consume(std::size_t begin, std::size_t end, const T* block) = 0;
  // The indices from which finish() must also store the sum in the result
  // region. Below it the consumer is the only reader, so on one node the sum
  // is made in a block in L1 and never written to the segment: that write
  // (and the read of its lines before it) is a third of the pass's traffic.
  virtual std::size_t stored_from() const { return 0; }
};

template <typename T>
class NodeReducer final : public GradientSink {
 public:
  // Collective over comm. ranks_per_fake_node > 0 groups ranks into nodes by
  // rank / ranks_per_fake_node instead of by shared memory (0: the variable
  // DPTRAIN_FAKE_NODE_RANKS if set, else the real nodes). shared_count: the
  // size of shared_state(), values the node's ranks hold in one copy.
  NodeReducer(const Communicator& comm, std::size_t count, NodeSync sync = NodeSync::flags, int ranks_per_fake_node = 0,
              std::size_t shared_count = 0);
  NodeReducer(const NodeReducer&) = delete;
  NodeReducer& operator=(const NodeReducer&) = delete;

  // This rank's slot in the segment: write the values to sum here. Its
  // contents are undefined after finish().
  std::span<T> local() const { return {slots_[static_cast<std::size_t>(node_rank_)], count_}; }
  // Nothing overlaps with backprop: on one node the sum is a memory pass that
  // would compete with the GEMMs for the same cores.
  void begin_step() {}
  void ready_from(std::size_t) override {}
  // Collective: the sum over all ranks of local(), the same on every rank;
  // valid until the next step writes local() and calls finish() again.
  // With a consumer, each rank's slice goes to it before finish() returns,
  // and what the consumers wrote into shared_state() is seen by every node
  // rank after it; only the sum from consumer->stored_from() on is sure to be
  // in the returned span.
  std::span<const T> finish(SliceConsumer<T>* consumer = nullptr);

  // The node's one copy of shared_count values (the same memory on every
  // node rank). Collective over the node: share() copies `values` into it at
  // `offset` from node rank 0 and returns when every node rank sees them.
  std::span<T> shared_state() const { return {shared_, shared_count_}; }
  void share(std::size_t offset, std::span<const T> values);

  int nodes() const { return nodes_; }
  int node_size() const { return node_size_; }
  NodeSync sync() const { return sync_; }

 private:
  void sum_my_slice(SliceConsumer<T>* consumer);
  void node_barrier();               // every node rank has arrived
  void wait_for_leader_published();  // the leader's inter-node allreduce is done
  void publish_from_leader();
  void window_barrier();  // the NodeSync::barrier way of all three

  std::size_t count_;
  NodeSync sync_;
  OwnedComm node_comm_;
  OwnedComm leaders_comm_;  // MPI_COMM_NULL on ranks that are not their node's leader
  int node_rank_ = 0;
  int node_size_ = 1;
  int nodes_ = 1;
  SharedWindow window_;
  std::vector<T*> slots_;  // slot of each node rank, mapped in this process
  T* result_ = nullptr;    // the node's sum (the slot itself on a one-rank node)
  std::size_t shared_count_ = 0;
  T* shared_ = nullptr;                          // shared_state(), after the result region in node rank 0's part
  std::vector<std::uint64_t*> arrivals_;         // each node rank's count of sync points reached
  std::uint64_t* leader_published_ = nullptr;    // sync points the leader has published a result at
  std::size_t slice_begin_ = 0, slice_end_ = 0;  // this rank's slice of the sum
  std::vector<T> block_;                         // a block of the sum that only the consumer reads
  std::uint64_t generation_ = 0;                 // sync points passed by this rank
};

extern template class NodeReducer<float>;
extern template class NodeReducer<std::int64_t>;

}  // namespace dptrain
