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
  GradientExchange(const Communicator& comm, ReduceMethod method, std::size_t count,
                   std::vector<std::size_t> bucket_cuts);

  ReduceMethod method() const { return shm_ ? ReduceMethod::shm : ReduceMethod::mpi; }
  std::span<float> local() { return local_; }  // where this rank's values go, every step
  GradientSink* sink();                        // for Mlp::backpropagate
  void begin_step();
  // Collective: the sum over ranks, valid until the next step writes local().
  std::span<const float> finish();

 private:
  std::vector<float> mpi_buffer_;  // the mpi method reduces in place; empty for shm
  std::optional<GradientReducer> mpi_;
  std::optional<NodeReducer<float>> shm_;
  std::span<float> local_;
};

}  // namespace dptrain
