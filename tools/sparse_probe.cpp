// Would a sparse first layer pay? MNIST's pixels are mostly zero, and the
// first layer's two GEMMs (forward, weight gradient) are most of a step's
// flops: a kernel that skips the zeros does a fraction of them. This probe
// times, on real batches of the training split, OpenBLAS's dense sgemm
// against two sparse kernels that a trainer could use, and checks that both
// give the same results to round-off:
//
//   forward:         Z[B x out] = X[B x in] * W^T[in x out], X's rows as lists
//                    of their nonzero pixels (CSR), W stored input-major
//                    (W^T, [in x out]) so that a pixel's weights are one row;
//   weight gradient: dW^T[in x out] = X^T[in x B] * D[B x out], X's columns as
//                    lists of their nonzero rows (CSC), built from the CSR.
//
// The sparse times include building the lists, once per batch. Medians over
// --repeats batches (each batch's own times), one process:
//
//   mpirun -np 1 build/dptrain_sparse_probe --data data/mnist.h5 --out 256 --batch-size 64 [--repeats 101] [--json]
//
// The trainer itself stores W as [out x in] and calls sgemm: this is a
// measurement of what the change would buy, not a path of dptrain.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "dptrain/blas.hpp"
#include "dptrain/comm/communicator.hpp"
#include "dptrain/data/dataset.hpp"
#include "dptrain/error.hpp"
#include "dptrain/util/cpu.hpp"
#include "dptrain/util/json.hpp"
#include "dptrain/util/random.hpp"

namespace {
using namespace dptrain;

// Eight floats, in one AVX register where the clone has AVX (two SSE ones
// otherwise), loaded and stored at any float's alignment (GCC lets a vector
// of floats alias floats).
typedef float Floats8 __attribute__((vector_size(32), aligned(4)));
#define load8(p) (*reinterpret_cast<const Floats8*>(p))
#define store8(p, v) (*reinterpret_cast<Floats8*>(p) = (v))

// out[0 .. n) = sum over t of scale[t] * rows[t][0 .. n): a register-blocked
// sum of scaled rows, 64 columns at a time in eight accumulators, so that each
// row's values are loaded once per block and nothing else touches memory.
// Both sparse kernels are this one loop: the forward pass sums the weight
// rows of a sample's nonzero pixels, the weight gradient the delta rows of a
// pixel's nonzero samples.
inline __attribute__((always_inline)) void sum_scaled_rows_body(int count, const float* scales, const int* row_index,
                                                                const float* rows, std::size_t row_stride, int n,
                                                                float* out) {
  int c = 0;
  for (; c + 64 <= n; c += 64) {
    Floats8 a0{}, a1{}, a2{}, a3{}, a4{}, a5{}, a6{}, a7{};
    for (int t = 0; t < count; ++t) {
      const float s = scales[t];
      const float* r = rows + static_cast<std::size_t>(row_index[t]) * row_stride + c;
      a0 += s * load8(r);
      a1 += s * load8(r + 8);
      a2 += s * load8(r + 16);
      a3 += s * load8(r + 24);
      a4 += s * load8(r + 32);
      a5 += s * load8(r + 40);
      a6 += s * load8(r + 48);
      a7 += s * load8(r + 56);
    }
    store8(out + c, a0), store8(out + c + 8, a1), store8(out + c + 16, a2), store8(out + c + 24, a3);
    store8(out + c + 32, a4), store8(out + c + 40, a5), store8(out + c + 48, a6), store8(out + c + 56, a7);
  }
  for (; c + 8 <= n; c += 8) {
    Floats8 a{};
    for (int t = 0; t < count; ++t) a += scales[t] * load8(rows + static_cast<std::size_t>(row_index[t]) * row_stride + c);
    store8(out + c, a);
  }
  for (; c < n; ++c) {
    float a = 0.0f;
    for (int t = 0; t < count; ++t) a += scales[t] * rows[static_cast<std::size_t>(row_index[t]) * row_stride + c];
    out[c] = a;
  }
}

// The same loop compiled for AVX2 with FMA, taken where the CPU has both (a
// target_clones "arch=" clone would be chosen by CPU model, not by feature).
#if DPTRAIN_X86
__attribute__((target("avx2,fma"))) void sum_scaled_rows_avx2(int count, const float* scales, const int* row_index,
                                                               const float* rows, std::size_t row_stride, int n,
                                                               float* out) {
  sum_scaled_rows_body(count, scales, row_index, rows, row_stride, n, out);
}
#endif

void sum_scaled_rows_baseline(int count, const float* scales, const int* row_index, const float* rows,
                              std::size_t row_stride, int n, float* out) {
  sum_scaled_rows_body(count, scales, row_index, rows, row_stride, n, out);
}

using SumScaledRows = void (*)(int, const float*, const int*, const float*, std::size_t, int, float*);
SumScaledRows pick_sum_scaled_rows() {
#if DPTRAIN_X86
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return sum_scaled_rows_avx2;
#endif
  return sum_scaled_rows_baseline;
}
const SumScaledRows sum_scaled_rows = pick_sum_scaled_rows();

// A batch's nonzero pixels by row (CSR) and by column (CSC).
struct SparseBatch {
  std::vector<int> row_start, columns;  // CSR: row b's pixels are columns[row_start[b] .. row_start[b + 1])
  std::vector<float> row_values;
  std::vector<int> column_start, rows;  // CSC: column k's samples are rows[column_start[k] .. column_start[k + 1])
  std::vector<float> column_values;
  std::vector<int> fill;

  SparseBatch(int max_rows, int in)
      : row_start(max_rows + 1), columns(static_cast<std::size_t>(max_rows) * in), row_values(columns.size()),
        column_start(in + 1), rows(columns.size()), column_values(columns.size()), fill(in) {}

  void build_rows(ConstMatrix x) {
    int nonzeros = 0;
    for (int b = 0; b < x.rows; ++b) {
      row_start[b] = nonzeros;
      for (int k = 0; k < x.cols; ++k) {
        columns[nonzeros] = k;
        row_values[nonzeros] = x(b, k);
        nonzeros += x(b, k) != 0.0f;  // branch-free: MNIST's zeros are not predictable
      }
    }
    row_start[x.rows] = nonzeros;
  }
  void build_columns(int batch_rows) {
    std::fill(column_start.begin(), column_start.end(), 0);
    for (int t = 0; t < row_start[batch_rows]; ++t) ++column_start[columns[t] + 1];
    std::partial_sum(column_start.begin(), column_start.end(), column_start.begin());
    std::copy(column_start.begin(), column_start.end() - 1, fill.begin());
    for (int b = 0; b < batch_rows; ++b) {
      for (int t = row_start[b]; t < row_start[b + 1]; ++t) {
        const int slot = fill[columns[t]]++;
        rows[slot] = b;
        column_values[slot] = row_values[t];
      }
    }
  }
};

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
    if (batch < 1 || out < 1 || repeats < 1 || batch > train.size()) throw Error("bad --out, --batch-size or --repeats");

    std::vector<float> x(static_cast<std::size_t>(batch) * in), w = std::vector<float>(std::size_t(out) * in),
        w_t(w.size()), z_dense(static_cast<std::size_t>(batch) * out), z_sparse(z_dense.size()), delta(z_dense.size()),
        dw_dense(w.size()), dw_t_sparse(w.size()), dw_sparse(w.size());
    Rng rng(1, purpose::init, 0);
    for (float& v : w) v = static_cast<float>(rng.uniform() - 0.5);
    for (float& v : delta) v = static_cast<float>(rng.uniform() - 0.5);
    for (int j = 0; j < out; ++j)
      for (int k = 0; k < in; ++k) w_t[static_cast<std::size_t>(k) * out + j] = w[static_cast<std::size_t>(j) * in + k];
    std::vector<std::int32_t> labels(static_cast<std::size_t>(batch));
    std::vector<std::uint32_t> indices(static_cast<std::size_t>(batch));
    SparseBatch sparse(batch, in);
    const ConstMatrix X{x.data(), batch, in}, W{w.data(), out, in}, D{delta.data(), batch, out};

    std::vector<double> dense_forward, dense_grad, index, sparse_forward, sparse_grad;
    double forward_error = 0.0, grad_error = 0.0, nonzeros = 0.0;
    for (int r = 0; r < repeats + 2; ++r) {
      // Batch r: consecutive samples from a spread of starting points.
      const auto first = static_cast<std::uint32_t>((static_cast<std::int64_t>(r) * 7919 * batch) % (samples - batch + 1));
      std::iota(indices.begin(), indices.end(), first);
      train.gather(indices, Matrix{x.data(), batch, in}, labels);
      const double t_dense_forward = seconds_of([&] { blas::gemm_a_bt(X, W, Matrix{z_dense.data(), batch, out}, 1, 0); });
      const double t_dense_grad = seconds_of([&] { blas::gemm_at_b(D, X, Matrix{dw_dense.data(), out, in}, 1, 0); });
      const double t_index = seconds_of([&] {
        sparse.build_rows(X);
        sparse.build_columns(batch);
      });
      const double t_sparse_forward = seconds_of([&] {
        for (int b = 0; b < batch; ++b) {
          const int begin = sparse.row_start[b];
          sum_scaled_rows(sparse.row_start[b + 1] - begin, &sparse.row_values[begin], &sparse.columns[begin], w_t.data(),
                          out, out, &z_sparse[static_cast<std::size_t>(b) * out]);
        }
      });
      const double t_sparse_grad = seconds_of([&] {
        for (int k = 0; k < in; ++k) {
          const int begin = sparse.column_start[k];
          sum_scaled_rows(sparse.column_start[k + 1] - begin, &sparse.column_values[begin], &sparse.rows[begin],
                          delta.data(), out, out, &dw_t_sparse[static_cast<std::size_t>(k) * out]);
        }
      });
      if (r < 2) continue;  // warm-up
      dense_forward.push_back(t_dense_forward), dense_grad.push_back(t_dense_grad), index.push_back(t_index);
      sparse_forward.push_back(t_sparse_forward), sparse_grad.push_back(t_sparse_grad);
      nonzeros += sparse.row_start[batch];
      for (int j = 0; j < out; ++j)
        for (int k = 0; k < in; ++k)
          dw_sparse[static_cast<std::size_t>(j) * in + k] = dw_t_sparse[static_cast<std::size_t>(k) * out + j];
      forward_error = std::max(forward_error, max_relative_difference(z_dense, z_sparse));
      grad_error = std::max(grad_error, max_relative_difference(dw_dense, dw_sparse));
    }
    const double density = nonzeros / (static_cast<double>(repeats) * batch * in);
    const double dense_us = 1e6 * (median(dense_forward) + median(dense_grad));
    const double sparse_us = 1e6 * (median(index) + median(sparse_forward) + median(sparse_grad));
    if (forward_error > 1e-5 || grad_error > 1e-5) {
      throw Error("the sparse kernels disagree with sgemm: relative differences " + std::to_string(forward_error) +
                  " (forward), " + std::to_string(grad_error) + " (weight gradient)");
    }
    JsonObject report;
    report.add("in", in).add("out", out).add("batch_rows", batch).add("density", density);
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
          "first layer %dx%d, %d rows a batch, %.1f%% of pixels nonzero, OpenBLAS %s x %d thread(s), medians of %d "
          "batches:\n  dense sgemm:   forward %.1f us + weight gradient %.1f us = %.1f us\n"
          "  sparse:        lists %.1f us + forward %.1f us + weight gradient %.1f us = %.1f us\n"
          "  dense/sparse:  %.2fx (results agree to %.1e relative)\n",
          in, out, batch, 100 * density, blas::core_name().c_str(), blas::threads(), repeats, 1e6 * median(dense_forward),
          1e6 * median(dense_grad), dense_us, 1e6 * median(index), 1e6 * median(sparse_forward),
          1e6 * median(sparse_grad), sparse_us, dense_us / sparse_us, std::max(forward_error, grad_error));
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dptrain_sparse_probe: %s\n", e.what());
    return 1;
  }
}
