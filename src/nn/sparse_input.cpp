#include "dptrain/nn/sparse_input.hpp"

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <cstring>
#include <numeric>

#include "dptrain/util/cpu.hpp"

#if DPTRAIN_X86
#include <immintrin.h>
#endif

namespace dptrain {
namespace {

// Eight floats, in one AVX register where the kernel is compiled for AVX
// (two SSE ones otherwise), loaded and stored at any float's alignment (GCC
// lets a vector of floats alias floats).
typedef float Floats8 __attribute__((vector_size(32), aligned(4)));
#define DPTRAIN_LOAD8(p) (*reinterpret_cast<const Floats8*>(p))
#define DPTRAIN_STORE8(p, v) (*reinterpret_cast<Floats8*>(p) = (v))

// out[0 .. n) = sum over t of scales[t] * rows[index[t]][0 .. n), each
// element summed in t order: 64 columns at a time in eight accumulators, so
// that each listed row is loaded once per block and nothing else touches
// memory.
inline __attribute__((always_inline)) void sum_scaled_rows_body(int count, const float* scales, const int* index,
                                                                const float* rows, std::size_t stride, int n,
                                                                float* out) {
  int c = 0;
  for (; c + 64 <= n; c += 64) {
    Floats8 a0{}, a1{}, a2{}, a3{}, a4{}, a5{}, a6{}, a7{};
    for (int t = 0; t < count; ++t) {
      const float s = scales[t];
      const float* r = rows + static_cast<std::size_t>(index[t]) * stride + c;
      a0 += s * DPTRAIN_LOAD8(r);
      a1 += s * DPTRAIN_LOAD8(r + 8);
      a2 += s * DPTRAIN_LOAD8(r + 16);
      a3 += s * DPTRAIN_LOAD8(r + 24);
      a4 += s * DPTRAIN_LOAD8(r + 32);
      a5 += s * DPTRAIN_LOAD8(r + 40);
      a6 += s * DPTRAIN_LOAD8(r + 48);
      a7 += s * DPTRAIN_LOAD8(r + 56);
    }
    DPTRAIN_STORE8(out + c, a0), DPTRAIN_STORE8(out + c + 8, a1), DPTRAIN_STORE8(out + c + 16, a2);
    DPTRAIN_STORE8(out + c + 24, a3), DPTRAIN_STORE8(out + c + 32, a4), DPTRAIN_STORE8(out + c + 40, a5);
    DPTRAIN_STORE8(out + c + 48, a6), DPTRAIN_STORE8(out + c + 56, a7);
  }
  for (; c + 8 <= n; c += 8) {
    Floats8 a{};
    for (int t = 0; t < count; ++t)
      a += scales[t] * DPTRAIN_LOAD8(rows + static_cast<std::size_t>(index[t]) * stride + c);
    DPTRAIN_STORE8(out + c, a);
  }
  for (; c < n; ++c) {
    float a = 0.0f;
    for (int t = 0; t < count; ++t) a += scales[t] * rows[static_cast<std::size_t>(index[t]) * stride + c];
    out[c] = a;
  }
}

using sparse_input_detail::ListRow;
using sparse_input_detail::SumScaledRows;

void sum_scaled_rows_baseline(int count, const float* scales, const int* index, const float* rows, std::size_t stride,
                              int n, float* out) {
  sum_scaled_rows_body(count, scales, index, rows, stride, n, out);
}

// The same loop for AVX2 with FMA, taken where the CPU has both: a
// target_clones "arch=" clone would be chosen by CPU model, not by feature,
// and an "avx2" one has no FMA. (Results then differ by CPU in round-off,
// as sgemm's kernels do.)
#if DPTRAIN_X86
__attribute__((target("avx2,fma"))) void sum_scaled_rows_avx2(int count, const float* scales, const int* index,
                                                              const float* rows, std::size_t stride, int n,
                                                              float* out) {
  sum_scaled_rows_body(count, scales, index, rows, stride, n, out);
}
#endif

SumScaledRows pick_sum_scaled_rows() {
#if DPTRAIN_X86
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return sum_scaled_rows_avx2;
#endif
  return sum_scaled_rows_baseline;
}

const SumScaledRows sum_scaled_rows = pick_sum_scaled_rows();

// Lists a row's nonzero inputs (their columns and values, in column order)
// and returns how many; it may write anywhere in columns[0 .. cols) and
// values[0 .. cols). Zero means +0 or -0 (a term of +-0 changes no sum);
// NaN is listed, as sgemm would carry it.
int list_row_baseline(const float* row, int cols, int* columns, float* values) {
  int count = 0;
  // Eight inputs at a time, skipped when all are +0 (an image's borders);
  // inside a group branch-free, as whether a pixel is zero is not predictable.
  for (int group = 0; group < cols; group += 8) {
    const int end = std::min(cols, group + 8);
    if (end - group == 8) {
      std::uint32_t bits[8];
      std::memcpy(bits, row + group, sizeof bits);
      if ((bits[0] | bits[1] | bits[2] | bits[3] | bits[4] | bits[5] | bits[6] | bits[7]) == 0) continue;
    }
    for (int k = group; k < end; ++k) {
      columns[count] = k;
      values[count] = row[k];
      count += row[k] != 0.0f;
    }
  }
  return count;
}

// Sixteen inputs a step: a mask of the nonzeros, and the values and their
// columns compressed into registers and stored whole (a compressing store
// to memory is slow on AMD's Zen 4). The store of 16 at `count` stays
// inside [0, cols): count <= k, and k + 16 <= cols.
#if DPTRAIN_X86
__attribute__((target("avx512f"))) int list_row_avx512(const float* row, int cols, int* columns, float* values) {
  int count = 0, k = 0;
  __m512i index = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i sixteen = _mm512_set1_epi32(16);
  for (; k + 16 <= cols; k += 16) {
    const __m512 v = _mm512_loadu_ps(row + k);
    const __mmask16 nonzero = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NEQ_UQ);
    if (nonzero != 0) {
      _mm512_storeu_ps(values + count, _mm512_maskz_compress_ps(nonzero, v));
      _mm512_storeu_si512(columns + count, _mm512_maskz_compress_epi32(nonzero, index));
      count += __builtin_popcount(nonzero);
    }
    index = _mm512_add_epi32(index, sixteen);
  }
  for (; k < cols; ++k) {
    columns[count] = k;
    values[count] = row[k];
    count += row[k] != 0.0f;
  }
  return count;
}
#endif

ListRow pick_list_row() {
#if DPTRAIN_X86
  if (__builtin_cpu_supports("avx512f")) return list_row_avx512;
#endif
  return list_row_baseline;
}
const ListRow list_row = pick_list_row();

// list_rows gives up once past kSparseInputMaxDensity of a call's inputs,
// checking between rows: a row's inputs more is all it ever lists.
std::size_t most_nonzeros(std::size_t inputs) {
  return static_cast<std::size_t>(kSparseInputMaxDensity * static_cast<double>(inputs));
}

// The lists' room for a call of up to max_rows x inputs values, and at most
// kSparseInputMaxValues: list_rows refuses larger calls.
std::size_t list_capacity(int max_rows, int inputs) {
  const std::size_t values = static_cast<std::size_t>(max_rows) * static_cast<std::size_t>(inputs);
  return most_nonzeros(std::min(values, kSparseInputMaxValues)) + static_cast<std::size_t>(inputs);
}

}  // namespace

namespace sparse_input_detail {
ListRow chosen_list_row() { return list_row; }
ListRow portable_list_row() { return list_row_baseline; }
SumScaledRows chosen_sum_scaled_rows() { return sum_scaled_rows; }
SumScaledRows portable_sum_scaled_rows() { return sum_scaled_rows_baseline; }
}  // namespace sparse_input_detail

SparseInput::SparseInput(int max_rows, int inputs, bool enabled)
    : inputs_(inputs),
      row_start_(enabled ? static_cast<std::size_t>(max_rows) + 1 : 0),
      columns_(enabled ? list_capacity(max_rows, inputs) : 0),
      row_values_(columns_.size()),
      column_start_(enabled ? static_cast<std::size_t>(inputs) + 1 : 0),
      rows_of_column_(columns_.size()),
      column_values_(columns_.size()),
      column_fill_(enabled ? static_cast<std::size_t>(inputs) : 0) {}

bool SparseInput::list_rows(ConstMatrix x) {
  // A function of the call alone (its size and its values), so that the
  // same rows choose the same path in any workspace, on any rank count.
  if (columns_.empty() || x.size() > kSparseInputMaxValues) return false;
  assert(x.cols == inputs_ && static_cast<std::size_t>(x.rows) < row_start_.size());
  const std::size_t most = most_nonzeros(x.size());
  std::size_t nonzeros = 0;
  for (int r = 0; r < x.rows; ++r) {
    row_start_[static_cast<std::size_t>(r)] = static_cast<int>(nonzeros);
    if (nonzeros > most) return false;
    nonzeros += list_row(x.row(r), x.cols, &columns_[nonzeros], &row_values_[nonzeros]);
  }
  rows_ = x.rows;
  row_start_[static_cast<std::size_t>(x.rows)] = static_cast<int>(nonzeros);
  return nonzeros <= most;
}

void SparseInput::list_columns() {
  const int nonzeros = row_start_[static_cast<std::size_t>(rows_)];
  std::fill(column_start_.begin(), column_start_.end(), 0);
  for (int t = 0; t < nonzeros; ++t) ++column_start_[static_cast<std::size_t>(columns_[t]) + 1];
  std::partial_sum(column_start_.begin(), column_start_.end(), column_start_.begin());
  std::copy(column_start_.begin(), column_start_.end() - 1, column_fill_.begin());
  // Rows in ascending order within each input: the gradient's sums run over
  // the rows in order, as a plain loop over the batch would.
  for (int r = 0; r < rows_; ++r) {
    for (int t = row_start_[static_cast<std::size_t>(r)]; t < row_start_[static_cast<std::size_t>(r) + 1]; ++t) {
      const int slot = column_fill_[static_cast<std::size_t>(columns_[t])]++;
      rows_of_column_[slot] = r;
      column_values_[slot] = row_values_[t];
    }
  }
}

void SparseInput::forward(ConstMatrix w_t, Matrix z) const {
  assert(w_t.rows == inputs_ && z.rows == rows_ && z.cols == w_t.cols);
  for (int r = 0; r < rows_; ++r) {
    const int begin = row_start_[static_cast<std::size_t>(r)];
    sum_scaled_rows(row_start_[static_cast<std::size_t>(r) + 1] - begin, &row_values_[begin], &columns_[begin],
                    w_t.data, static_cast<std::size_t>(w_t.cols), z.cols, z.row(r));
  }
}

void SparseInput::weight_gradient(ConstMatrix delta, Matrix dw_t) const {
  assert(delta.rows == rows_ && dw_t.rows == inputs_ && dw_t.cols == delta.cols);
  for (int k = 0; k < inputs_; ++k) {
    const int begin = column_start_[static_cast<std::size_t>(k)];
    sum_scaled_rows(column_start_[static_cast<std::size_t>(k) + 1] - begin, &column_values_[begin],
                    &rows_of_column_[begin], delta.data, static_cast<std::size_t>(delta.cols), delta.cols, dw_t.row(k));
  }
}

}  // namespace dptrain
