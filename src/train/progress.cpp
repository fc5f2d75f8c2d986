#include "dptrain/train/progress.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>

#include "dptrain/error.hpp"

namespace dptrain {
namespace {

// The command name and parent of a process, from /proc/PID/stat ("PID (comm) S PPID ...").
bool process_name_and_parent(pid_t pid, std::string& name, pid_t& parent) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  std::getline(in, text);
  const auto open = text.find('('), close = text.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close + 4 > text.size()) return false;
  name = text.substr(open + 1, close - open - 1);
  parent = static_cast<pid_t>(std::atoll(text.c_str() + close + 4));
  return true;
}

// Whether the process's stdout is a terminal, seen through /proc (the same user may look).
bool stdout_of_process_is_terminal(pid_t pid) {
  const int fd =
      ::open(("/proc/" + std::to_string(pid) + "/fd/1").c_str(), O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return false;
  const bool terminal = ::isatty(fd) == 1;
  ::close(fd);
  return terminal;
}

}  // namespace

ProgressMode parse_progress_mode(const std::string& text) {
  if (text == "auto") return ProgressMode::automatic;
  if (text == "live") return ProgressMode::live;
  if (text == "plain") return ProgressMode::plain;
  throw Error("--progress " + text + " is invalid: expected auto, live or plain");
}

bool person_is_watching(std::FILE* out) {
  if (::isatty(fileno(out)) != 1) return false;
  // mpirun and its daemons set this in every rank they start; a singleton or
  // srun's direct launch (whose pty exists only with --pty) does not.
  if (std::getenv("OMPI_COMM_WORLD_SIZE") == nullptr) return true;
  // Up the process tree to the launcher: mpirun's stdout tells; a remote
  // daemon's rank is watched by nobody (its output travels to mpirun).
  pid_t pid = ::getppid();
  for (int depth = 0; depth < 8 && pid > 1; ++depth) {
    std::string name;
    pid_t parent = 0;
    if (!process_name_and_parent(pid, name, parent)) break;
    if (name == "mpirun" || name == "mpiexec" || name == "orterun" || name == "prterun")
      return stdout_of_process_is_terminal(pid);
    if (name == "orted" || name == "prted" || name == "slurmstepd") return false;
    pid = parent;
  }
  return false;  // launched by something we cannot see: plain lines are safe everywhere
}

ProgressLine::ProgressLine(std::FILE* out, bool enabled, std::int64_t log_every, std::int64_t steps_per_epoch,
                           ProgressMode mode)
    : out_(out),
      enabled_(enabled),
      terminal_(enabled &&
                (mode == ProgressMode::live || (mode == ProgressMode::automatic && person_is_watching(out)))),
      every_(log_every > 0 ? log_every : (terminal_ ? 0 : std::max<std::int64_t>(1, (steps_per_epoch + 9) / 10))) {}

void ProgressLine::start_epoch() { epoch_start_ = last_draw_ = std::chrono::steady_clock::now(); }

void ProgressLine::after_step(std::int64_t epoch, std::int64_t epochs, std::int64_t step, std::int64_t samples_done,
                              std::int64_t samples_per_epoch, double loss_sum) {
  if (!enabled_) return;
  if (every_ > 0) {
    // A plain line every `every_` steps, but not on the epoch's last step: the summary follows.
    if ((step + 1) % every_ != 0 || samples_done >= samples_per_epoch) return;
  }
  const auto now = std::chrono::steady_clock::now();
  // A live line is drawn at an epoch's first step, then a few times a second: every epoch
  // shows one, however fast (and the tests need not race the clock to see it).
  if (every_ == 0 && drawn_ && now - last_draw_ < std::chrono::milliseconds(250)) return;
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - epoch_start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(samples_done) / elapsed : 0.0;
  const double left = rate > 0 ? static_cast<double>(samples_per_epoch - samples_done) / rate : 0.0;
  const double loss = samples_done > 0 ? loss_sum / static_cast<double>(samples_done) : 0.0;
  std::fprintf(out_, "%sepoch %3lld/%lld  %9lld/%lld samples  %9.0f samples/s  loss %.5f  %6.1f s left%s",
               terminal_ && every_ == 0 ? "\r" : "  ", static_cast<long long>(epoch), static_cast<long long>(epochs),
               static_cast<long long>(samples_done), static_cast<long long>(samples_per_epoch), rate, loss, left,
               terminal_ && every_ == 0 ? "\033[K" : "\n");
  std::fflush(out_);
  drawn_ = true;
}

void ProgressLine::end_epoch() {
  if (enabled_ && terminal_ && every_ == 0 && drawn_) std::fputs("\r\033[K", out_);
  drawn_ = false;
}

}  // namespace dptrain
