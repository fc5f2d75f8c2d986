#pragma once
// Rank 0's progress within an epoch. On a terminal, one line rewritten in
// place a few times a second; elsewhere (Slurm logs, pipes) a plain line
// every `log_every` steps, never a carriage return.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace dptrain {

// --progress: live (carriage returns, ESC[K), plain lines, or automatic.
enum class ProgressMode { automatic, live, plain };
ProgressMode parse_progress_mode(const std::string& text);  // throws Error on anything else

// Whether a person watches `out`. Under mpirun a rank's stdout is a
// pseudo-terminal of mpirun's even when mpirun writes to a file or a Slurm
// log, so isatty alone says yes there: then mpirun's own stdout decides (the
// launching process's fd 1, on the same node), and a rank started by a remote
// daemon (orted) is not watched.
bool person_is_watching(std::FILE* out);

class ProgressLine {
 public:
  // log_every: steps between plain lines (0: about ten lines an epoch; on a
  // terminal, 0 means refresh by time instead).
  ProgressLine(std::FILE* out, bool enabled, std::int64_t log_every, std::int64_t steps_per_epoch,
               ProgressMode mode = ProgressMode::automatic);

  void start_epoch();
  // After step `step` (0-based) of the epoch.
  void after_step(std::int64_t epoch, std::int64_t epochs, std::int64_t step, std::int64_t samples_done,
                  std::int64_t samples_per_epoch, double loss_sum);
  void end_epoch();  // clears a terminal line before the epoch summary

 private:
  std::FILE* out_;
  bool enabled_;
  bool terminal_;
  std::int64_t every_;
  std::chrono::steady_clock::time_point epoch_start_, last_draw_;
  bool drawn_ = false;
};

}  // namespace dptrain
