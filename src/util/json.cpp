#include "dptrain/util/json.hpp"

#include <cmath>
#include <cstdio>

namespace dptrain {
namespace {

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
      out += escaped;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

}  // namespace

void JsonObject::key(const std::string& k) {
  if (text_.size() > 1) text_ += ", ";
  text_ += quoted(k) + ": ";
}

JsonObject& JsonObject::add(const std::string& k, const std::string& value) {
  key(k);
  text_ += quoted(value);
  return *this;
}

JsonObject& JsonObject::add(const std::string& k, double value) {
  key(k);
  if (!std::isfinite(value)) {
    text_ += "null";  // JSON has no NaN or Inf
    return *this;
  }
  char number[32];
  std::snprintf(number, sizeof number, "%.9g", value);
  text_ += number;
  return *this;
}

JsonObject& JsonObject::add(const std::string& k, std::int64_t value) {
  key(k);
  text_ += std::to_string(value);
  return *this;
}

}  // namespace dptrain
