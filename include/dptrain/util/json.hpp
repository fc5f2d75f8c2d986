#pragma once
// A flat JSON object written field by field (metrics lines, --json output).
#include <cstdint>
#include <string>
#include <vector>

namespace dptrain {

// "[1, 2, 3]", "[{...}, {...}]"
std::string json_array(const std::vector<std::int64_t>& values);
std::string json_array(const std::vector<double>& values);
std::string json_array(const std::vector<std::string>& json_values);

class JsonObject {
 public:
  JsonObject& add(const std::string& key, const std::string& value);
  JsonObject& add(const std::string& key, const char* value) { return add(key, std::string(value)); }
  JsonObject& add(const std::string& key, double value);
  JsonObject& add(const std::string& key, std::int64_t value);
  JsonObject& add(const std::string& key, int value) { return add(key, static_cast<std::int64_t>(value)); }
  JsonObject& add(const std::string& key, const JsonObject& value) { return add_raw(key, value.str()); }
  JsonObject& add_raw(const std::string& key, const std::string& json);  // an array or object already in JSON
  std::string str() const { return text_ + "}"; }

 private:
  void key(const std::string& k);
  std::string text_ = "{";
};

}  // namespace dptrain
