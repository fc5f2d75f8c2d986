#include "dptrain/comm/watchdog.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "dptrain/util/files.hpp"

namespace dptrain {
namespace fs = std::filesystem;
namespace {

// What the training thread is doing, read by the monitor thread. Atomics, not
// a mutex: arm/disarm run on every step and must never block.
std::atomic<std::int64_t> armed_at_ns{0};  // steady clock; 0 = disarmed
std::atomic<const char*> armed_phase{""};
std::atomic<std::int64_t> armed_step{0};

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string this_host() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "unknown-host";
  return name;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A rank's own work (not a wait for others) that exceeded the timeout.
constexpr const char* kOwnWorkPhase = "compute";

}  // namespace

struct Watchdog::Monitor {
  std::thread thread;
  std::mutex mutex;
  std::condition_variable wake;
  bool stop = false;
};

Watchdog::Watchdog(const Communicator& comm, double timeout_seconds, const std::string& run_dir)
    : rank_(comm.rank()),
      timeout_seconds_(timeout_seconds),
      folder_((fs::path(run_dir) / "watchdog").string()),
      rank_hosts_path_((fs::path(run_dir) / "rank-hosts.txt").string()) {
  constexpr int kNameBytes = 256;
  std::string mine = this_host();
  mine.resize(kNameBytes, '\0');
  std::string all(static_cast<std::size_t>(kNameBytes * comm.size()), '\0');
  MPI_Allgather(mine.data(), kNameBytes, MPI_CHAR, all.data(), kNameBytes, MPI_CHAR, comm.handle());
  for (int r = 0; r < comm.size(); ++r)
    rank_hosts_.emplace_back(all.c_str() + static_cast<std::size_t>(r) * kNameBytes);
  // An earlier attempt's folder (a requeued job): its markers would name the
  // wrong ranks, and its host list the wrong hosts. A new folder is not made
  // here, so that a run refused in set-up leaves nothing behind.
  comm.collectively([&] {
    std::error_code ignored;
    if (!comm.is_root() || !fs::is_directory(run_dir, ignored)) return;
    fs::remove_all(folder_, ignored);
    write_rank_hosts();
  });
  disarm();
  if (timeout_seconds_ <= 0) return;
  monitor_ = new Monitor;
  monitor_->thread = std::thread([this] { monitor(); });
}

Watchdog::~Watchdog() {
  disarm();
  if (monitor_ == nullptr) return;
  {
    const std::lock_guard lock(monitor_->mutex);
    monitor_->stop = true;
  }
  monitor_->wake.notify_all();
  monitor_->thread.join();
  delete monitor_;
}

void Watchdog::arm(const char* phase, std::int64_t step) {
  armed_phase.store(phase, std::memory_order_relaxed);
  armed_step.store(step, std::memory_order_relaxed);
  armed_at_ns.store(now_ns(), std::memory_order_release);
}

void Watchdog::disarm() { armed_at_ns.store(0, std::memory_order_release); }

double Watchdog::grace_seconds(double timeout_seconds) { return std::clamp(timeout_seconds / 10, 2.0, 10.0); }

void Watchdog::monitor() {
  // Checking 20 times per timeout keeps the overshoot at 5 %; at most once a second.
  const auto poll = std::chrono::duration<double>(std::clamp(timeout_seconds_ / 20, 0.01, 1.0));
  std::unique_lock lock(monitor_->mutex);
  while (!monitor_->wake.wait_for(lock, poll, [this] { return monitor_->stop; })) {
    const std::int64_t since = armed_at_ns.load(std::memory_order_acquire);
    if (since == 0) continue;
    const char* phase = armed_phase.load(std::memory_order_relaxed);
    const std::int64_t step = armed_step.load(std::memory_order_relaxed);
    if (armed_at_ns.load(std::memory_order_acquire) != since) continue;  // re-armed meanwhile: look again
    const double waited = static_cast<double>(now_ns() - since) / 1e9;
    if (waited >= timeout_seconds_) fire(phase, step, waited);
  }
}

void Watchdog::record_hosts(const Communicator& comm) const {
  comm.collectively([&] {
    if (comm.is_root()) write_rank_hosts();
  });
}

// Where each rank runs, one line per rank: for people and job scripts
// reading the markers (and a check that ranks landed where intended).
void Watchdog::write_rank_hosts() const {
  std::string text;
  for (const std::string& host : rank_hosts_) text += host + "\n";
  write_file_atomically(rank_hosts_path_, text);
}

void Watchdog::fire(const char* phase, std::int64_t step, double waited_seconds) {
  std::error_code ignored;
  // The job's verdict is out already: this rank was the stalled one, resumed
  // (mpirun sends SIGCONT before it ends a stopped rank). Its marker would
  // make it look live.
  if (fs::exists(fs::path(folder_) / "silent-hosts")) _exit(kExitWatchdog);
  fs::create_directories(folder_, ignored);
  const fs::path marker = fs::path(folder_) / ("rank-" + std::to_string(rank_) + ".json");
  {
    std::ostringstream json;
    json << "{\"rank\": " << rank_ << ", \"host\": \"" << rank_hosts_[static_cast<std::size_t>(rank_)]
         << "\", \"phase\": \"" << phase << "\", \"step\": " << step << ", \"waited_seconds\": " << waited_seconds
         << ", \"timeout_seconds\": " << timeout_seconds_ << ", \"rank_hosts\": [";
    for (std::size_t r = 0; r < rank_hosts_.size(); ++r) json << (r ? ", \"" : "\"") << rank_hosts_[r] << "\"";
    json << "]}\n";
    // Written aside and renamed: a reader never sees half a marker.
    const fs::path temporary = marker.string() + ".tmp";
    std::ofstream(temporary) << json.str() << std::flush;
    fs::rename(temporary, marker, ignored);
  }
  // One rank speaks for the job: the first to create this file.
  const int claim = ::open((fs::path(folder_) / "reported").c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
  const bool first = claim >= 0;
  if (first) ::close(claim);
  // The other live ranks wait in the same collective, armed within a step of
  // this one: give their watchdogs time to report before mpirun ends them.
  std::this_thread::sleep_for(std::chrono::duration<double>(grace_seconds(timeout_seconds_)));
  if (first) {
    // Silent: ranks with no marker. Also ranks stuck in their own work while
    // others waited for them (a marker in kOwnWorkPhase beside a waiting one).
    std::vector<std::string> phases(rank_hosts_.size());
    bool someone_waited = false;
    for (std::size_t r = 0; r < rank_hosts_.size(); ++r) {
      const std::string text = read_text(fs::path(folder_) / ("rank-" + std::to_string(r) + ".json"));
      const auto at = text.find("\"phase\": \"");
      if (at == std::string::npos) continue;
      const auto start = at + 10;
      phases[r] = text.substr(start, text.find('"', start) - start);
      someone_waited = someone_waited || phases[r] != kOwnWorkPhase;
    }
    std::set<std::string> silent_hosts;
    std::string silent_ranks;
    for (std::size_t r = 0; r < rank_hosts_.size(); ++r) {
      if (!phases[r].empty() && !(someone_waited && phases[r] == kOwnWorkPhase)) continue;
      silent_hosts.insert(rank_hosts_[r]);
      silent_ranks += (silent_ranks.empty() ? "" : ", ") + std::to_string(r) + " on " + rank_hosts_[r];
    }
    // Stalled in set-up, before record_hosts: the job script probes these hosts.
    if (!fs::exists(rank_hosts_path_)) {
      try {
        write_rank_hosts();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "dptrain: watchdog: %s\n", e.what());
      }
    }
    {
      std::ofstream hosts(fs::path(folder_) / "silent-hosts");
      for (const std::string& host : silent_hosts) hosts << host << "\n";
    }
    std::fflush(stdout);
    std::fprintf(stderr,
                 "dptrain: error: watchdog: rank %d on %s waited %.1f s (--watchdog-seconds %g) in %s of step %lld; "
                 "%s%s; ending the job with exit code %d\n",
                 rank_, rank_hosts_[static_cast<std::size_t>(rank_)].c_str(), waited_seconds, timeout_seconds_, phase,
                 static_cast<long long>(step),
                 silent_ranks.empty() ? "every rank reported" : "silent ranks: ", silent_ranks.c_str(), kExitWatchdog);
  }
  std::fflush(stdout);
  std::fflush(stderr);
  _exit(kExitWatchdog);
}

}  // namespace dptrain
