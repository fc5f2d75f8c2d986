#include "dptrain/blas.hpp"

#include <cblas.h>

#include <cassert>

namespace dptrain::blas {

void gemm_a_bt(ConstMatrix a, ConstMatrix b, Matrix c, float alpha, float beta) {
  assert(a.cols == b.cols && c.rows == a.rows && c.cols == b.rows);
  if (c.rows == 0 || c.cols == 0) return;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, c.rows, c.cols, a.cols, alpha, a.data, a.cols, b.data, b.cols,
              beta, c.data, c.cols);
}

void gemm_at_b(ConstMatrix a, ConstMatrix b, Matrix c, float alpha, float beta) {
  assert(a.rows == b.rows && c.rows == a.cols && c.cols == b.cols);
  if (c.rows == 0 || c.cols == 0) return;
  if (a.rows == 0) {  // an empty sum: BLAS may skip the beta scaling, so do it here
    for (std::size_t i = 0; i < c.size(); ++i) c.data[i] *= beta;
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, c.rows, c.cols, a.rows, alpha, a.data, a.cols, b.data, b.cols,
              beta, c.data, c.cols);
}

void gemm_a_b(ConstMatrix a, ConstMatrix b, Matrix c, float alpha, float beta) {
  assert(a.cols == b.rows && c.rows == a.rows && c.cols == b.cols);
  if (c.rows == 0 || c.cols == 0) return;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, c.rows, c.cols, a.cols, alpha, a.data, a.cols, b.data, b.cols,
              beta, c.data, c.cols);
}

void gemv_at_x(ConstMatrix a, std::span<const float> x, std::span<float> y) {
  assert(static_cast<int>(x.size()) >= a.rows && static_cast<int>(y.size()) == a.cols);
  if (a.rows == 0) {
    for (float& v : y) v = 0.0f;
    return;
  }
  cblas_sgemv(CblasRowMajor, CblasTrans, a.rows, a.cols, 1.0f, a.data, a.cols, x.data(), 1, 0.0f, y.data(), 1);
}

void set_threads(int threads) { openblas_set_num_threads(threads); }
int threads() { return openblas_get_num_threads(); }
std::string core_name() { return openblas_get_corename(); }

}  // namespace dptrain::blas
