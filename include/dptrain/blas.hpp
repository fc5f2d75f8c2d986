#pragma once
// The handful of BLAS calls the network needs, with the shapes spelled out.
// All matrices are row-major.
#include <span>
#include <string>

#include "dptrain/tensor.hpp"

namespace dptrain::blas {

// C[m x n] = alpha * A[m x k] * B^T[k x n] + beta * C   (B is stored [n x k])
void gemm_a_bt(ConstMatrix a, ConstMatrix b, Matrix c, float alpha, float beta);
// C[m x n] = alpha * A^T[m x k] * B[k x n] + beta * C   (A is stored [k x m])
void gemm_at_b(ConstMatrix a, ConstMatrix b, Matrix c, float alpha, float beta);
// C[m x n] = alpha * A[m x k] * B[k x n] + beta * C
void gemm_a_b(ConstMatrix a, ConstMatrix b, Matrix c, float alpha, float beta);
// y[n] = A^T[n x m] * x[m]   (A is stored [m x n]): column sums when x is all ones
void gemv_at_x(ConstMatrix a, std::span<const float> x, std::span<float> y);

// Threads OpenBLAS may use in this process.
void set_threads(int threads);
int threads();
// The kernels OpenBLAS picked for this CPU ("SkylakeX", "Haswell", "Prescott" = generic SSE3).
std::string core_name();

}  // namespace dptrain::blas
