#pragma once
// Row-major matrix views over flat buffers. They own nothing: parameters,
// gradients and activations live in buffers allocated once.
#include <cstddef>

namespace dptrain {

template <class T>
struct MatrixView {
  T* data = nullptr;
  int rows = 0;
  int cols = 0;

  T* row(int r) const { return data + static_cast<std::ptrdiff_t>(r) * cols; }
  T& operator()(int r, int c) const { return row(r)[c]; }
  std::size_t size() const { return static_cast<std::size_t>(rows) * cols; }
  operator MatrixView<const T>() const { return {data, rows, cols}; }
};

using Matrix = MatrixView<float>;
using ConstMatrix = MatrixView<const float>;

}  // namespace dptrain
