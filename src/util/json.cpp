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

std::string json_number(double value) {
  if (!std::isfinite(value)) return "null";  // JSON has no NaN or Inf
  char number[32];
  std::snprintf(number, sizeof number, "%.9g", value);
  return number;
}

JsonObject& JsonObject::add(const std::string& k, double value) {
  key(k);
  text_ += json_number(value);
  return *this;
}

JsonObject& JsonObject::add_raw(const std::string& k, const std::string& json) {
  key(k);
  text_ += json;
  return *this;
}

std::string json_array(const std::vector<std::int64_t>& values) {
  std::string text = "[";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) text += ", ";
    text += std::to_string(values[i]);
  }
  return text + "]";
}

std::string json_array(const std::vector<double>& values) {
  std::vector<std::string> numbers;
  for (double v : values) numbers.push_back(json_number(v));
  return json_array(numbers);
}

std::string json_array(const std::vector<std::string>& json_values) {
  std::string text = "[";
  for (std::size_t i = 0; i < json_values.size(); ++i) {
    if (i) text += ", ";
    text += json_values[i];
  }
  return text + "]";
}

JsonObject& JsonObject::add(const std::string& k, std::int64_t value) {
  key(k);
  text_ += std::to_string(value);
  return *this;
}

}  // namespace dptrain
