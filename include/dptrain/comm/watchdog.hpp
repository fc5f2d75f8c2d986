#pragma once
// Never hang: a rank that waits longer than a timeout, for a collective or for
// its own step, ends the job. The training loop arms the watchdog with
// (phase, step) before each blocking part and disarms it after; a monitor
// thread checks the time armed. Past the timeout, the rank writes a marker
// (RUN_DIR/watchdog/rank-R.json: rank, host, phase, step), waits a short grace
// so that the other live ranks report too, and leaves with kExitWatchdog via
// _exit: MPI cannot be called from a second thread without
// MPI_THREAD_MULTIPLE, and mpirun ends the remaining ranks once one exits.
// The first rank to report prints the one line and writes
// RUN_DIR/watchdog/silent-hosts: the hosts of ranks that did not report
// (stalled, stopped, cut off), for a job script to exclude on requeue.
#include <cstdint>
#include <string>
#include <vector>

#include "dptrain/comm/communicator.hpp"

namespace dptrain {

// The exit code of every rank whose watchdog fired (beside 75 for a stop signal).
inline constexpr int kExitWatchdog = 76;

class Watchdog {
 public:
  // Collective: gathers every rank's host name and, in a run folder that
  // exists already, clears markers of an earlier attempt and rewrites
  // RUN_DIR/rank-hosts.txt.
  // timeout_seconds <= 0 leaves the watchdog off (arm and disarm then cost
  // nothing but an atomic store).
  Watchdog(const Communicator& comm, double timeout_seconds, const std::string& run_dir);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Collective: rank 0 writes RUN_DIR/rank-hosts.txt, once set-up has
  // accepted the run folder (a stall before then writes it when reported).
  void record_hosts(const Communicator& comm) const;

  // What this rank is about to do or wait for: `phase` must be a string
  // literal (only the pointer is kept); `step` is the global step (1-based).
  // Re-arming restarts the clock: the timeout bounds each wait, not their sum.
  static void arm(const char* phase, std::int64_t step);
  static void disarm();

  // The grace a reporting rank waits for the other live ranks to report.
  static double grace_seconds(double timeout_seconds);

 private:
  void monitor();
  [[noreturn]] void fire(const char* phase, std::int64_t step, double waited_seconds);
  void write_rank_hosts() const;

  int rank_;
  double timeout_seconds_;
  std::string folder_;                   // RUN_DIR/watchdog
  std::string rank_hosts_path_;          // RUN_DIR/rank-hosts.txt
  std::vector<std::string> rank_hosts_;  // host name of every rank, by rank
  struct Monitor;
  Monitor* monitor_ = nullptr;
};

// Arms for the scope's lifetime (a checkpoint write, an evaluation).
class WatchdogScope {
 public:
  WatchdogScope(const char* phase, std::int64_t step) { Watchdog::arm(phase, step); }
  ~WatchdogScope() { Watchdog::disarm(); }
  WatchdogScope(const WatchdogScope&) = delete;
  WatchdogScope& operator=(const WatchdogScope&) = delete;
};

}  // namespace dptrain
