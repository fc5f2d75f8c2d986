#include "dptrain/comm/gradient_exchange.hpp"

#include "dptrain/error.hpp"

namespace dptrain {

ReduceMethod parse_reduce_method(const std::string& name) {
  if (name == "shm") return ReduceMethod::shm;
  if (name == "mpi") return ReduceMethod::mpi;
  throw Error("--reduce " + name + " is invalid: expected shm or mpi");
}

std::string to_string(ReduceMethod method) { return method == ReduceMethod::shm ? "shm" : "mpi"; }

GradientExchange::GradientExchange(const Communicator& comm, ReduceMethod method, std::size_t count,
                                   std::vector<std::size_t> bucket_cuts, std::size_t shared_count) {
  if (method == ReduceMethod::shm) {
    if (bucket_cuts.size() > 2) throw Error("gradient buckets are reduced by MPI: use --reduce mpi with --bucket-kib");
    shm_.emplace(comm, count, NodeSync::flags, 0, shared_count);
    local_ = shm_->local();
  } else {
    if (shared_count > 0) throw Error("a shared state needs the shared-memory reduction (--reduce shm)");
    mpi_buffer_.assign(count, 0.0f);
    mpi_.emplace(comm, mpi_buffer_, std::move(bucket_cuts));
    local_ = mpi_buffer_;
  }
}

GradientSink* GradientExchange::sink() {
  if (shm_) return &*shm_;
  return &*mpi_;
}

void GradientExchange::begin_step() {
  if (shm_)
    shm_->begin_step();
  else
    mpi_->begin_step();
}

std::span<const float> GradientExchange::finish(SliceConsumer<float>* consumer) {
  if (shm_) return shm_->finish(consumer);
  if (consumer != nullptr) throw Error("a slice consumer needs the shared-memory reduction (--reduce shm)");
  mpi_->finish();
  return mpi_buffer_;
}

void GradientExchange::share(std::size_t offset, std::span<const float> values) {
  if (!shm_) throw Error("a shared state needs the shared-memory reduction (--reduce shm)");
  shm_->share(offset, values);
}

}  // namespace dptrain
