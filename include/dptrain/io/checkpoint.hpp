#pragma once
// Checkpoints: one self-describing HDF5 file per save. The layout is an
// interface for users' own tools and is documented in README.md:
//
//   /                     attribute config: the run's effective configuration (INI);
//                         its architecture, optimizer and progress settings must
//                         agree with the attributes below (read_checkpoint checks)
//   /model                attributes format="dptrain-checkpoint", format_version,
//                         layers (int64[]), activation, output, loss
//   /model/layer_<i>/weight  float32 [out, in];  /model/layer_<i>/bias  float32 [out]
//   /optimizer            attributes type="sgd", lr, momentum, weight_decay, nesterov,
//                         lr_schedule, warmup_epochs, lr_step_epochs, lr_gamma
//   /optimizer/layer_<i>/weight, bias   momentum buffers (when momentum != 0)
//   /progress             attributes epochs_done, step_in_epoch, global_step,
//                         world_size, batch_size, shards, seed, shuffle, data_file, data_sha256,
//                         epoch_loss_sum, epoch_seconds
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dptrain/nn/mlp.hpp"
#include "dptrain/optim/settings.hpp"
#include "dptrain/optim/sgd.hpp"

namespace dptrain {

inline constexpr std::int64_t kCheckpointFormatVersion = 1;

// Checkpoints are HDF5 files in the 1.10 format (superblock version 3),
// whose metadata checksums HDF5 verifies before decoding anything.
inline constexpr int kCheckpointMinSuperblock = 2;

struct Progress {
  std::int64_t epochs_done = 0;
  std::int64_t step_in_epoch = 0;  // steps of epoch epochs_done+1 already taken
  std::int64_t global_step = 0;
  std::int64_t world_size = 1;
  std::int64_t batch_size = 0;
  std::int64_t shards = 0;  // 0: not recorded (checkpoints before shards)
  std::int64_t seed = 0;
  bool shuffle = true;
  std::string data_file;
  std::string data_sha256;
  // The epoch in progress so far (a stop part-way through an epoch), so that
  // its metrics line comes out as if it had not been interrupted.
  double epoch_loss_sum = 0.0;
  double epoch_seconds = 0.0;
};

// What a checkpoint holds, as read back.
struct Checkpoint {
  std::int64_t format_version = kCheckpointFormatVersion;
  Architecture arch;
  std::vector<float> params;  // Mlp layout
  OptimizerSettings optimizer;
  std::vector<float> velocity;  // Mlp layout, empty when momentum == 0
  Progress progress;
  std::string config;
  std::string path;  // the file it was read from, for errors found later
};

// Writes `path` atomically: a temporary file in the same folder, flushed and
// fsync'd, renamed over `path`, and the folder fsync'd. On failure the
// temporary file is removed and whatever was at `path` is untouched.
void write_checkpoint(const std::string& path, const Mlp& model, const Sgd& optimizer,
                      const OptimizerSettings& settings, const Progress& progress, const std::string& config);

// Reads and validates a checkpoint; errors name the file and the field.
// Before anything is allocated or copied: the architecture attributes are
// checked (sizes, kMaxParameters), every parameter dataset's type,
// shape and stored size against that architecture, and the saved INI
// configuration against the /model, /optimizer and /progress attributes.
// before_reading_parameters sees the checkpoint with all but params and
// velocity, once everything else is checked (and may throw, e.g. when the
// network would not fit in memory).
Checkpoint read_checkpoint(const std::string& path,
                           const std::function<void(const Checkpoint&)>& before_reading_parameters = {});

// Copies the checkpoint's parameters into `model`, which must have the
// checkpoint's architecture (an Error naming `path` otherwise, nothing copied).
void load_parameters(const Checkpoint& checkpoint, Mlp& model, const std::string& path);

// The global step a checkpoint was taken at (its /progress attribute
// global_step), read without the parameters.
std::int64_t checkpoint_global_step(const std::string& path);

// The names of a folder's checkpoint files (epoch-*.h5, step-*.h5), sorted;
// none when the folder does not exist.
std::vector<std::string> checkpoint_files(const std::string& folder);

// Keeps `keep` checkpoint files of a folder: `newest` (the one just written,
// whatever the others hold) and the keep-1 others of the highest global step;
// removes the rest. keep = 0 keeps all.
void prune_checkpoints(const std::string& folder, std::int64_t keep, const std::string& newest);

// Removes temporary files that a writer killed mid-write left behind.
void remove_stale_temporaries(const std::string& folder);

// Makes `link` a symbolic link to `target` (a name in the same folder),
// replacing any previous link atomically.
void point_link_atomically(const std::string& link, const std::string& target);

}  // namespace dptrain
