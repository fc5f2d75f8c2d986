#pragma once
// MPI behind RAII, plus the few collectives training needs. Decisions are
// collective: a failure on one rank becomes an error on every rank, so no
// rank is ever left waiting in a collective that the others have abandoned.
#include <mpi.h>

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace dptrain {

// MPI_Init in the constructor, MPI_Finalize in the destructor.
class MpiSession {
 public:
  MpiSession(int& argc, char**& argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
};

class Communicator {
 public:
  explicit Communicator(MPI_Comm comm = MPI_COMM_WORLD);

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool is_root() const { return rank_ == 0; }
  int ranks_on_this_node() const { return local_size_; }
  MPI_Comm handle() const { return comm_; }

  // In place, on every rank: the sum over ranks.
  void allreduce_sum(std::span<float> values) const;
  void allreduce_sum(std::span<double> values) const;
  void allreduce_sum(std::span<std::int64_t> values) const;
  std::int64_t max(std::int64_t value) const;

  void broadcast(std::string& text, int root = 0) const;
  // Every rank's text, in rank order, on the root (empty elsewhere).
  std::vector<std::string> gather(const std::string& text, int root = 0) const;
  void barrier() const;

  // Runs `phase` on every rank. If it throws on any rank, every rank throws a
  // CollectiveError carrying the message of the lowest failing rank.
  void collectively(const std::function<void()>& phase) const;

  // Ends every rank of the job: for a rank that cannot take part in
  // collectives any more (it failed half-way through one).
  [[noreturn]] void abort(int exit_code) const;

 private:
  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
  int local_size_ = 1;
};

}  // namespace dptrain
