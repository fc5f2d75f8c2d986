#pragma once
#include <string>

namespace dptrain {

// "784,16,16,10" from {784, 16, 16, 10} with separator ",".
template <class Range>
std::string join(const Range& values, const char* separator) {
  std::string text;
  for (const auto& v : values) {
    if (!text.empty()) text += separator;
    text += std::to_string(v);
  }
  return text;
}

}  // namespace dptrain
