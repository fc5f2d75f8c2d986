#pragma once
// One training step's sum of the gradient buffer over ranks, made one of two
// ways (--reduce):
//   shm: NodeReducer: shared memory inside a node, MPI between node leaders;
//   mpi: GradientReducer: MPI_Allreduce (in buckets during backprop with
//        --bucket-kib).
// The trainer writes this rank's buffer into local(), reports backprop's
// progress to sink(), and reads the sum from finish().
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dptrain/comm/communicator.hpp"
#include "dptrain/comm/gradient_reducer.hpp"
#include "dptrain/comm/node_reducer.hpp"

namespace dptrain {

enum class ReduceMethod { shm, mpi };

ReduceMethod parse_reduce_method(const std::string& name);  // "shm" or "mpi"; Error otherwise
std::string to_string(ReduceMethod method);

class GradientExchange {
 public:
  // Collective. bucket_cuts as for GradientReducer (used by the mpi method).
  // shared_count > 0 (shm only): the node's ranks keep that many values in
  // one copy in the segment (shared_state()), which finish()'s consumer updates.
  GradientExchange(const Communicator& comm, ReduceMethod method, std::size_t count,
                   std::vector<std::size_t> bucket_cuts, std::size_t shared_count = 0);

  ReduceMethod method() const { return shm_ ? ReduceMethod::shm : ReduceMethod::mpi; }
  std::span<float> local() { return local_; }  // where this rank's values go, every step
  GradientSink* sink();                        // for Mlp::backpropagate
  void begin_step();
  // Collective: the sum over ranks, valid until the next step writes local().
  // consumer (shm only): given this rank's slice of the sum (NodeReducer::finish).
  std::span<const float> finish(SliceConsumer<float>* consumer = nullptr);

  // The node's one copy of shared_count values (empty without them), and
  // NodeReducer::share into it at `offset`. Collective over the node.
  std::span<float> shared_state() const { return shm_ ? shm_->shared_state() : std::span<float>(); }
  void share(std::size_t offset, std::span<const float> values);

 private:
  std::vector<float> mpi_buffer_;  // the mpi method reduces in place; empty for shm
  std::optional<GradientReducer> mpi_;
  std::optional<NodeReducer<float>> shm_;
  std::span<float> local_;
};

}  // namespace dptrain
