#pragma once
// A buffer that its owner allocates and that can move, once, into storage
// someone else holds (a node's shared-memory segment, whose ranks keep one
// copy of the model): from then on the values live there and the owner's own
// memory is released. The model's parameters and the momentum velocities are
// such buffers.
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "dptrain/error.hpp"

namespace dptrain {

template <typename T>
class RelocatableBuffer {
 public:
  RelocatableBuffer() = default;
  explicit RelocatableBuffer(std::size_t count) : own_(count, T{}) {}

  std::span<T> values() { return relocated_ ? storage_ : std::span<T>(own_); }
  std::span<const T> values() const { return relocated_ ? storage_ : std::span<const T>(own_); }
  std::size_t size() const { return values().size(); }

  // `storage` holds as many values as this buffer, already copied there by
  // the caller; `what` names the buffer in the error when it does not.
  void relocate(std::span<T> storage, const std::string& what) {
    if (storage.size() != size()) {
      throw Error(what + ": storage for " + std::to_string(storage.size()) + " values, where " +
                  std::to_string(size()) + " are needed");
    }
    storage_ = storage;
    relocated_ = true;
    std::vector<T>().swap(own_);
  }

 private:
  std::vector<T> own_;
  std::span<T> storage_{};
  bool relocated_ = false;
};

}  // namespace dptrain
