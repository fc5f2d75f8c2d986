#include "dptrain/train/run_folder.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
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

// Keeps the lines of metrics.jsonl that metrics_line_kept keeps; a last line
// without its newline was cut short too. Rewritten only if a line goes.
void drop_metrics_after(const std::string& path, std::int64_t last_step) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return;
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  std::string kept;
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t newline = text.find('\n', at);
    if (newline == std::string::npos) break;  // no newline: cut short
    const std::string_view line(text.data() + at, newline - at);
    if (metrics_line_kept(line, last_step)) kept.append(line).push_back('\n');
    at = newline + 1;
  }
  if (kept.size() != text.size()) write_file_atomically(path, kept);
}

}  // namespace

bool metrics_line_kept(std::string_view line, std::int64_t last_step) {
  if (line.ends_with('\r')) line.remove_suffix(1);  // the file went through a CRLF tool
  constexpr std::string_view epoch_key = "{\"epoch\": ", step_key = ", \"step\": ";
  if (!line.starts_with(epoch_key)) return true;  // not an epoch's line: nothing to compare
  if (line.back() != '}') return false;           // cut short
  const char* p = line.data() + epoch_key.size();
  const char* const end = line.data() + line.size();
  std::int64_t epoch = 0, step = 0;
  auto [after_epoch, epoch_error] = std::from_chars(p, end, epoch);
  const std::string_view rest(after_epoch, static_cast<std::size_t>(end - after_epoch));
  if (epoch_error != std::errc() || !rest.starts_with(step_key)) return false;  // an epoch line, but not one we write
  const auto [after_step, step_error] = std::from_chars(after_epoch + step_key.size(), end, step);
  if (step_error != std::errc() || (*after_step != ',' && *after_step != '}')) return false;
  return step <= last_step;
}

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
