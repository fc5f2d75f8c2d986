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

namespace {

struct SlowRank {
  int rank = -1;
  long milliseconds = 0;
  std::int64_t steps = 0;
};

SlowRank parse_slow_rank(const char* text) {
  SlowRank slow;
  if (text == nullptr || *text == '\0') return slow;
  const char* const end = text + std::char_traits<char>::length(text);
  const char* p = text;
  auto field = [&](auto& value) {
    const auto [next, error] = std::from_chars(p, end, value);
    if (error != std::errc() || value < 0) return false;
    p = next;
    return true;
  };
  const bool ok = field(slow.rank) && p != end && *p++ == ':' && field(slow.milliseconds) && p != end && *p++ == ':' &&
                  field(slow.steps) && p == end;
  if (!ok) throw Error("DPTRAIN_TEST_SLOW_RANK=" + std::string(text) + " is invalid: expected RANK:MS:COUNT");
  return slow;
}

}  // namespace

void delay_step_if_requested(int rank, std::int64_t global_step) {
  static const SlowRank slow = parse_slow_rank(std::getenv("DPTRAIN_TEST_SLOW_RANK"));
  if (rank == slow.rank && global_step >= 1 && global_step <= slow.steps)
    std::this_thread::sleep_for(std::chrono::milliseconds(slow.milliseconds));
}

}  // namespace dptrain::test_hooks
