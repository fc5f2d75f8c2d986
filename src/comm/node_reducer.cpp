#include "dptrain/comm/node_reducer.hpp"

#include <sched.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <string>

#include "dptrain/error.hpp"
#include "dptrain/util/cpu.hpp"

namespace dptrain {
namespace {

// Parts of the segment that different ranks write are kept on separate cache
// lines, so that no two ranks fight over a line.
constexpr std::size_t kLine = 64;
// Values a rank sums at a time: a few KiB, so that the partial sums and the
// consumer's read of them stay in L1.
constexpr std::size_t kSumBlock = 1024;

std::size_t round_up_to_line(std::size_t bytes) { return (bytes + kLine - 1) / kLine * kLine; }

// A rank's part of the segment: a header line with its counters, then its slot;
// node rank 0's part also holds the node's result region.
struct Header {
  std::uint64_t arrivals;          // sync points this rank has reached
  std::uint64_t leader_published;  // (leader only) sync points it has published an inter-node sum at
};
static_assert(sizeof(Header) <= kLine);

template <typename T>
MPI_Datatype mpi_type();
template <>
MPI_Datatype mpi_type<float>() {
  return MPI_FLOAT;
}
template <>
MPI_Datatype mpi_type<std::int64_t>() {
  return MPI_INT64_T;
}

int rank_in(MPI_Comm comm) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  return rank;
}

int size_of(MPI_Comm comm) {
  int size = 1;
  MPI_Comm_size(comm, &size);
  return size;
}

int fake_node_ranks(int from_argument) {
  if (from_argument > 0) return from_argument;
  const char* text = std::getenv(kFakeNodeRanksVariable);
  if (text == nullptr || *text == '\0') return 0;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (*end != '\0' || value < 1 || value > INT_MAX) {
    throw Error(std::string(kFakeNodeRanksVariable) + "=" + text + " is invalid: expected a number of ranks >= 1");
  }
  return static_cast<int>(value);
}

// The ranks of comm that share a node: really (shared memory), or in fake
// nodes of consecutive ranks for tests (they still share this machine's memory).
OwnedComm split_into_nodes(const Communicator& comm, int ranks_per_fake_node) {
  MPI_Comm node = MPI_COMM_NULL;
  if (ranks_per_fake_node > 0) {
    MPI_Comm_split(comm.handle(), comm.rank() / ranks_per_fake_node, comm.rank(), &node);
  } else {
    MPI_Comm_split_type(comm.handle(), MPI_COMM_TYPE_SHARED, comm.rank(), MPI_INFO_NULL, &node);
  }
  return OwnedComm(node);
}

OwnedComm split_leaders(const Communicator& comm, bool leader) {
  MPI_Comm leaders = MPI_COMM_NULL;
  MPI_Comm_split(comm.handle(), leader ? 0 : MPI_UNDEFINED, comm.rank(), &leaders);
  return OwnedComm(leaders);
}

// Node rank 0's part also holds the result region (on a node of several
// ranks) and the shared state.
template <typename T>
std::size_t part_bytes(std::size_t count, int node_rank, int node_size, std::size_t shared_count) {
  const std::size_t slot = round_up_to_line(count * sizeof(T));
  if (node_rank != 0) return kLine + slot;
  return kLine + slot + (node_size > 1 ? slot : 0) + round_up_to_line(shared_count * sizeof(T));
}

std::string mib(unsigned long long bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB"; }

// Open MPI backs a shared window with a file in /dev/shm, and when it does
// not fit, MPI_Win_allocate_shared ends the job with pages of MPI output (a
// container's /dev/shm is 64 MiB by default). The space is checked first, on
// every node, so that a shortage is one error on every rank. Collective.
std::size_t checked_part_bytes(const Communicator& comm, MPI_Comm node, std::size_t part) {
  const unsigned long long page = 4096, mine = (part + page - 1) / page * page;
  unsigned long long needed = 0;
  MPI_Allreduce(&mine, &needed, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, node);
  comm.collectively([&] {
    struct statvfs shm {};
    if (rank_in(node) != 0 || ::statvfs("/dev/shm", &shm) != 0) return;  // no /dev/shm: MPI's choice of place
    const unsigned long long free = static_cast<unsigned long long>(shm.f_bavail) * shm.f_frsize;
    if (needed > free) {
      throw Error("--reduce shm: the node's shared-memory segment needs " + mib(needed) + " in /dev/shm, which has " +
                  mib(free) +
                  " free: enlarge /dev/shm (docker run --shm-size, or its tmpfs mount) or use --reduce mpi");
    }
  });
  return part;
}

std::uint64_t load_acquire(std::uint64_t* counter) {
  return std::atomic_ref<std::uint64_t>(*counter).load(std::memory_order_acquire);
}

void store_release(std::uint64_t* counter, std::uint64_t value) {
  std::atomic_ref<std::uint64_t>(*counter).store(value, std::memory_order_release);
}

// Spins until *counter >= value. Yields the core only after a long spin
// (some tens of microseconds): a yield on a busy machine can hand the core to
// another process for a whole time slice, but when ranks outnumber cores
// (tests, oversubscribed runs) the rank waited for may need this very core.
void wait_until_at_least(std::uint64_t* counter, std::uint64_t value) {
  constexpr int kSpinsBeforeYielding = 2000;
  for (int spins = 0; load_acquire(counter) < value; ++spins) {
    if (spins < kSpinsBeforeYielding)
      cpu_relax();
    else
      sched_yield();
  }
}

}  // namespace

OwnedComm::~OwnedComm() {
  if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

OwnedComm& OwnedComm::operator=(OwnedComm&& other) noexcept {
  if (this != &other) {
    if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
    comm_ = other.comm_;
    other.comm_ = MPI_COMM_NULL;
  }
  return *this;
}

SharedWindow::SharedWindow(MPI_Comm node, std::size_t bytes) {
  // Each rank's part on its own pages (and first touched by that rank).
  MPI_Info info;
  MPI_Info_create(&info);
  MPI_Info_set(info, "alloc_shared_noncontig", "true");
  void* base = nullptr;
  const int rc = MPI_Win_allocate_shared(static_cast<MPI_Aint>(bytes), 1, info, node, &base, &window_);
  MPI_Info_free(&info);
  if (rc != MPI_SUCCESS) throw Error("cannot allocate a shared-memory segment of " + std::to_string(bytes) + " bytes");
  MPI_Win_lock_all(MPI_MODE_NOCHECK, window_);
}

SharedWindow::~SharedWindow() {
  if (window_ == MPI_WIN_NULL) return;
  MPI_Win_unlock_all(window_);
  MPI_Win_free(&window_);
}

std::byte* SharedWindow::base_of(int node_rank) const {
  MPI_Aint size = 0;
  int unit = 0;
  void* base = nullptr;
  MPI_Win_shared_query(window_, node_rank, &size, &unit, &base);
  return static_cast<std::byte*>(base);
}

template <typename T>
NodeReducer<T>::NodeReducer(const Communicator& comm, std::size_t count, NodeSync sync, int ranks_per_fake_node,
                            std::size_t shared_count)
    : count_(count),
      sync_(sync),
      node_comm_(split_into_nodes(comm, fake_node_ranks(ranks_per_fake_node))),
      leaders_comm_(split_leaders(comm, rank_in(node_comm_.get()) == 0)),
      node_rank_(rank_in(node_comm_.get())),
      node_size_(size_of(node_comm_.get())),
      window_(node_comm_.get(),
              checked_part_bytes(comm, node_comm_.get(), part_bytes<T>(count, node_rank_, node_size_, shared_count))) {
  if (count_ > static_cast<std::size_t>(INT_MAX)) {
    throw Error("a buffer of " + std::to_string(count_) + " values is too large for one MPI call");
  }
  if (node_rank_ == 0) nodes_ = size_of(leaders_comm_.get());
  MPI_Bcast(&nodes_, 1, MPI_INT, 0, node_comm_.get());

  const std::size_t slot_bytes = round_up_to_line(count_ * sizeof(T));
  for (int r = 0; r < node_size_; ++r) {
    std::byte* part = window_.base_of(r);
    arrivals_.push_back(&reinterpret_cast<Header*>(part)->arrivals);
    slots_.push_back(reinterpret_cast<T*>(part + kLine));
  }
  std::byte* leader_part = window_.base_of(0);
  leader_published_ = &reinterpret_cast<Header*>(leader_part)->leader_published;
  result_ = node_size_ > 1 ? reinterpret_cast<T*>(leader_part + kLine + slot_bytes) : slots_[0];
  shared_count_ = shared_count;
  shared_ = reinterpret_cast<T*>(leader_part + kLine + slot_bytes + (node_size_ > 1 ? slot_bytes : 0));

  // Slice r of the sum is [bound(r), bound(r + 1)): whole cache lines of the
  // result region, so that no two ranks write the same line.
  const std::size_t per_line = kLine / sizeof(T);
  const auto bound = [&](int r) {
    if (r == node_size_) return count_;
    const std::size_t even = count_ * static_cast<std::size_t>(r) / static_cast<std::size_t>(node_size_);
    return even / per_line * per_line;
  };
  slice_begin_ = bound(node_rank_);
  slice_end_ = bound(node_rank_ + 1);
  block_.resize(kSumBlock);

  // The counters start at zero before any rank can read them.
  *reinterpret_cast<Header*>(window_.base_of(node_rank_)) = Header{0, 0};
  MPI_Win_sync(window_.get());
  MPI_Barrier(node_comm_.get());
  MPI_Win_sync(window_.get());
}

template <typename T>
void NodeReducer<T>::node_barrier() {
  ++generation_;
  if (sync_ == NodeSync::barrier) return window_barrier();
  // Release: this rank's writes to the segment before this point are seen by
  // a rank that acquires the counter.
  store_release(arrivals_[static_cast<std::size_t>(node_rank_)], generation_);
  for (std::uint64_t* arrived : arrivals_) wait_until_at_least(arrived, generation_);
}

// NodeSync::barrier: every node rank's writes to the segment are seen by all
// after it (MPI_Win_sync on both sides of the barrier).
template <typename T>
void NodeReducer<T>::window_barrier() {
  MPI_Win_sync(window_.get());
  MPI_Barrier(node_comm_.get());
  MPI_Win_sync(window_.get());
}

template <typename T>
void NodeReducer<T>::publish_from_leader() {
  ++generation_;
  if (sync_ == NodeSync::barrier) return window_barrier();
  store_release(leader_published_, generation_);
}

template <typename T>
void NodeReducer<T>::wait_for_leader_published() {
  ++generation_;
  if (sync_ == NodeSync::barrier) return window_barrier();
  wait_until_at_least(leader_published_, generation_);
}

template <typename T>
void NodeReducer<T>::share(std::size_t offset, std::span<const T> values) {
  if (offset > shared_count_ || values.size() > shared_count_ - offset) {
    throw Error("sharing " + std::to_string(values.size()) + " values at " + std::to_string(offset) +
                " in a shared state of " + std::to_string(shared_count_));
  }
  if (node_rank_ == 0) std::copy(values.begin(), values.end(), shared_ + offset);
  if (node_size_ > 1) node_barrier();
}

template <typename T>
void NodeReducer<T>::sum_my_slice(SliceConsumer<T>* consumer) {
  // THE INVARIANT: element i of the node's sum is
  //   ((slot_0[i] + slot_1[i]) + slot_2[i]) + ... + slot_{n-1}[i]
  // in node-rank order, whichever rank computes it and whenever the others
  // arrive, so a float sum is the same on every run and equals an explicit
  // left-to-right sum in rank order (integer sums do not depend on order).
  // Blocks of a few KiB keep the partial sums in L1 between the slots.
  const std::size_t stored_from = consumer != nullptr ? consumer->stored_from() : 0;
  for (std::size_t begin = slice_begin_; begin < slice_end_; begin += kSumBlock) {
    const std::size_t end = std::min(slice_end_, begin + kSumBlock);
    T* __restrict out = end <= stored_from ? block_.data() : result_ + begin;
    const std::size_t n = end - begin;
    const T* __restrict first = slots_[0] + begin;
    const T* __restrict second = slots_[1] + begin;
    for (std::size_t i = 0; i < n; ++i) out[i] = first[i] + second[i];
    for (std::size_t r = 2; r < slots_.size(); ++r) {
      const T* __restrict next = slots_[r] + begin;
      for (std::size_t i = 0; i < n; ++i) out[i] += next[i];
    }
    if (consumer != nullptr) consumer->consume(begin, end, out);  // while the block is in L1
  }
}

template <typename T>
std::span<const T> NodeReducer<T>::finish(SliceConsumer<T>* consumer) {
  // On one node a slice's sum is final as soon as it is summed: the consumer
  // takes it in the same pass. Across nodes, only after the leaders' allreduce.
  const bool consume_while_summing = nodes_ == 1 && node_size_ > 1;
  if (node_size_ > 1) {
    node_barrier();  // every slot is written
    sum_my_slice(consume_while_summing ? consumer : nullptr);
    node_barrier();  // every slice is summed and consumed (no slot is read any more: ranks may write the next step's)
  }
  if (nodes_ > 1) {
    // Between nodes: one MPI allreduce of the node sums among the leaders,
    // straight from and into the shared result region.
    if (!leaders_comm_.null()) {
      MPI_Allreduce(MPI_IN_PLACE, result_, static_cast<int>(count_), mpi_type<T>(), MPI_SUM, leaders_comm_.get());
    }
    if (node_size_ > 1) {
      if (node_rank_ == 0)
        publish_from_leader();
      else
        wait_for_leader_published();
    }
  }
  if (consumer != nullptr && !consume_while_summing) {
    consumer->consume(slice_begin_, slice_end_, result_ + slice_begin_);
    if (node_size_ > 1) node_barrier();  // every slice is consumed
  }
  return {result_, count_};
}

template class NodeReducer<float>;
template class NodeReducer<std::int64_t>;

}  // namespace dptrain
