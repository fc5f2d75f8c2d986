#include "dptrain/util/text.hpp"

#include "dptrain/error.hpp"

namespace dptrain {
namespace {

bool is_control(unsigned char c) { return c < 0x20 || c == 0x7f; }

// The byte as `prefix` and two hex digits, such as \x1b or 0x1b.
std::string hex_byte(unsigned char c, const char* prefix) {
  char text[8];
  std::snprintf(text, sizeof text, "%s%02x", prefix, c);
  return text;
}

}  // namespace

std::string printable(std::string_view text, std::size_t limit) {
  std::string out;
  const std::string_view shown = text.substr(0, limit);
  out.reserve(shown.size());
  for (const char ch : shown) {
    const auto c = static_cast<unsigned char>(ch);
    out += is_control(c) ? hex_byte(c, "\\x") : std::string(1, ch);
  }
  if (shown.size() < text.size()) out += "... (" + std::to_string(text.size()) + " bytes in all)";
  return out;
}

void require_text(std::string_view text, const std::string& source) {
  std::size_t line = 1;
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\n') ++line;
    if (is_control(c) && c != '\n' && c != '\r' && c != '\t') {
      throw Error(source + ": line " + std::to_string(line) + " holds the byte " + hex_byte(c, "0x") +
                  ", expected text");
    }
  }
}

}  // namespace dptrain
