#pragma once
// SIGUSR1 and SIGTERM (what Slurm sends before a time limit, on scancel and on
// preemption) only ask for a stop: the handler records the signal, and the
// trainer stops all ranks together at the next step boundary, checkpointed.

namespace dptrain {

class StopSignals {
 public:
  StopSignals();   // installs the handlers
  ~StopSignals();  // restores the previous ones
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  static int received();  // the signal number, or 0
  static void clear();
};

}  // namespace dptrain
