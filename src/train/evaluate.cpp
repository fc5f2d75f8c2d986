#include "dptrain/train/evaluate.hpp"

#include <algorithm>
#include <limits>
#include <numeric>

#include "dptrain/comm/exact_sum.hpp"
#include "dptrain/util/random.hpp"

namespace dptrain {
namespace {

Shard read_split_shards(const std::string& data, const std::string& split, const Architecture& arch,
                        const Communicator& comm, std::int64_t shards) {
  const ShardLayout layout(split_size(data, split), shards);
  return read_shards(data, split, layout, layout.owned(comm.rank(), comm.size()), comm.handle(), arch.inputs(),
                     arch.outputs());
}

// Per-pass sums, rounded to exact::kStatisticBits, so that the total does not
// depend on which rank summed which passes.
struct ExactStatistics {
  std::int64_t loss = 0;
  std::int64_t top_probability = 0;
  std::int64_t refused = 0;
};

EvalResult empty_result(int classes) {
  EvalResult r;
  r.classes = classes;
  r.confusion.assign(static_cast<std::size_t>(classes) * classes, 0);
  r.predicted.assign(static_cast<std::size_t>(classes), 0);
  return r;
}

// Adds a pass's outputs to `result`; labels may be empty (unlabelled data).
void accumulate(const Architecture& arch, ConstMatrix out, ConstMatrix logits, std::span<const std::int32_t> labels,
                EvalResult& result, ExactStatistics& sums) {
  std::vector<float> probabilities(static_cast<std::size_t>(out.cols));
  if (!labels.empty()) {
    sums.refused +=
        exact::accumulate(loss_sum(arch.loss, arch.output, out, labels, logits), sums.loss, exact::kStatisticBits);
  }
  double top_probability_sum = 0.0;
  for (int r = 0; r < out.rows; ++r) {
    output_probabilities(arch.output, out.row(r), out.cols, probabilities.data());
    const auto top = std::max_element(probabilities.begin(), probabilities.end());
    const int predicted = static_cast<int>(top - probabilities.begin());
    top_probability_sum += *top;
    ++result.predicted[static_cast<std::size_t>(predicted)];
    if (!labels.empty()) {
      const int label = labels[static_cast<std::size_t>(r)];
      ++result.confusion[static_cast<std::size_t>(label) * out.cols + predicted];
      result.correct += predicted == label ? 1 : 0;
    }
    ++result.total;
  }
  sums.refused += exact::accumulate(top_probability_sum, sums.top_probability, exact::kStatisticBits);
}

// Everything is an integer: one allreduce, and the same bits on any number of ranks.
EvalResult sum_over_ranks(const EvalResult& local, const ExactStatistics& sums, const Communicator& comm) {
  std::vector<std::int64_t> counts = {local.correct, local.total, sums.loss, sums.top_probability, sums.refused};
  constexpr std::ptrdiff_t kFixed = 5;
  counts.insert(counts.end(), local.confusion.begin(), local.confusion.end());
  counts.insert(counts.end(), local.predicted.begin(), local.predicted.end());
  comm.allreduce_sum(std::span<std::int64_t>(counts));
  EvalResult total = empty_result(local.classes);
  total.correct = counts[0];
  total.total = counts[1];
  // A loss beyond the exact range (or not finite) is reported as infinite, not clamped.
  total.loss_sum =
      counts[4] > 0 ? std::numeric_limits<double>::infinity() : exact::to_double(counts[2], exact::kStatisticBits);
  total.top_probability_sum = exact::to_double(counts[3], exact::kStatisticBits);
  std::copy_n(counts.begin() + kFixed, total.confusion.size(), total.confusion.begin());
  std::copy_n(counts.begin() + kFixed + static_cast<std::ptrdiff_t>(total.confusion.size()), total.predicted.size(),
              total.predicted.begin());
  return total;
}

}  // namespace

std::int64_t EvalResult::support(int c) const {
  std::int64_t n = 0;
  for (int p = 0; p < classes; ++p) n += count(c, p);
  return n;
}

double EvalResult::precision(int c) const {
  std::int64_t column = 0;
  for (int t = 0; t < classes; ++t) column += count(t, c);
  return ratio(static_cast<double>(count(c, c)), column);
}

double EvalResult::recall(int c) const { return ratio(static_cast<double>(count(c, c)), support(c)); }

void output_probabilities(Activation output, const float* row, int classes, float* probabilities) {
  float total = 0.0f;
  for (int c = 0; c < classes; ++c) total += row[c];
  const float scale = output == Activation::softmax || total <= 0.0f ? 1.0f : 1.0f / total;
  for (int c = 0; c < classes; ++c) probabilities[c] = row[c] * scale;
}

Evaluator::Evaluator(const std::string& data, const std::string& split, const Architecture& arch,
                     const Communicator& comm, std::int64_t shards)
    : comm_(comm),
      shard_(read_split_shards(data, split, arch, comm, shards)),
      workspace_(arch, kRowsPerPass),
      labels_(kRowsPerPass),
      all_rows_(static_cast<std::size_t>(shard_.size())) {
  std::iota(all_rows_.begin(), all_rows_.end(), 0u);
}

EvalResult Evaluator::run(const Mlp& model) const {
  EvalResult local = empty_result(model.arch().outputs());
  ExactStatistics sums;
  std::int64_t shard_begin = 0;
  for (const Shard::Rows& shard : shard_.rows()) {
    // Passes start at each shard's first row: the same GEMMs on any number of ranks.
    for (std::int64_t begin = 0; begin < shard.count; begin += kRowsPerPass) {
      const int rows = static_cast<int>(std::min<std::int64_t>(kRowsPerPass, shard.count - begin));
      const std::span<const std::uint32_t> indices(all_rows_.data() + shard_begin + begin,
                                                   static_cast<std::size_t>(rows));
      shard_.gather(indices, workspace_.input(rows), labels_);
      const ConstMatrix out = model.forward(workspace_, rows);
      accumulate(model.arch(), out, model.logits(workspace_, rows),
                 std::span<const std::int32_t>(labels_.data(), static_cast<std::size_t>(rows)), local, sums);
    }
    shard_begin += shard.count;
  }
  return sum_over_ranks(local, sums, comm_);
}

EvalResult evaluate_noise(const Mlp& model, std::int64_t count, std::uint64_t seed, const Communicator& comm) {
  // One shard per rank.
  const ShardLayout layout(count, comm.size());
  const std::int64_t first = layout.first(comm.rank());
  const std::int64_t mine = layout.size(comm.rank());
  const int rows_per_pass = Evaluator::kRowsPerPass;
  Workspace workspace(model.arch(), rows_per_pass);
  EvalResult local = empty_result(model.arch().outputs());
  ExactStatistics sums;
  for (std::int64_t begin = 0; begin < mine; begin += rows_per_pass) {
    const int rows = static_cast<int>(std::min<std::int64_t>(rows_per_pass, mine - begin));
    Matrix input = workspace.input(rows);
    for (int r = 0; r < rows; ++r) {
      Rng rng(seed, purpose::noise, static_cast<std::uint64_t>(first + begin + r));
      for (int c = 0; c < input.cols; ++c) input(r, c) = static_cast<float>(rng.uniform());
    }
    const ConstMatrix out = model.forward(workspace, rows);
    accumulate(model.arch(), out, model.logits(workspace, rows), {}, local, sums);
  }
  return sum_over_ranks(local, sums, comm);
}

}  // namespace dptrain
