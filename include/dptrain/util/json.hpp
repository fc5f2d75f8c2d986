#pragma once
// A flat JSON object written field by field (metrics lines, --json output).
#include <cstdint>
#include <string>

namespace dptrain {

class JsonObject {
 public:
  JsonObject& add(const std::string& key, const std::string& value);
  JsonObject& add(const std::string& key, const char* value) { return add(key, std::string(value)); }
  JsonObject& add(const std::string& key, double value);
  JsonObject& add(const std::string& key, std::int64_t value);
  JsonObject& add(const std::string& key, int value) { return add(key, static_cast<std::int64_t>(value)); }
  std::string str() const { return text_ + "}"; }

 private:
  void key(const std::string& k);
  std::string text_ = "{";
};

}  // namespace dptrain
