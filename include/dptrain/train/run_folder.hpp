#pragma once
// The run's folder, where a run leaves everything it writes:
//   config.ini       the effective configuration (usable as --config)
//   metrics.jsonl    one JSON line per epoch
//   data.json        which rows each rank read, and how many bytes
//   checkpoints/     epoch-NNNN.h5, step-NNNNNNNNN.h5, latest.h5 -> newest
//   profile/         rank-R.json Chrome traces (--profile)
//   .lock            locked by the run using the folder (fcntl, as NFS supports)
// Rank 0 writes all but the profiles; the calls are collective so that a
// failure (a full disk, a read-only folder) is an error on every rank.
// One folder holds one run: a fresh run refuses a folder that holds an earlier
// run's checkpoints, and a second job refuses a folder that another is using.
#include <cstdint>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>

#include "dptrain/comm/communicator.hpp"
#include "dptrain/io/checkpoint.hpp"
#include "dptrain/train/config.hpp"

namespace dptrain {

// Whether a run that resumes after step `last_step` keeps this line of
// metrics.jsonl (without its newline), so that the file reads as one run: a
// line of an epoch, {"epoch": E, "step": S, ...} as Trainer::finish_epoch
// writes it, only if S <= last_step; a line of any other kind always; an
// epoch's line cut short (a full disk, a kill mid-write) or damaged, never.
// A trailing CR is ignored. (drop_metrics_after also drops a last line
// without its newline, whatever it holds: it was cut short.)
bool metrics_line_kept(std::string_view line, std::int64_t last_step);

class RunFolder {
 public:
  RunFolder(const Communicator& comm, const TrainConfig& config);
  ~RunFolder();
  RunFolder(const RunFolder&) = delete;
  RunFolder& operator=(const RunFolder&) = delete;

  // What --resume auto continues from: RUN_DIR/checkpoints/latest.h5, or ""
  // when the folder holds no checkpoint yet. A latest.h5 whose target is gone,
  // or checkpoints without a latest.h5, are errors, not a fresh start: that
  // would write epoch-0001.h5 onwards over the checkpoints that are left.
  static std::string checkpoint_to_resume(const std::string& run_dir);
  // A run that does not resume must not write into an earlier run's folder:
  // it would overwrite the checkpoints and mix two runs in metrics.jsonl.
  static void require_no_earlier_run(const std::string& run_dir);

  std::string checkpoint_folder() const;
  // Creates the folders, clears temporaries a killed writer left, writes
  // config.ini and opens metrics.jsonl for appending. Collective.
  // `continue_from` is the global step the run trains from (0 when fresh;
  // none when it has nothing to train): metrics.jsonl lines of later steps,
  // from an attempt that ended before its next checkpoint, are dropped, so
  // the file reads as one run.
  void prepare(std::optional<std::int64_t> continue_from);
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
  int lock_fd_ = -1;  // rank 0's, held for the run
};

}  // namespace dptrain
