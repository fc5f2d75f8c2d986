#include "dptrain/train/run_folder.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include "dptrain/error.hpp"
#include "dptrain/util/files.hpp"

namespace dptrain {
namespace fs = std::filesystem;

namespace {

fs::path checkpoints_of(const std::string& run_dir) { return fs::path(run_dir) / "checkpoints"; }

// An fcntl lock, which NFS and Lustre honour (flock is local to a client on
// some of them). The kernel releases it when the process ends, however it ends.
int lock_folder(const std::string& run_dir) {
  const std::string path = (fs::path(run_dir) / ".lock").string();
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(path + ": cannot create the run's lock file: " + std::strerror(errno));
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  if (::fcntl(fd, F_SETLK, &lock) == 0) return fd;
  const int saved = errno;
  struct flock holder {};
  holder.l_type = F_WRLCK;
  holder.l_whence = SEEK_SET;
  const bool known = ::fcntl(fd, F_GETLK, &holder) == 0 && holder.l_type != F_UNLCK;
  ::close(fd);
  if (saved == EACCES || saved == EAGAIN) {
    throw Error("--run-dir " + run_dir + ": in use by another dptrain run" +
                (known ? " (process " + std::to_string(holder.l_pid) + " holds " + path + ")" : "") +
                "; give each run its own --run-dir");
  }
  throw Error(path + ": cannot lock the run folder: " + std::strerror(saved));
}

// The step of a metrics.jsonl line as Trainer::end_epoch writes it, its
// first two fields {"epoch": E, "step": S, ...}; none for any other line.
std::optional<std::int64_t> metrics_line_step(const std::string& line) {
  long long epoch = 0, step = 0;
  char after = 0;
  if (std::sscanf(line.c_str(), "{\"epoch\": %lld, \"step\": %lld%c", &epoch, &step, &after) != 3) return {};
  if (after != ',' && after != '}') return {};
  return step;
}

// Keeps the lines of metrics.jsonl up to step `last_step`; a line without a
// step is kept. Rewritten only if a line goes.
void drop_metrics_after(const std::string& path, std::int64_t last_step) {
  std::ifstream in(path);
  if (!in) return;
  std::string kept, line;
  bool dropped = false;
  while (std::getline(in, line)) {
    const std::optional<std::int64_t> step = metrics_line_step(line);
    if (step && *step > last_step) {
      dropped = true;
      continue;
    }
    kept += line + "\n";
  }
  if (dropped) write_file_atomically(path, kept);
}

}  // namespace

RunFolder::RunFolder(const Communicator& comm, const TrainConfig& config) : comm_(comm), config_(config) {}

RunFolder::~RunFolder() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

std::string RunFolder::checkpoint_to_resume(const std::string& run_dir) {
  const fs::path latest = checkpoints_of(run_dir) / "latest.h5";
  if (fs::is_symlink(latest)) {
    if (!fs::exists(latest)) {
      throw Error(latest.string() + " points to " + fs::read_symlink(latest).string() +
                  ", which is missing: resume from one of the checkpoints left with --resume PATH");
    }
    return latest.string();
  }
  if (fs::exists(latest)) return latest.string();
  const std::vector<std::string> left = checkpoint_files(checkpoints_of(run_dir).string());
  if (!left.empty()) {
    throw Error(checkpoints_of(run_dir).string() + " holds " + std::to_string(left.size()) +
                " checkpoints (the last by name " + left.back() +
                ") but no latest.h5: resume from one of them with --resume PATH");
  }
  return "";
}

void RunFolder::require_no_earlier_run(const std::string& run_dir) {
  const fs::path folder = checkpoints_of(run_dir);
  const bool latest = fs::is_symlink(folder / "latest.h5") || fs::exists(folder / "latest.h5");
  if (latest || !checkpoint_files(folder.string()).empty()) {
    throw Error("--run-dir " + run_dir +
                ": holds the checkpoints of an earlier run; continue it with --resume auto, "
                "or start this one in a new --run-dir");
  }
}

std::string RunFolder::checkpoint_folder() const { return checkpoints_of(config_.run_dir).string(); }

std::string RunFolder::epoch_checkpoint_name(std::int64_t epoch) {
  char name[32];
  std::snprintf(name, sizeof name, "epoch-%04lld.h5", static_cast<long long>(epoch));
  return name;
}

std::string RunFolder::step_checkpoint_name(std::int64_t global_step) {
  char name[32];
  std::snprintf(name, sizeof name, "step-%09lld.h5", static_cast<long long>(global_step));
  return name;
}

void RunFolder::prepare(std::optional<std::int64_t> continue_from) {
  comm_.collectively([&] {
    if (!comm_.is_root()) return;
    fs::create_directories(checkpoint_folder());
    lock_fd_ = lock_folder(config_.run_dir);
    remove_stale_temporaries(checkpoint_folder());
    // Partial files of a writer killed mid-write (the lock says no one writes now).
    for (const auto& entry : fs::directory_iterator(config_.run_dir)) {
      if (entry.path().filename().string().find(kPartialMarker) != std::string::npos) fs::remove(entry.path());
    }
    write_file_atomically((fs::path(config_.run_dir) / "config.ini").string(), config_.to_ini());
    const std::string metrics_path = (fs::path(config_.run_dir) / "metrics.jsonl").string();
    if (continue_from) drop_metrics_after(metrics_path, *continue_from);
    metrics_.open(metrics_path, std::ios::app);
    if (!metrics_) throw Error(metrics_path + ": cannot open for writing");
  });
}

void RunFolder::write_text(const std::string& name, const std::string& text) const {
  comm_.collectively([&] {
    if (!comm_.is_root()) return;
    write_file_atomically((fs::path(config_.run_dir) / name).string(), text);
  });
}

void RunFolder::append_metrics(const std::string& json_line) {
  comm_.collectively([&] {
    if (!comm_.is_root()) return;
    metrics_ << json_line << "\n" << std::flush;
    if (!metrics_) throw Error((fs::path(config_.run_dir) / "metrics.jsonl").string() + ": write failed");
  });
}

void RunFolder::save_checkpoint(const std::string& name, const Mlp& model, const Sgd& optimizer,
                                const Progress& progress) {
  comm_.collectively([&] {
    if (!comm_.is_root()) return;
    const std::string folder = checkpoint_folder();
    write_checkpoint((fs::path(folder) / name).string(), model, optimizer, config_.optimizer, progress,
                     config_.to_ini());
    point_link_atomically((fs::path(folder) / "latest.h5").string(), name);
    prune_checkpoints(folder, config_.keep_checkpoints, name);
  });
}

void RunFolder::write_profile(const std::string& chrome_trace) const {
  comm_.collectively([&] {
    const fs::path folder = fs::path(config_.run_dir) / "profile";
    fs::create_directories(folder);
    const std::string path = (folder / ("rank-" + std::to_string(comm_.rank()) + ".json")).string();
    std::ofstream out(path);
    out << chrome_trace << std::flush;
    if (!out) throw Error(path + ": cannot write the profile");
  });
}

}  // namespace dptrain
