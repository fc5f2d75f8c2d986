#include "dptrain/util/worker_pool.hpp"

#include <algorithm>
#include <string>
#include <system_error>

#include "dptrain/error.hpp"

namespace dptrain {

WorkerPool::WorkerPool(int threads) {
  helpers_.reserve(static_cast<std::size_t>(std::max(0, threads - 1)));  // no thread moves once started
  try {
    for (int part = 1; part < threads; ++part) helpers_.emplace_back([this, part] { helper_loop(part); });
  } catch (const std::system_error& e) {
    stop();  // the helpers already started, or std::terminate
    throw Error("cannot start " + std::to_string(threads - 1) + " update threads: " + e.what());
  }
}

WorkerPool::~WorkerPool() { stop(); }

void WorkerPool::stop() {
  stopping_ = true;
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  for (std::thread& helper : helpers_) helper.join();
}

// The task, the part count and stopping_ are written before generation_ is
// bumped (release) and read after it is seen (acquire); a helper's work is
// seen by run()'s caller through running_ (release, then acquire).
void WorkerPool::run_erased(int parts, Erased function, void* context) {
  function_ = function;
  context_ = context;
  parts_ = parts;
  running_.store(static_cast<std::uint32_t>(helpers_.size()), std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  function(context, 0, parts);
  for (std::uint32_t left = running_.load(std::memory_order_acquire); left != 0;
       left = running_.load(std::memory_order_acquire)) {
    running_.wait(left, std::memory_order_acquire);
  }
}

void WorkerPool::helper_loop(int part) {
  std::uint32_t seen = 0;
  for (;;) {
    generation_.wait(seen, std::memory_order_acquire);
    seen = generation_.load(std::memory_order_acquire);
    if (stopping_) return;
    if (part < parts_) {
      function_(context_, part, parts_);
      helper_parts_.fetch_add(1, std::memory_order_relaxed);
    }
    if (running_.fetch_sub(1, std::memory_order_acq_rel) == 1) running_.notify_one();
  }
}

}  // namespace dptrain
