#include "dptrain/train/training_data.hpp"

#include <unistd.h>

#include <cstdio>

#include "dptrain/error.hpp"
#include "dptrain/util/json.hpp"
#include "dptrain/util/sha256.hpp"

namespace dptrain {
namespace {

std::string rows_json(const Shard& shard) {
  std::vector<std::string> ranges;
  for (const Shard::Rows& r : shard.rows()) ranges.push_back(json_array(std::vector<std::int64_t>{r.first, r.count}));
  return json_array(ranges);
}

// The labels a rank holds, as little-endian int32 in its order: a test can
// hash the file's rows of the reported ranges and compare.
std::string labels_sha256(const Shard& shard) {
  Sha256 hash;
  const auto labels = shard.labels();
  hash.update({reinterpret_cast<const std::uint8_t*>(labels.data()), labels.size_bytes()});
  return hash.hex_digest();
}

std::string host_name() {
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  return name;
}

}  // namespace

TrainingData::TrainingData(const Communicator& comm, const TrainConfig& config) : comm_(comm) {
  comm_.collectively([&] {
    if (config.batch_size < comm_.size()) {
      throw Error("--batch-size " + std::to_string(config.batch_size) + " is smaller than the " +
                  std::to_string(comm_.size()) + " ranks: some ranks would have no sample in any batch");
    }
    const std::int64_t samples = split_size(config.data, "train");
    if (samples < config.batch_size) {
      throw Error(config.data + ": /train holds " + std::to_string(samples) + " samples, fewer than --batch-size " +
                  std::to_string(config.batch_size));
    }
    if (std::min(config.shards, samples) < comm_.size()) {
      throw Error("--shards " + std::to_string(std::min(config.shards, samples)) + " is smaller than the " +
                  std::to_string(comm_.size()) + " ranks: every rank needs at least one shard (use --shards " +
                  std::to_string(comm_.size()) + " or more, a multiple of the ranks balances best)");
    }
    // A shard holds at least one sample: a small file gets one shard a sample.
    const ShardLayout layout(samples, std::min(config.shards, samples));
    train_.emplace(read_shards(config.data, "train", layout, layout.owned(comm_.rank(), comm_.size()), comm_.handle(),
                               config.arch.inputs(), config.arch.outputs()));
    batches_.emplace(layout, config.batch_size, comm_.rank(), comm_.size());
  });
  // A phase of its own: a rank whose training rows failed their checks must
  // not leave the others alone in the collective open of the test split.
  comm_.collectively([&] { test_.emplace(config.data, "test", config.arch, comm_, config.shards); });
  comm_.collectively([&] {
    if (comm_.is_root()) sha256_ = sha256_of_file(config.data);
  });
  comm_.broadcast(sha256_);
  max_bytes_read_ = comm_.max(train_->bytes_read() + test_->shard().bytes_read());
}

std::string TrainingData::report_json() const {
  JsonObject mine;
  mine.add("rank", comm_.rank()).add("host", host_name());
  for (const auto& [split, shard] :
       {std::pair<const char*, const Shard*>{"train", &*train_}, {"test", &test_->shard()}}) {
    JsonObject part;
    part.add_raw("rows", rows_json(*shard));
    part.add("bytes_selected", shard->bytes_selected()).add("bytes_read", shard->bytes_read());
    part.add("labels_sha256", labels_sha256(*shard));
    mine.add(split, part);
  }
  const std::vector<std::string> ranks = comm_.gather(mine.str());
  JsonObject all;
  all.add("shards", batches_->layout().shards()).add("batch_size", batches_->batch());
  all.add_raw("ranks", json_array(ranks));
  return all.str();
}

std::string TrainingData::summary() const {
  char line[160];
  std::snprintf(line, sizeof line, "%lld shards, %zu-%zu per rank; reads %.1f MB per rank at most",
                static_cast<long long>(batches_->layout().shards()),
                static_cast<std::size_t>(batches_->layout().shards() / comm_.size()),
                static_cast<std::size_t>((batches_->layout().shards() + comm_.size() - 1) / comm_.size()),
                static_cast<double>(max_bytes_read_) / 1e6);
  return line;
}

}  // namespace dptrain
