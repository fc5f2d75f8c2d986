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

// The length of the well-formed UTF-8 sequence at the start of `text` (1 for
// ASCII), or 0 when there is none: the Unicode standard's table 3-7. Lead
// bytes C0, C1 and F5-FF never start one, and the second byte's range after
// E0, ED, F0 and F4 is narrower, which refuses overlong forms (an ESC or a
// CSI spelled in three bytes), surrogates and code points past U+10FFFF.
std::size_t utf8_length(std::string_view text) {
  const auto lead = static_cast<unsigned char>(text[0]);
  const std::size_t length = lead < 0x80   ? 1
                             : lead < 0xc2 ? 0
                             : lead < 0xe0 ? 2
                             : lead < 0xf0 ? 3
                             : lead < 0xf5 ? 4
                                           : 0;
  if (length == 0 || length > text.size()) return 0;
  for (std::size_t k = 1; k < length; ++k) {
    if ((static_cast<unsigned char>(text[k]) & 0xc0) != 0x80) return 0;
  }
  if (length > 1) {
    const auto second = static_cast<unsigned char>(text[1]);
    const bool in_range = lead == 0xe0   ? second >= 0xa0
                          : lead == 0xed ? second < 0xa0
                          : lead == 0xf0 ? second >= 0x90
                          : lead == 0xf4 ? second < 0x90
                                         : true;
    if (!in_range) return 0;
  }
  return length;
}

}  // namespace

std::string printable(std::string_view text, std::size_t limit) {
  std::string out;
  const std::string_view shown = text.substr(0, limit);
  out.reserve(shown.size());
  for (std::size_t at = 0; at < shown.size();) {
    const auto c = static_cast<unsigned char>(shown[at]);
    const std::size_t length = utf8_length(shown.substr(at));
    if (length == 0) {
      out += hex_byte(c, "\\x");  // a byte of no character: raw 0x80-0x9f is a C1 control to 8-bit terminals
    } else if (length == 1 && is_control(c)) {
      out += hex_byte(c, "\\x");
    } else if (length == 2 && c == 0xc2 && static_cast<unsigned char>(shown[at + 1]) < 0xa0) {
      out += hex_byte(static_cast<unsigned char>(shown[at + 1]), "\\u00");  // U+0080-U+009F: C1 controls (CSI...)
    } else {
      out += shown.substr(at, length);
    }
    at += length == 0 ? 1 : length;
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
