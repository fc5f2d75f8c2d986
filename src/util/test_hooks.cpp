#include "dptrain/util/test_hooks.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

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

}  // namespace dptrain::test_hooks
