// The training step allocates nothing: every global operator new in this test
// binary is counted, and the count must not move between two steps.
#include <gtest/gtest.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>

#include "dptrain/comm/communicator.hpp"
#include "dptrain/train/trainer.hpp"
#include "test_files.hpp"

namespace {
std::atomic<long> allocations{0};
}

// These replacements pair operator new with malloc and operator delete with
// free; GCC cannot see that pairing where it inlines them and warns.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

void* operator new(std::size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace dptrain {
namespace {

TEST(TrainingStep, AllocatesNothing) {
  const Communicator world(MPI_COMM_WORLD);
  const Communicator self(MPI_COMM_SELF);
  // One data file that every rank opens (MPI-IO opens a file collectively);
  // rank 0 writes it, and each rank keeps its own run folder.
  TempDir dir;
  std::string data = dir / "data.h5";
  if (world.is_root()) write_synthetic_hdf5(data, make_split(230, 8, 3, 1), make_split(20, 8, 3, 2));
  world.broadcast(data);
  TrainConfig config;
  config.data = data;
  config.shards = 12;
  config.arch = Architecture{{8, 60, 3}, Activation::relu, Activation::softmax, Loss::cross_entropy};  // 2 KiB
  config.optimizer.sgd.momentum = 0.9f;
  config.optimizer.schedule = ScheduleKind::cosine;
  config.batch_size = 10;
  config.epochs = 2;
  config.run_dir = dir / "run";
  config.threads = 1;
  config.quiet = true;
  const Architecture small = config.arch;
  // 8-16384-3: 196,611 parameters, an update that 2 threads split (Sgd::step_slice).
  const Architecture split_update{{8, 16384, 3}, Activation::relu, Activation::softmax, Loss::cross_entropy};
  // The world four times: shared memory, one blocking allreduce, buckets
  // reduced during backprop, and exact sums; and one rank with 2 threads.
  struct Case {
    const Communicator* comm;
    ReduceMethod reduce;
    int bucket_kib;
    bool exact;
    int threads;
  };
  for (const auto& [comm, reduce, bucket_kib, exact, threads] :
       {Case{&self, ReduceMethod::shm, 0, false, 1}, Case{&world, ReduceMethod::shm, 0, false, 1},
        Case{&world, ReduceMethod::mpi, 0, false, 1}, Case{&world, ReduceMethod::mpi, 1, false, 1},
        Case{&world, ReduceMethod::shm, 0, true, 1}, Case{&self, ReduceMethod::shm, 0, false, 2},
        Case{&self, ReduceMethod::mpi, 0, false, 2}}) {
    config.reduce = reduce;
    config.bucket_kib = bucket_kib;
    config.exact = exact;
    config.threads = threads;
    config.arch = threads > 1 ? split_update : small;
    Trainer trainer(*comm, config, std::nullopt);
    long before = -1, steps_checked = 0, allocating_steps = 0;
    trainer.set_step_observer([&](const Trainer& t) {
      const long now = allocations.load();
      // Steps right after an epoch boundary follow evaluation and checkpointing.
      const bool previous_in_same_epoch = t.progress().global_step % 23 != 1;
      if (before >= 0 && previous_in_same_epoch) {
        ++steps_checked;
        allocating_steps += now != before ? 1 : 0;
      }
      before = now;
    });
    trainer.run();
    EXPECT_EQ(steps_checked, 2 * 23 - 2);  // 23 steps an epoch; the first and the one after evaluation are not compared
    // The trainer's update takes one thread per BLAS thread and core of the
    // rank (mpirun binds a rank to one core on 1-2 ranks, to more beyond),
    // and with two of them it really is split: every step, one part on the helper.
    cpu_set_t allowed;
    ASSERT_EQ(0, sched_getaffinity(0, sizeof allowed, &allowed));
    const int expected_threads = std::min(threads, CPU_COUNT(&allowed));
    EXPECT_EQ(trainer.update_workers().size(), expected_threads);
    EXPECT_EQ(trainer.update_workers().helper_parts(),
              expected_threads > 1 ? static_cast<std::uint64_t>(trainer.progress().global_step) : 0u);
    EXPECT_EQ(allocating_steps, 0) << "on " << comm->size() << " rank(s), --reduce " << to_string(reduce)
                                   << ", buckets of " << bucket_kib << " KiB" << (exact ? ", exact sums" : "") << ", "
                                   << threads << " thread(s)";
    world.barrier();
  }
}

}  // namespace
}  // namespace dptrain
