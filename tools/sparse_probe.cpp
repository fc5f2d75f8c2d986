// What the sparse first layer (include/dptrain/nn/sparse_input.hpp) buys:
// on real batches of the training split, OpenBLAS's sgemm against the
// trainer's own sparse kernels, for the first layer's two products, checked
// to agree to round-off:
//
//   forward:         Z[B x out] = X[B x in] * W^T[in x out]
//   weight gradient: dW^T[in x out] = X^T[in x B] * D[B x out]
//
// The sparse times include building the lists, once per batch. Medians over
// --repeats batches (each batch's own times), one process, one thread:
//
//   mpirun -np 1 build/dptrain_sparse_probe --data data/mnist.h5 --out 256 --batch-size 64 [--repeats 101] [--json]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "dptrain/blas.hpp"
#include "dptrain/comm/communicator.hpp"
#include "dptrain/data/dataset.hpp"
#include "dptrain/error.hpp"
#include "dptrain/nn/sparse_input.hpp"
#include "dptrain/util/json.hpp"
#include "dptrain/util/random.hpp"

namespace {
using namespace dptrain;

double seconds_of(const std::function<void()>& work) {
  const auto start = std::chrono::steady_clock::now();
  work();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

std::string argument(int argc, char** argv, const std::string& name, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == name) return argv[i + 1];
  return fallback;
}

double max_relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double scale = 0.0, worst = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) scale = std::max(scale, std::abs(double{a[i]}));
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(double{a[i]} - b[i]));
  return scale > 0.0 ? worst / scale : worst;
}

}  // namespace

int main(int argc, char** argv) {
  MpiSession mpi(argc, argv);
  try {
    const std::string data = argument(argc, argv, "--data", "data/mnist.h5");
    const int out = std::stoi(argument(argc, argv, "--out", "256"));
    const int batch = std::stoi(argument(argc, argv, "--batch-size", "64"));
    const int repeats = std::stoi(argument(argc, argv, "--repeats", "101"));
    const bool json = std::find(argv, argv + argc, std::string("--json")) != argv + argc;
    if (std::getenv("OPENBLAS_NUM_THREADS") == nullptr) blas::set_threads(1);

    const std::int64_t samples = split_size(data, "train");
    const ShardLayout layout(samples, 1);
    const std::vector<std::int64_t> all{0};
    const Shard train = read_shards(data, "train", layout, all, MPI_COMM_SELF, 784, 10);
    const int in = train.features();
    if (batch < 1 || out < 1 || repeats < 1 || batch > train.size())
      throw Error("bad --out, --batch-size or --repeats");

    // The first layer's weights as the trainer stores them: input-major, W^T [in x out].
    std::vector<float> x(static_cast<std::size_t>(batch) * in), w_t(static_cast<std::size_t>(in) * out),
        z_dense(static_cast<std::size_t>(batch) * out), z_sparse(z_dense.size()), delta(z_dense.size()),
        dw_t_dense(w_t.size()), dw_t_sparse(w_t.size());
    Rng rng(1, purpose::init, 0);
    for (float& v : w_t) v = static_cast<float>(rng.uniform() - 0.5);
    for (float& v : delta) v = static_cast<float>(rng.uniform() - 0.5);
    std::vector<std::int32_t> labels(static_cast<std::size_t>(batch));
    std::vector<std::uint32_t> indices(static_cast<std::size_t>(batch));
    SparseInput sparse(batch, in);
    const ConstMatrix X{x.data(), batch, in}, W_t{w_t.data(), in, out}, D{delta.data(), batch, out};

    std::vector<double> dense_forward, dense_grad, index, sparse_forward, sparse_grad;
    double forward_error = 0.0, grad_error = 0.0, nonzeros = 0.0;
    int too_dense = 0;  // batches over kSparseInputMaxDensity
    for (int r = 0; r < repeats + 2; ++r) {
      // Batch r: consecutive samples from a spread of starting points.
      const auto first =
          static_cast<std::uint32_t>((static_cast<std::int64_t>(r) * 7919 * batch) % (samples - batch + 1));
      std::iota(indices.begin(), indices.end(), first);
      train.gather(indices, Matrix{x.data(), batch, in}, labels);
      // The trainer's sgemm calls for this layout (--sparse-input false).
      const double t_dense_forward = seconds_of([&] {
        blas::gemm_a_b(X, W_t, Matrix{z_dense.data(), batch, out}, 1, 0);
      });
      const double t_dense_grad = seconds_of([&] { blas::gemm_at_b(X, D, Matrix{dw_t_dense.data(), in, out}, 1, 0); });
      bool listed = false;
      const double t_index = seconds_of([&] {
        listed = sparse.list_rows(X);
        if (listed) sparse.list_columns();
      });
      if (!listed) {  // the trainer takes sgemm for such a batch: only the sparse ones are compared
        too_dense += r >= 2;
        continue;
      }
      const double t_sparse_forward = seconds_of([&] { sparse.forward(W_t, Matrix{z_sparse.data(), batch, out}); });
      const double t_sparse_grad = seconds_of([&] { sparse.weight_gradient(D, Matrix{dw_t_sparse.data(), in, out}); });
      if (r < 2) continue;  // warm-up
      dense_forward.push_back(t_dense_forward), dense_grad.push_back(t_dense_grad), index.push_back(t_index);
      sparse_forward.push_back(t_sparse_forward), sparse_grad.push_back(t_sparse_grad);
      nonzeros += static_cast<double>(std::count_if(x.begin(), x.end(), [](float v) { return v != 0.0f; }));
      forward_error = std::max(forward_error, max_relative_difference(z_dense, z_sparse));
      grad_error = std::max(grad_error, max_relative_difference(dw_t_dense, dw_t_sparse));
    }
    if (index.empty()) throw Error(data + ": every batch is too dense for the sparse first layer");
    const double density = nonzeros / (static_cast<double>(index.size()) * batch * in);
    const double dense_us = 1e6 * (median(dense_forward) + median(dense_grad));
    const double sparse_us = 1e6 * (median(index) + median(sparse_forward) + median(sparse_grad));
    if (forward_error > 1e-5 || grad_error > 1e-5) {
      throw Error("the sparse kernels disagree with sgemm: relative differences " + std::to_string(forward_error) +
                  " (forward), " + std::to_string(grad_error) + " (weight gradient)");
    }
    JsonObject report;
    report.add("in", in).add("out", out).add("batch_rows", batch).add("density", density);
    report.add("batches", static_cast<std::int64_t>(index.size())).add("batches_too_dense", too_dense);
    report.add("openblas_core", blas::core_name()).add("threads", blas::threads());
    report.add("dense_forward_us", 1e6 * median(dense_forward)).add("dense_weight_grad_us", 1e6 * median(dense_grad));
    report.add("sparse_index_us", 1e6 * median(index)).add("sparse_forward_us", 1e6 * median(sparse_forward));
    report.add("sparse_weight_grad_us", 1e6 * median(sparse_grad));
    report.add("dense_us", dense_us).add("sparse_us", sparse_us).add("dense_over_sparse", dense_us / sparse_us);
    report.add("max_relative_difference_forward", forward_error).add("max_relative_difference_weight_grad", grad_error);
    if (json) {
      std::printf("%s\n", report.str().c_str());
    } else {
      std::printf(
          "first layer %dx%d, %d rows a batch, %.1f%% of pixels nonzero, OpenBLAS %s x %d thread(s), medians of %zu "
          "batches (%d more were too dense):\n  dense sgemm:   forward %.1f us + weight gradient %.1f us = %.1f us\n"
          "  sparse:        lists %.1f us + forward %.1f us + weight gradient %.1f us = %.1f us\n"
          "  dense/sparse:  %.2fx (results agree to %.1e relative)\n",
          in, out, batch, 100 * density, blas::core_name().c_str(), blas::threads(), index.size(), too_dense,
          1e6 * median(dense_forward), 1e6 * median(dense_grad), dense_us, 1e6 * median(index),
          1e6 * median(sparse_forward), 1e6 * median(sparse_grad), sparse_us, dense_us / sparse_us,
          std::max(forward_error, grad_error));
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dptrain_sparse_probe: %s\n", e.what());
    return 1;
  }
}
