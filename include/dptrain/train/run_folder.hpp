#pragma once
// The run's folder, where a run leaves everything it writes:
//   config.ini       the effective configuration (usable as --config)
//   metrics.jsonl    one JSON line per epoch
//   data.json        which rows each rank read, and how many bytes
//   checkpoints/     epoch-NNNN.h5, step-NNNNNNNNN.h5, latest.h5 -> newest
//   profile/         rank-R.json Chrome traces (--profile)
// Rank 0 writes all but the profiles; the calls are collective so that a
// failure (a full disk, a read-only folder) is an error on every rank.
#include <fstream>
#include <string>

#include "dptrain/comm/communicator.hpp"
#include "dptrain/io/checkpoint.hpp"
#include "dptrain/train/config.hpp"

namespace dptrain {

class RunFolder {
 public:
  RunFolder(const Communicator& comm, const TrainConfig& config);

  std::string checkpoint_folder() const;
  // Creates the folders, clears temporaries a killed writer left, writes
  // config.ini and opens metrics.jsonl for appending. Collective.
  void prepare();
  void write_text(const std::string& name, const std::string& text) const;  // rank 0's text; collective
  void append_metrics(const std::string& json_line);                        // collective
  // Writes `name` atomically, points latest.h5 at it, prunes old ones. Collective.
  void save_checkpoint(const std::string& name, const Mlp& model, const Sgd& optimizer, const Progress& progress);
  void write_profile(const std::string& chrome_trace) const;  // every rank its own; collective

  static std::string epoch_checkpoint_name(std::int64_t epoch);
  static std::string step_checkpoint_name(std::int64_t global_step);  // a stop part-way through an epoch

 private:
  const Communicator& comm_;
  const TrainConfig& config_;
  std::ofstream metrics_;
};

}  // namespace dptrain
