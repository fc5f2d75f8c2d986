#include "dptrain/io/checkpoint.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "dptrain/error.hpp"
#include "dptrain/util/hdf5.hpp"
#include "dptrain/util/test_hooks.hpp"  // test hook (issue 11)
#include "dptrain/util/text.hpp"

namespace dptrain {
namespace fs = std::filesystem;
namespace {

void fsync_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags);
  if (fd < 0) throw Error(path + ": cannot open to sync: " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  if (rc != 0) throw Error(path + ": fsync failed: " + std::strerror(saved));
}

std::string folder_of(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  return parent.empty() ? "." : parent.string();
}

std::string temporary_name(const std::string& path) {
  const fs::path p(path);
  return (fs::path(folder_of(path)) / ("." + p.filename().string() + ".tmp-" + std::to_string(::getpid()))).string();
}

std::string trim(const std::string& text) {
  const std::size_t first = text.find_first_not_of(" \t\r");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t\r") - first + 1);
}

std::string layer_name(std::size_t i) { return "layer_" + std::to_string(i); }

// Every file stores W as [out x in], whatever the layout in memory
// (LayerSlice::input_major): an input-major layer goes through a copy.
void write_layers(hid_t group, const Mlp& model, std::span<const float> buffer, const std::string& file) {
  std::vector<float> transposed;
  for (std::size_t i = 0; i < model.layers().size(); ++i) {
    const LayerSlice& l = model.layers()[i];
    const float* weight = buffer.data() + l.weight_offset;
    if (l.input_major) {
      transposed.resize(static_cast<std::size_t>(l.out) * l.in);
      for (int o = 0; o < l.out; ++o)
        for (int k = 0; k < l.in; ++k)
          transposed[static_cast<std::size_t>(o) * l.in + k] = buffer[l.weight_index(o, k)];
      weight = transposed.data();
    }
    h5::Handle layer = h5::create_group(group, layer_name(i), file);
    h5::write_dataset(layer, "weight", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE,
                      {static_cast<hsize_t>(l.out), static_cast<hsize_t>(l.in)}, weight, 0, file);
    h5::write_dataset(layer, "bias", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, {static_cast<hsize_t>(l.out)},
                      buffer.data() + l.bias_offset, 0, file);
  }
}

// Opens group/layer_<i>/{weight,bias} for every layer and checks type,
// shape and stored size against the architecture, before any is read.
void check_layer_datasets(hid_t file, const std::vector<LayerSlice>& layout, const std::string& group,
                          const std::string& path) {
  for (std::size_t i = 0; i < layout.size(); ++i) {
    const LayerSlice& l = layout[i];
    const std::string name = group + "/" + layer_name(i);
    h5::require_checksummed_path(file, name + "/weight", path);
    h5::require_checksummed_path(file, name + "/bias", path);
    h5::check_float32_dataset(file, name + "/weight", {static_cast<hsize_t>(l.out), static_cast<hsize_t>(l.in)}, path);
    h5::check_float32_dataset(file, name + "/bias", {static_cast<hsize_t>(l.out)}, path);
  }
}

std::vector<float> read_layers(hid_t group, const std::vector<LayerSlice>& layout, std::size_t parameter_count,
                               const std::string& where, const std::string& file) {
  std::vector<float> buffer(parameter_count);
  for (std::size_t i = 0; i < layout.size(); ++i) {
    const LayerSlice& l = layout[i];
    const std::string name = where + "/" + layer_name(i);
    const std::vector<float> w =
        h5::read_floats(group, name + "/weight", {static_cast<hsize_t>(l.out), static_cast<hsize_t>(l.in)}, file);
    const std::vector<float> b = h5::read_floats(group, name + "/bias", {static_cast<hsize_t>(l.out)}, file);
    // Training ends at a non-finite loss and saves nothing after it, so a
    // NaN or infinity here is damage (or an edit), not a state to resume.
    for (const auto& [values, dataset] : {std::pair{&w, "/weight"}, std::pair{&b, "/bias"}}) {
      const auto bad = std::find_if(values->begin(), values->end(), [](float v) { return !std::isfinite(v); });
      if (bad != values->end()) {
        throw Error(file + ": " + name + dataset + " holds " + format_number(*bad) + " at index " +
                    std::to_string(bad - values->begin()) + ", expected finite values (damaged or edited)");
      }
    }
    // read_floats returned exactly the checked shape, so both fit their slices
    // (W [out x in] in the file, placed in the layer's layout in memory).
    for (int o = 0; o < l.out; ++o)
      for (int k = 0; k < l.in; ++k) buffer[l.weight_index(o, k)] = w[static_cast<std::size_t>(o) * l.in + k];
    std::copy(b.begin(), b.end(), buffer.begin() + static_cast<std::ptrdiff_t>(l.bias_offset));
  }
  return buffer;
}

// The saved configuration's key = value lines (Boost.Program_options' INI
// syntax: # comments, [section] prefixes). A key given twice is an error, as
// it is for the parser that reads the same text on --resume.
std::map<std::string, std::string> saved_settings(const std::string& text, const std::string& path) {
  std::map<std::string, std::string> settings;
  std::istringstream in(text);
  std::string line, prefix;
  for (int number = 1; std::getline(in, line); ++number) {
    line = trim(line.substr(0, line.find('#')));
    if (line.empty()) continue;
    if (line.front() == '[' && line.back() == ']') {
      prefix = trim(line.substr(1, line.size() - 2)) + ".";
      continue;
    }
    const std::size_t equals = line.find('=');
    if (equals == std::string::npos) {
      throw Error(path + ": attribute config, line " + std::to_string(number) + ": expected key = value, found '" +
                  line.substr(0, 64) + "'");
    }
    const std::string key = prefix + trim(line.substr(0, equals));
    if (!settings.emplace(key, trim(line.substr(equals + 1))).second) {
      throw Error(path + ": attribute config sets " + key + " twice");
    }
  }
  return settings;
}

// Checks the saved configuration against the attributes: the INI is what
// --resume fills unset options from, the attributes what the parameters were
// shaped and trained by. They must say the same.
class ConfigCrossCheck {
 public:
  ConfigCrossCheck(const std::string& config, const std::string& path)
      : settings_(saved_settings(config, path)), path_(path) {}

  void text(const std::string& key, const std::string& attribute, const std::string& stored,
            std::string (*normalise)(const std::string&) = nullptr) {
    const std::string& saved = value(key, attribute, stored);
    const std::string given = normalise ? normalise(saved) : saved;
    if (given != stored) mismatch(key, saved, attribute, stored);
  }

  void number(const std::string& key, const std::string& attribute, double stored) {
    const std::string& saved = value(key, attribute, format_number(stored));
    char* end = nullptr;
    const double given = std::strtod(saved.c_str(), &end);
    const bool parsed = !saved.empty() && end == saved.c_str() + saved.size();
    // The INI holds 17 significant digits of the same double (or float): equal up to rounding.
    if (!parsed || !(std::abs(given - stored) <= 1e-9 * std::max(1.0, std::abs(stored)))) {
      mismatch(key, saved, attribute, format_number(stored));
    }
  }

  void flag(const std::string& key, const std::string& attribute, bool stored) {
    const std::string& saved = value(key, attribute, stored ? "true" : "false");
    static const std::set<std::string> yes = {"true", "1", "yes", "on"}, no = {"false", "0", "no", "off"};
    if (!(stored ? yes : no).contains(saved)) mismatch(key, saved, attribute, stored ? "true" : "false");
  }

 private:
  const std::string& value(const std::string& key, const std::string& attribute, const std::string& stored) {
    const auto found = settings_.find(key);
    if (found == settings_.end()) {
      throw Error(path_ + ": attribute config (the saved configuration) lacks " + key + ", which " + attribute +
                  " gives as " + stored);
    }
    return found->second;
  }

  [[noreturn]] void mismatch(const std::string& key, const std::string& saved, const std::string& attribute,
                             const std::string& stored) const {
    throw Error(path_ + ": attribute config (the saved configuration) says " + key + " = " + saved.substr(0, 64) +
                ", but " + attribute + " is " + stored + ": the checkpoint contradicts itself (edited or damaged)");
  }

  std::map<std::string, std::string> settings_;
  std::string path_;
};

std::string normalise_layers(const std::string& text) {
  try {
    return Architecture{parse_layers(text)}.layers_string();
  } catch (const Error&) {
    return text;  // reported as a mismatch, with the text as saved
  }
}

void cross_check_config(const Checkpoint& c, const std::string& path) {
  ConfigCrossCheck check(c.config, path);
  check.text("layers", "/model attribute layers", c.arch.layers_string(), normalise_layers);
  check.text("activation", "/model attribute activation", to_string(c.arch.hidden));
  check.text("output", "/model attribute output", to_string(c.arch.output));
  check.text("loss", "/model attribute loss", to_string(c.arch.loss));
  const OptimizerSettings& o = c.optimizer;
  check.number("lr", "/optimizer attribute lr", o.lr);
  check.number("momentum", "/optimizer attribute momentum", o.sgd.momentum);
  check.flag("nesterov", "/optimizer attribute nesterov", o.sgd.nesterov);
  check.number("weight-decay", "/optimizer attribute weight_decay", o.sgd.weight_decay);
  check.text("lr-schedule", "/optimizer attribute lr_schedule", to_string(o.schedule));
  check.number("warmup-epochs", "/optimizer attribute warmup_epochs", o.warmup_epochs);
  check.number("lr-step-epochs", "/optimizer attribute lr_step_epochs", o.lr_step_epochs);
  check.number("lr-gamma", "/optimizer attribute lr_gamma", o.lr_gamma);
  const Progress& p = c.progress;
  check.number("batch-size", "/progress attribute batch_size", static_cast<double>(p.batch_size));
  check.number("seed", "/progress attribute seed", static_cast<double>(p.seed));
  check.flag("shuffle", "/progress attribute shuffle", p.shuffle);
  if (p.shards > 0) check.number("shards", "/progress attribute shards", static_cast<double>(p.shards));
  check.text("data", "/progress attribute data_file", p.data_file);
}

void write_contents(hid_t file, const std::string& path, const Mlp& model, const Sgd& optimizer,
                    const OptimizerSettings& settings, const Progress& progress, const std::string& config) {
  h5::write_attribute(file, "config", config);

  h5::Handle m = h5::create_group(file, "/model", path);
  h5::write_attribute(m, "format", std::string("dptrain-checkpoint"));
  h5::write_attribute(m, "format_version", kCheckpointFormatVersion);
  const Architecture& arch = model.arch();
  h5::write_attribute(m, "layers", std::vector<std::int64_t>(arch.layers.begin(), arch.layers.end()));
  h5::write_attribute(m, "activation", to_string(arch.hidden));
  h5::write_attribute(m, "output", to_string(arch.output));
  h5::write_attribute(m, "loss", to_string(arch.loss));
  write_layers(m, model, model.params(), path);

  h5::Handle o = h5::create_group(file, "/optimizer", path);
  h5::write_attribute(o, "type", std::string("sgd"));
  h5::write_attribute(o, "lr", settings.lr);
  h5::write_attribute(o, "momentum", static_cast<double>(settings.sgd.momentum));
  h5::write_attribute(o, "weight_decay", static_cast<double>(settings.sgd.weight_decay));
  h5::write_attribute(o, "nesterov", std::int64_t{settings.sgd.nesterov});
  h5::write_attribute(o, "lr_schedule", to_string(settings.schedule));
  h5::write_attribute(o, "warmup_epochs", settings.warmup_epochs);
  h5::write_attribute(o, "lr_step_epochs", settings.lr_step_epochs);
  h5::write_attribute(o, "lr_gamma", settings.lr_gamma);
  if (!optimizer.velocity().empty()) write_layers(o, model, optimizer.velocity(), path);

  h5::Handle p = h5::create_group(file, "/progress", path);
  h5::write_attribute(p, "epochs_done", progress.epochs_done);
  h5::write_attribute(p, "step_in_epoch", progress.step_in_epoch);
  h5::write_attribute(p, "global_step", progress.global_step);
  h5::write_attribute(p, "world_size", progress.world_size);
  h5::write_attribute(p, "batch_size", progress.batch_size);
  h5::write_attribute(p, "shards", progress.shards);
  h5::write_attribute(p, "seed", progress.seed);
  h5::write_attribute(p, "shuffle", std::int64_t{progress.shuffle});
  h5::write_attribute(p, "data_file", progress.data_file);
  h5::write_attribute(p, "data_sha256", progress.data_sha256);
  h5::write_attribute(p, "epoch_loss_sum", progress.epoch_loss_sum);
  h5::write_attribute(p, "epoch_seconds", progress.epoch_seconds);
}

}  // namespace

void write_checkpoint(const std::string& path, const Mlp& model, const Sgd& optimizer,
                      const OptimizerSettings& settings, const Progress& progress, const std::string& config) {
  const std::string temporary = temporary_name(path);
  try {
    {
      h5::Handle file = h5::create_checksummed_file(temporary);
      write_contents(file, path, model, optimizer, settings, progress, config);
      h5::flush(file, temporary);
      file.reset();  // H5Fclose can fail on a full disk too; the fsync below then fails
    }
    fsync_path(temporary, O_RDONLY);
    test_hooks::pause_if_requested("DPTRAIN_TEST_PAUSE_IN_CHECKPOINT_WRITE");  // test hook (issue 11)
    if (std::rename(temporary.c_str(), path.c_str()) != 0) {
      throw Error(path + ": cannot rename the checkpoint into place: " + std::strerror(errno));
    }
    fsync_path(folder_of(path), O_RDONLY | O_DIRECTORY);
  } catch (...) {
    std::error_code ignored;
    fs::remove(temporary, ignored);
    throw;
  }
}

std::vector<std::string> checkpoint_files(const std::string& folder) {
  std::vector<std::string> names;
  std::error_code missing;
  for (const auto& entry : fs::directory_iterator(folder, missing)) {
    const std::string name = entry.path().filename().string();
    const bool checkpoint = (name.starts_with("epoch-") || name.starts_with("step-")) && name.ends_with(".h5");
    if (checkpoint && entry.is_regular_file()) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

void prune_checkpoints(const std::string& folder, std::int64_t keep, const std::string& newest) {
  if (keep <= 0) return;
  // Ordered by the step each holds, not by modification time: times tie on
  // file systems with coarse clocks (and a tie put step-* files after the
  // epoch-* file just written), and a clock that steps back or a copy of the
  // folder reorders them. The newest file, latest.h5's target, always stays.
  std::vector<std::pair<std::int64_t, std::string>> others;
  for (const std::string& name : checkpoint_files(folder)) {
    if (name == newest) continue;
    try {
      others.emplace_back(checkpoint_global_step((fs::path(folder) / name).string()), name);
    } catch (const Error&) {
      // A file that does not read as a checkpoint is not this run's to delete.
    }
  }
  std::sort(others.begin(), others.end(), std::greater<>());
  for (std::size_t i = static_cast<std::size_t>(keep) - 1; i < others.size(); ++i)
    fs::remove(fs::path(folder) / others[i].second);
}

void remove_stale_temporaries(const std::string& folder) {
  for (const auto& entry : fs::directory_iterator(folder)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(".") && name.find(".tmp-") != std::string::npos) fs::remove(entry.path());
  }
}

void point_link_atomically(const std::string& link, const std::string& target) {
  const std::string temporary = temporary_name(link);
  std::error_code ignored;
  fs::remove(temporary, ignored);
  if (::symlink(target.c_str(), temporary.c_str()) != 0) {
    throw Error(link + ": cannot create link: " + std::strerror(errno));
  }
  if (std::rename(temporary.c_str(), link.c_str()) != 0) {
    const int saved = errno;
    fs::remove(temporary, ignored);
    throw Error(link + ": cannot replace link: " + std::strerror(saved));
  }
  fsync_path(folder_of(link), O_RDONLY | O_DIRECTORY);
}

namespace {

h5::Handle open_checkpoint_file(const std::string& path) {
  // libhdf5 1.10.8 overruns buffers on some malformed metadata (fuzz_checkpoint
  // found one in its attribute decoder). Checkpoints are written with
  // checksummed metadata, which HDF5 verifies before decoding: a file without
  // them is refused before HDF5 parses any of it.
  const int superblock = h5::superblock_version(path);
  if (superblock < kCheckpointMinSuperblock) {
    throw Error(path + ": HDF5 superblock version " + std::to_string(superblock) + ", expected " +
                std::to_string(kCheckpointMinSuperblock) +
                " or later: checkpoints are written with checksummed metadata (HDF5 1.10 format), and files "
                "without it are not parsed (h5repack --low=2 --high=2 OLD NEW rewrites one)");
  }
  // A v2 superblock checksums only itself: every object header on the way to
  // what is read is checked to be a checksummed one too, before HDF5 decodes it.
  h5::require_checksummed_root(path);
  return h5::open_file(path);
}

}  // namespace

std::int64_t checkpoint_global_step(const std::string& path) {
  h5::Handle file = open_checkpoint_file(path);
  h5::require_checksummed_path(file, "/progress", path);
  h5::Handle p = h5::open_group(file, "/progress", path);
  return h5::read_int_attribute(p, "global_step", path + ": /progress");
}

Checkpoint read_checkpoint(const std::string& path,
                           const std::function<void(const Checkpoint&)>& before_reading_parameters) {
  h5::Handle file = open_checkpoint_file(path);
  auto open_checked_group = [&](const std::string& name) {
    h5::require_checksummed_path(file, name, path);
    return h5::open_group(file, name, path);
  };
  Checkpoint c;
  if (!h5::exists(file, "/model")) throw Error(path + ": not a dptrain checkpoint (group /model is missing)");
  h5::Handle m = open_checked_group("/model");
  const std::string format = h5::read_string_attribute(m, "format", path + ": /model");
  if (format != "dptrain-checkpoint") {
    throw Error(path + ": /model attribute format is '" + format.substr(0, 64) + "', expected 'dptrain-checkpoint'");
  }
  const std::int64_t version = c.format_version = h5::read_int_attribute(m, "format_version", path + ": /model");
  if (version < 1 || version > kCheckpointFormatVersion) {
    throw Error(path + ": checkpoint format_version " + std::to_string(version) +
                " is not supported (this dptrain reads 1.." + std::to_string(kCheckpointFormatVersion) + ")");
  }
  for (std::int64_t n : h5::read_ints_attribute(m, "layers", path + ": /model")) {
    if (n < 1 || n > 1'000'000)
      throw Error(path + ": /model attribute layers holds an invalid size " + std::to_string(n) +
                  ", expected 1..1000000");
    c.arch.layers.push_back(static_cast<int>(n));
  }
  try {
    c.arch.hidden = parse_activation(h5::read_string_attribute(m, "activation", path + ": /model"));
    c.arch.output = parse_activation(h5::read_string_attribute(m, "output", path + ": /model"));
    c.arch.loss = parse_loss(h5::read_string_attribute(m, "loss", path + ": /model"));
    c.arch.validate();
  } catch (const Error& e) {
    throw Error(path + ": /model: " + e.what());
  }
  const std::size_t parameter_count = c.arch.parameter_count();  // at most kMaxParameters: validated

  h5::Handle o = open_checked_group("/optimizer");
  const std::string ow = path + ": /optimizer";
  c.optimizer.lr = h5::read_double_attribute(o, "lr", ow);
  c.optimizer.sgd.momentum = static_cast<float>(h5::read_double_attribute(o, "momentum", ow));
  c.optimizer.sgd.weight_decay = static_cast<float>(h5::read_double_attribute(o, "weight_decay", ow));
  c.optimizer.sgd.nesterov = h5::read_int_attribute(o, "nesterov", ow) != 0;
  try {
    c.optimizer.schedule = parse_schedule(h5::read_string_attribute(o, "lr_schedule", ow));
  } catch (const Error& e) {
    throw Error(ow + " attribute lr_schedule: " + e.what());
  }
  c.optimizer.warmup_epochs = h5::read_double_attribute(o, "warmup_epochs", ow);
  c.optimizer.lr_step_epochs = h5::read_double_attribute(o, "lr_step_epochs", ow);
  c.optimizer.lr_gamma = h5::read_double_attribute(o, "lr_gamma", ow);
  // Parameters (and velocities) are stored uncompressed (check_float32 refuses
  // filters), so they fit in the file: nothing sized by /model attribute
  // layers is allocated before this bound, which ties it to the file's size.
  const bool has_velocity = c.optimizer.sgd.momentum != 0.0f;
  const std::uintmax_t needed = parameter_count * sizeof(float) * (has_velocity ? 2 : 1);
  const std::uintmax_t file_bytes = fs::file_size(path);
  if (needed > file_bytes) {
    throw Error(path + ": /model attribute layers " + c.arch.layers_string() + " means " +
                std::to_string(parameter_count) + " parameters" + (has_velocity ? " and as many velocities" : "") +
                " (" + std::to_string(needed) + " bytes), but the file has only " + std::to_string(file_bytes) +
                " bytes (damaged or edited)");
  }
  const std::vector<LayerSlice> layout = layer_slices(c.arch);

  h5::Handle p = open_checked_group("/progress");
  const std::string pw = path + ": /progress";
  c.progress.epochs_done = h5::read_int_attribute(p, "epochs_done", pw);
  c.progress.step_in_epoch = h5::read_int_attribute(p, "step_in_epoch", pw);
  c.progress.global_step = h5::read_int_attribute(p, "global_step", pw);
  c.progress.world_size = h5::read_int_attribute(p, "world_size", pw);
  c.progress.batch_size = h5::read_int_attribute(p, "batch_size", pw);
  c.progress.shards = h5::has_attribute(p, "shards") ? h5::read_int_attribute(p, "shards", pw) : 0;
  c.progress.seed = h5::read_int_attribute(p, "seed", pw);
  c.progress.shuffle = h5::read_int_attribute(p, "shuffle", pw) != 0;
  c.progress.data_file = h5::read_string_attribute(p, "data_file", pw);
  c.progress.data_sha256 = h5::read_string_attribute(p, "data_sha256", pw);
  // Optional: only a checkpoint taken part-way through an epoch needs them.
  if (h5::has_attribute(p, "epoch_loss_sum"))
    c.progress.epoch_loss_sum = h5::read_double_attribute(p, "epoch_loss_sum", pw);
  if (h5::has_attribute(p, "epoch_seconds"))
    c.progress.epoch_seconds = h5::read_double_attribute(p, "epoch_seconds", pw);
  if (c.progress.epochs_done < 0 || c.progress.global_step < 0 || c.progress.step_in_epoch < 0) {
    throw Error(pw + ": negative progress counters (epochs_done " + std::to_string(c.progress.epochs_done) +
                ", step_in_epoch " + std::to_string(c.progress.step_in_epoch) + ", global_step " +
                std::to_string(c.progress.global_step) + ")");
  }
  if (c.progress.batch_size < 1 || c.progress.world_size < 1) {
    throw Error(pw + ": batch_size " + std::to_string(c.progress.batch_size) + " and world_size " +
                std::to_string(c.progress.world_size) + ", expected both >= 1");
  }
  c.config = h5::read_string_attribute(file, "config", path + ": /");
  c.path = path;
  cross_check_config(c, path);

  // Every dataset is checked against the architecture before any is read.
  check_layer_datasets(file, layout, "/model", path);
  if (has_velocity) check_layer_datasets(file, layout, "/optimizer", path);
  if (before_reading_parameters) before_reading_parameters(c);
  c.params = read_layers(file, layout, parameter_count, "/model", path);
  if (has_velocity) c.velocity = read_layers(file, layout, parameter_count, "/optimizer", path);
  return c;
}

void load_parameters(const Checkpoint& checkpoint, Mlp& model, const std::string& path) {
  if (model.arch() != checkpoint.arch || model.num_params() != checkpoint.params.size()) {
    throw Error(path + ": the checkpoint holds " + std::to_string(checkpoint.params.size()) + " parameters of " +
                checkpoint.arch.layers_string() + ", the network being loaded has " +
                std::to_string(model.num_params()) + " (" + model.arch().layers_string() + ")");
  }
  std::copy(checkpoint.params.begin(), checkpoint.params.end(), model.params().begin());
}

}  // namespace dptrain
