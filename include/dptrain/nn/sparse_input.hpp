#pragma once
// The first layer on inputs that are mostly zeros (MNIST: 19% of its pixels
// are nonzero): its forward and weight-gradient products skip the zeros.
//
//   forward:         Z[rows x out] = X[rows x in] * W^T[in x out], each row of
//                    X as the list of its nonzero inputs (CSR);
//   weight gradient: dW^T[in x out] = X^T[in x rows] * D[rows x out], each
//                    input as the list of the rows where it is nonzero (CSC).
//
// Both are one kernel, a register-blocked sum of scaled rows: the weight rows
// of a sample's nonzero inputs, or the delta rows of an input's nonzero
// samples. That is why the first layer's weights are stored input-major
// (LayerSlice::input_major): an input's weights are one row. Each output is
// a sum in list order: a row's forward result depends on that row alone,
// the weight gradient on the call's rows in order, and neither on threads
// nor on the workspace around them (only on whether the CPU has FMA). Which
// path a call takes is a function of the call too (its rows' values and
// count, and the layer), so the exact mode's micro-batches come out the same
// on any number of ranks.
//
// Measured with build/dptrain_sparse_probe (tools/sparse_probe.cpp): on
// MNIST's batches these take 0.5-0.7x of sgemm's time on one thread for 64
// to 1024 outputs; a fifth of the flops costs more than a fifth of the time,
// because every nonzero input loads a whole row of weights from L2 or L3.
#include <cstddef>
#include <vector>

#include "dptrain/tensor.hpp"

namespace dptrain {

// Above this fraction of nonzero inputs, sgemm may be faster: the kernels'
// time grows with the nonzeros, and at MNIST's 19% it is 0.5-0.7x sgemm's
// (64 to 1024 outputs), so they break even near 27-38%; 25% keeps a margin.
inline constexpr double kSparseInputMaxDensity = 0.25;

// Below this many outputs, sgemm is faster whatever the density: the lists
// cost the same, and each nonzero saves fewer multiply-adds (the probe on
// MNIST, one thread, 64 rows: 32 outputs at 0.76x sgemm's speed, 64 at 1.79x,
// 128 at 2.08x).
inline constexpr int kSparseInputMinOutputs = 64;

// A call of more values than this (rows x inputs) takes sgemm, and the lists
// have room for no more: at 16 bytes a listed value, up to a quarter of the
// values listed, they take as much memory as the input rows themselves, and
// their int indices must not wrap.
inline constexpr std::size_t kSparseInputMaxValues = std::size_t{1} << 26;

// The lists of one call's rows, in buffers allocated once for up to
// max_rows x inputs nonzeros, so that a step allocates nothing.
class SparseInput {
 public:
  // Not enabled: no lists, and list_rows always refuses (a layer that the
  // sparse path never pays for allocates nothing for it).
  SparseInput(int max_rows, int inputs, bool enabled = true);

  // Lists the nonzeros of x by row; false, with the lists unusable, as soon
  // as more than kSparseInputMaxDensity of x is nonzero (dense data stops
  // after a third of the scan), and for a call past kSparseInputMaxValues.
  bool list_rows(ConstMatrix x);
  // After list_rows: the same nonzeros by input, for the weight gradient.
  void list_columns();

  // z = x * W^T, with w_t = W^T [in x out].
  void forward(ConstMatrix w_t, Matrix z) const;
  // dw_t = x^T * delta [in x out], delta [rows x out] of the same rows.
  void weight_gradient(ConstMatrix delta, Matrix dw_t) const;

 private:
  int rows_ = 0, inputs_ = 0;
  std::vector<int> row_start_, columns_;  // CSR: row r's inputs are columns_[row_start_[r] .. row_start_[r + 1])
  std::vector<float> row_values_;
  std::vector<int> column_start_, rows_of_column_;  // CSC: the same nonzeros by input
  std::vector<float> column_values_;
  std::vector<int> column_fill_;
};

// The two inner loops, as chosen for this CPU (AVX-512 or AVX2 with FMA
// where it has them) and in their portable builds, for the tests to hold
// one to the other.
namespace sparse_input_detail {
// Lists a row's nonzero inputs (columns and values, in column order) and
// returns how many; may write anywhere in columns[0 .. cols), values[0 .. cols).
using ListRow = int (*)(const float* row, int cols, int* columns, float* values);
// out[0 .. n) = sum over t < count of scales[t] * rows[index[t] * stride + 0 .. n), in t order.
using SumScaledRows = void (*)(int count, const float* scales, const int* index, const float* rows, std::size_t stride,
                               int n, float* out);
ListRow chosen_list_row();
ListRow portable_list_row();
SumScaledRows chosen_sum_scaled_rows();
SumScaledRows portable_sum_scaled_rows();
}  // namespace sparse_input_detail

}  // namespace dptrain
