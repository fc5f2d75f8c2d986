#include "dptrain/train/stop_signal.hpp"

#include <csignal>

namespace dptrain {
namespace {

volatile std::sig_atomic_t stop_signal = 0;
struct sigaction previous_usr1, previous_term;

void record(int signo) { stop_signal = signo; }

}  // namespace

StopSignals::StopSignals() {
  struct sigaction action {};
  action.sa_handler = record;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // blocking calls (MPI, file I/O) resume after the handler
  sigaction(SIGUSR1, &action, &previous_usr1);
  sigaction(SIGTERM, &action, &previous_term);
}

StopSignals::~StopSignals() {
  sigaction(SIGUSR1, &previous_usr1, nullptr);
  sigaction(SIGTERM, &previous_term, nullptr);
}

int StopSignals::received() { return stop_signal; }
void StopSignals::clear() { stop_signal = 0; }

}  // namespace dptrain
