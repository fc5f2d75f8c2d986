// The hardware floor of a training configuration, measured on this machine:
// OpenBLAS sgemm on exactly the GEMM shapes of one step (forward, weight and
// input gradients, at the per-rank batch), MPI_Allreduce of the gradient
// buffer on the ranks it runs on (and the same sum through the node's shared
// memory, as --reduce shm makes it), and the data pass (uint8 -> float of a
// batch). From them, the floor time of an epoch. Medians of repeated runs.
//
//   mpirun -np 2 build/dptrain_floor --layers 784,1024,1024,10 --batch-size 256 [--samples 60000] [--json]
//
// With --allreduce-sweep, instead: MPI_Allreduce of 4 B to 16 MiB of floats,
// median seconds by size, as JSON (for tools/scaling.py's fit).
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "dptrain/blas.hpp"
#include "dptrain/comm/communicator.hpp"
#include "dptrain/comm/node_reducer.hpp"
#include "dptrain/data/sharding.hpp"
#include "dptrain/nn/mlp.hpp"
#include "dptrain/train/step_timer.hpp"
#include "dptrain/train/trainer.hpp"
#include "dptrain/util/json.hpp"
#include "dptrain/util/random.hpp"

namespace {
using namespace dptrain;

// Median seconds of `repeats` timed calls after two warm-up calls.
double median_seconds(const std::function<void()>& work, int repeats) {
  work();
  work();
  std::vector<double> times;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    work();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::nth_element(times.begin(), times.begin() + repeats / 2, times.end());
  return times[static_cast<std::size_t>(repeats / 2)];
}

std::vector<float> random_floats(std::size_t n) {
  Rng rng(1, 99);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(rng.uniform() - 0.5);
  return v;
}

std::string argument(int argc, char** argv, const std::string& name, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] == name) return argv[i + 1];
  }
  return fallback;
}

// Median seconds of MPI_Allreduce over sizes 4 B, 16 B, ... 16 MiB, every
// rank timing the same calls; the slowest rank's median is reported.
void allreduce_sweep(const Communicator& comm) {
  std::vector<std::int64_t> sizes;
  std::vector<double> seconds;
  std::vector<float> buffer = random_floats(std::size_t{1} << 22);
  for (std::size_t floats = 1; floats <= buffer.size(); floats *= 4) {
    const int repeats = floats >= (std::size_t{1} << 20) ? 11 : 51;
    std::vector<double> times;
    for (int i = 0; i < repeats + 2; ++i) {
      comm.barrier();
      const auto start = std::chrono::steady_clock::now();
      comm.allreduce_sum(std::span<float>(buffer.data(), floats));
      if (i >= 2) times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    std::nth_element(times.begin(), times.begin() + repeats / 2, times.end());
    double median = times[static_cast<std::size_t>(repeats / 2)];
    MPI_Allreduce(MPI_IN_PLACE, &median, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    sizes.push_back(static_cast<std::int64_t>(floats * sizeof(float)));
    seconds.push_back(median);
  }
  if (!comm.is_root()) return;
  JsonObject report;
  report.add("ranks", comm.size()).add_raw("bytes", json_array(sizes)).add_raw("seconds", json_array(seconds));
  std::printf("%s\n", report.str().c_str());
}

}  // namespace

int main(int argc, char** argv) {
  MpiSession mpi(argc, argv);
  const Communicator comm;
  if (std::find(argv, argv + argc, std::string("--allreduce-sweep")) != argv + argc) {
    allreduce_sweep(comm);
    return 0;
  }
  const std::vector<int> layers = parse_layers(argument(argc, argv, "--layers", "784,16,16,10"));
  const std::int64_t batch = std::stoll(argument(argc, argv, "--batch-size", "10"));
  const std::int64_t samples = std::stoll(argument(argc, argv, "--samples", "60000"));
  const int repeats = std::stoi(argument(argc, argv, "--repeats", "21"));
  const bool json = std::find(argv, argv + argc, std::string("--json")) != argv + argc;
  if (std::getenv("OPENBLAS_NUM_THREADS") == nullptr) blas::set_threads(auto_thread_count(comm));

  // The rank's share of a global batch (its rows of a step, to within one).
  const int rows = static_cast<int>(std::max<std::int64_t>(1, (batch + comm.size() - 1 - comm.rank()) / comm.size()));
  const std::int64_t steps_per_epoch = (samples + batch - 1) / batch;
  double gemm_seconds = 0.0;
  JsonObject gemms;
  for (std::size_t i = 0; i + 1 < layers.size(); ++i) {
    const int in = layers[i], out = layers[i + 1];
    std::vector<float> x = random_floats(static_cast<std::size_t>(rows) * in), w = random_floats(std::size_t(out) * in),
                       z(static_cast<std::size_t>(rows) * out), dw(std::size_t(out) * in);
    const ConstMatrix X{x.data(), rows, in}, W{w.data(), out, in}, Z{z.data(), rows, out};
    // The trainer's calls: the first layer's W is stored input-major (W^T
    // [in x out], LayerSlice::input_major), the others [out x in]. On sgemm:
    // the sparse first layer does fewer flops than this floor counts.
    const ConstMatrix W_t{w.data(), in, out};
    const double forward = median_seconds(
        [&] {
          if (i == 0)
            blas::gemm_a_b(X, W_t, Matrix{z.data(), rows, out}, 1, 0);
          else
            blas::gemm_a_bt(X, W, Matrix{z.data(), rows, out}, 1, 0);
        },
        repeats);
    const double weight_grad = median_seconds(
        [&] {
          if (i == 0)
            blas::gemm_at_b(X, Z, Matrix{dw.data(), in, out}, 1, 0);
          else
            blas::gemm_at_b(Z, X, Matrix{dw.data(), out, in}, 1, 0);
        },
        repeats);
    const double input_grad = i == 0 ? 0.0
                                     : median_seconds(
                                           [&] {
                                             blas::gemm_a_b(Z, W, Matrix{x.data(), rows, in}, 1, 0);
                                           },
                                           repeats);
    gemm_seconds += forward + weight_grad + input_grad;
    JsonObject layer;
    layer.add("forward_us", forward * 1e6)
        .add("weight_grad_us", weight_grad * 1e6)
        .add("input_grad_us", input_grad * 1e6);
    gemms.add("layer_" + std::to_string(i), layer);
  }
  // The trainer reduces the gradients plus two scalars in one call.
  const std::size_t params = Mlp(Architecture{layers, Activation::relu, Activation::softmax}).num_params();
  std::vector<float> gradients = random_floats(params + 2);
  double allreduce = 0.0;
  {
    std::vector<double> times;
    for (int i = 0; i < repeats + 2; ++i) {
      comm.barrier();
      const auto start = std::chrono::steady_clock::now();
      comm.allreduce_sum(std::span<float>(gradients));
      if (i >= 2) times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    std::nth_element(times.begin(), times.begin() + repeats / 2, times.end());
    allreduce = comm.size() > 1 ? times[static_cast<std::size_t>(repeats / 2)] : 0.0;
  }
  // The same buffer summed through the node's shared memory (dptrain's
  // --reduce shm), with each of its two ways to synchronise.
  const auto shm_reduce_seconds = [&](NodeSync sync) {
    NodeReducer<float> reducer(comm, params + 2, sync);
    std::copy(gradients.begin(), gradients.end(), reducer.local().begin());
    std::vector<double> times;
    for (int i = 0; i < repeats + 2; ++i) {
      comm.barrier();
      const auto start = std::chrono::steady_clock::now();
      reducer.finish();
      if (i >= 2) times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    std::nth_element(times.begin(), times.begin() + repeats / 2, times.end());
    return comm.size() > 1 ? times[static_cast<std::size_t>(repeats / 2)] : 0.0;
  };
  const double shm_flags = shm_reduce_seconds(NodeSync::flags);
  const double shm_barrier = shm_reduce_seconds(NodeSync::barrier);
  std::vector<std::uint8_t> pixels(static_cast<std::size_t>(rows) * layers[0], 7);
  std::vector<float> inputs(pixels.size());
  const double data = median_seconds(
      [&] {
        for (std::size_t i = 0; i < pixels.size(); ++i) inputs[i] = pixels[i] * (1.0f / 255.0f);
      },
      repeats);

  // Every rank waits for the slowest; rank 0 reports the largest of each.
  double measured[5] = {gemm_seconds, allreduce, data, shm_flags, shm_barrier};
  MPI_Allreduce(MPI_IN_PLACE, measured, 5, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  const double steps = static_cast<double>(steps_per_epoch);
  const double flops = flops_per_sample(layers) * static_cast<double>(rows);
  if (!comm.is_root()) return 0;
  JsonObject report;
  report.add("layers", Architecture{layers}.layers_string()).add("batch_size", batch).add("ranks", comm.size());
  report.add("openblas_core", blas::core_name())
      .add("threads_per_rank", blas::threads())
      .add("rows_per_rank", rows)
      .add("steps_per_epoch", steps_per_epoch);
  report.add("gemm_us_per_step", measured[0] * 1e6).add("gemm_gflops_per_rank", flops / measured[0] / 1e9);
  report.add("allreduce_us", measured[1] * 1e6).add("allreduce_bytes", static_cast<std::int64_t>((params + 2) * 4));
  report.add("shm_reduce_us", measured[3] * 1e6).add("shm_reduce_barrier_us", measured[4] * 1e6);
  report.add("data_us_per_step", measured[2] * 1e6);
  report.add("floor_gemm_epoch_seconds", steps * measured[0]);
  report.add("floor_epoch_seconds", steps * (measured[0] + measured[1] + measured[2]));
  report.add("gemms", gemms);  // rank 0's own times, layer by layer
  if (json) {
    std::printf("%s\n", report.str().c_str());
  } else {
    std::printf(
        "%s, global batch %lld on %d rank(s) x %d thread(s) (OpenBLAS %s kernels): per step GEMMs %.1f us (%.1f "
        "GFLOP/s per rank), "
        "allreduce of %zu bytes %.1f us, data %.1f us\nfloor per epoch: %.3f s (GEMMs alone %.3f s)\n",
        Architecture{layers}.layers_string().c_str(), static_cast<long long>(batch), comm.size(), blas::threads(),
        blas::core_name().c_str(), measured[0] * 1e6, flops / measured[0] / 1e9, (params + 2) * 4, measured[1] * 1e6,
        measured[2] * 1e6, steps * (measured[0] + measured[1] + measured[2]), steps * measured[0]);
  }
  return 0;
}
