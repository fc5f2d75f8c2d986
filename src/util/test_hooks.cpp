#include "dptrain/util/test_hooks.hpp"

#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "dptrain/error.hpp"

namespace dptrain::test_hooks {

void pause_if_requested(const char* variable) {
  const char* file = std::getenv(variable);
  if (file == nullptr || *file == '\0') return;
  const std::string path(file);
  const std::string partial = path + ".partial";
  {
    std::ofstream out(partial);
    out << ::getpid() << '\n';
  }
  if (std::rename(partial.c_str(), path.c_str()) != 0) {
    std::fprintf(stderr, "dptrain: test hook %s: cannot create %s\n", variable, path.c_str());
    return;
  }
  // Polling is fine here: this is a test's pause, not a production wait.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(10);
  while (::access(path.c_str(), F_OK) == 0 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

SlowRank SlowRank::from_environment(int rank) {
  SlowRank slow;
  const char* const text = std::getenv("DPTRAIN_TEST_SLOW_RANK");
  if (text == nullptr || *text == '\0') return slow;
  const char* const end = text + std::char_traits<char>::length(text);
  const char* p = text;
  auto field = [&](auto& value) {
    const auto [next, error] = std::from_chars(p, end, value);
    if (error != std::errc() || value < 0) return false;
    p = next;
    return true;
  };
  int slow_rank = -1;
  const bool ok = field(slow_rank) && p != end && *p++ == ':' && field(slow.milliseconds_) && p != end && *p++ == ':' &&
                  field(slow.steps_) && p == end;
  if (!ok) throw Error("DPTRAIN_TEST_SLOW_RANK=" + std::string(text) + " is invalid: expected RANK:MS:COUNT");
  if (slow_rank != rank) slow.steps_ = 0;
  return slow;
}

void SlowRank::sleep() const { std::this_thread::sleep_for(std::chrono::milliseconds(milliseconds_)); }

}  // namespace dptrain::test_hooks
