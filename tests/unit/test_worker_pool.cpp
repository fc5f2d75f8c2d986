// The threads that split a rank's update: every part runs once per run, on
// its own thread, and its writes are seen by the caller when run() returns.
#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

#include "dptrain/util/worker_pool.hpp"

namespace dptrain {
namespace {

TEST(WorkerPool, EveryPartRunsOnceOnItsOwnThreadAndItsWritesAreSeen) {
  WorkerPool pool(4);
  ASSERT_EQ(4, pool.size());
  const std::thread::id caller = std::this_thread::get_id();
  std::uint64_t helper_parts = 0;
  // Many runs in a row: a lost wake-up would hang here, a lost completion
  // would let run() return before a part's write.
  for (int run = 0; run < 3000; ++run) {
    const int parts = 1 + run % 4;
    std::vector<int> counted(4, 0), seen_parts(4, 0);
    std::vector<std::thread::id> ran_on(4);
    auto task = [&](int part, int count) {
      ++counted[static_cast<std::size_t>(part)];  // plain writes: run() must publish them
      seen_parts[static_cast<std::size_t>(part)] = count;
      ran_on[static_cast<std::size_t>(part)] = std::this_thread::get_id();
    };
    pool.run(parts, task);
    std::set<std::thread::id> threads;
    for (int part = 0; part < 4; ++part) {
      const auto p = static_cast<std::size_t>(part);
      ASSERT_EQ(part < parts ? 1 : 0, counted[p]) << "run " << run << ", part " << part;
      if (part >= parts) continue;
      ASSERT_EQ(parts, seen_parts[p]);
      threads.insert(ran_on[p]);
    }
    ASSERT_EQ(caller, ran_on[0]) << "part 0 runs on the calling thread";
    ASSERT_EQ(static_cast<std::size_t>(parts), threads.size()) << "run " << run;
    helper_parts += static_cast<std::uint64_t>(parts - 1);
  }
  EXPECT_EQ(helper_parts, pool.helper_parts());
}

TEST(WorkerPool, OneThreadRunsTheTaskOnTheCaller) {
  WorkerPool pool(1);
  ASSERT_EQ(1, pool.size());
  std::thread::id ran_on;
  int parts_seen = 0;
  auto task = [&](int part, int count) {
    EXPECT_EQ(0, part);
    parts_seen = count;
    ran_on = std::this_thread::get_id();
  };
  pool.run(1, task);
  EXPECT_EQ(1, parts_seen);
  EXPECT_EQ(std::this_thread::get_id(), ran_on);
  EXPECT_EQ(0u, pool.helper_parts());
}

}  // namespace
}  // namespace dptrain
