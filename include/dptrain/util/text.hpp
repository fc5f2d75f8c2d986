#pragma once
#include <cstdio>
#include <string>
#include <string_view>

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

// `text` made safe to print on one line of a terminal or log: control
// bytes (NUL, escape sequences, line ends) and bytes that are not UTF-8 as
// \xNN, the C1 controls U+0080-U+009F as \u00NN, and text past `limit`
// bytes cut, with its length said. Error messages quote what a user gave
// (a value, a file's contents), which can be anything.
std::string printable(std::string_view text, std::size_t limit = 1000);

// Throws unless `text` is text: no NUL or other control byte except tab and
// line ends. The error names `source`, the line and the byte.
void require_text(std::string_view text, const std::string& source);

}  // namespace dptrain
