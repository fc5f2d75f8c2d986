#pragma once
#include <cstdio>
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

// A number as a person writes it: 3, 0.05, 1e+30.
inline std::string format_number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", value);
  return text;
}

}  // namespace dptrain
