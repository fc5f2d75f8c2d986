#include "dptrain/train/run_folder.hpp"

#include <cstdio>
#include <filesystem>

#include "dptrain/error.hpp"

namespace dptrain {
namespace fs = std::filesystem;

RunFolder::RunFolder(const Communicator& comm, const TrainConfig& config) : comm_(comm), config_(config) {}

std::string RunFolder::checkpoint_folder() const { return (fs::path(config_.run_dir) / "checkpoints").string(); }

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

void RunFolder::prepare() {
  comm_.collectively([&] {
    if (!comm_.is_root()) return;
    fs::create_directories(checkpoint_folder());
    remove_stale_temporaries(checkpoint_folder());
    const std::string metrics_path = (fs::path(config_.run_dir) / "metrics.jsonl").string();
    metrics_.open(metrics_path, std::ios::app);
    if (!metrics_) throw Error(metrics_path + ": cannot open for writing");
  });
  write_text("config.ini", config_.to_ini());
}

void RunFolder::write_text(const std::string& name, const std::string& text) const {
  comm_.collectively([&] {
    if (!comm_.is_root()) return;
    const std::string path = (fs::path(config_.run_dir) / name).string();
    std::ofstream file(path);
    file << text << std::flush;
    if (!file) throw Error(path + ": cannot write");
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
    prune_checkpoints(folder, config_.keep_checkpoints);
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
