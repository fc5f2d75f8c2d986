#pragma once
// Threads beside a rank's main thread for the optimizer's update, the memory
// pass between the GEMMs: OpenBLAS spreads a GEMM over the rank's threads,
// but the update would run on one of them while the others idle, and a
// memory pass gets more bandwidth from more cores. (The batch's gather, split
// the same way, got slower: 64-row halves take less than a wake-up.)
//
// The helpers are started once and sleep on a futex (std::atomic::wait)
// between tasks: run() allocates nothing and makes no system call beyond the
// wake-ups.
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace dptrain {

class WorkerPool {
 public:
  explicit WorkerPool(int threads);  // threads - 1 helpers beside the caller (none for 1); Error if they cannot start
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  int size() const { return static_cast<int>(helpers_.size()) + 1; }
  // Parts the helpers have run so far (how a test sees that work was split).
  std::uint64_t helper_parts() const { return helper_parts_.load(std::memory_order_relaxed); }

  // Calls task(part, parts) for every part in [0, parts) at once, part 0 on
  // the calling thread, and returns when all have returned. parts is in
  // [1, size()]. The task must not throw (a helper has nowhere to send it).
  template <typename Task>
  void run(int parts, Task& task) {
    if (parts <= 1) return task(0, 1);
    run_erased(
        parts, [](void* context, int part, int count) { (*static_cast<Task*>(context))(part, count); }, &task);
  }

 private:
  using Erased = void (*)(void*, int, int);
  void run_erased(int parts, Erased function, void* context);
  void helper_loop(int part);
  void stop();  // ends and joins the helpers

  Erased function_ = nullptr;
  void* context_ = nullptr;
  int parts_ = 0;
  bool stopping_ = false;
  std::atomic<std::uint32_t> generation_{0};  // bumped once per run(): the helpers' signal to start
  std::atomic<std::uint32_t> running_{0};     // helpers still working on the current run()
  std::atomic<std::uint64_t> helper_parts_{0};
  std::vector<std::thread> helpers_;
};

}  // namespace dptrain
