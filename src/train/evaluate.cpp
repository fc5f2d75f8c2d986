#include "dptrain/train/evaluate.hpp"

#include <algorithm>
#include <numeric>

namespace dptrain {
namespace {

Shard read_contiguous_part(const std::string& data, const std::string& split, const Architecture& arch,
                           const Communicator& comm) {
  const std::int64_t samples = split_size(data, split);
  // One "batch" of the whole split: the slicing cuts it into contiguous parts.
  const BatchSlicing slicing(samples, std::max<std::int64_t>(1, samples), comm.size());
  return read_shard(data, split, slicing, comm.rank(), arch.inputs(), arch.outputs());
}

}  // namespace

Evaluator::Evaluator(const std::string& data, const std::string& split, const Architecture& arch,
                     const Communicator& comm)
    : comm_(comm),
      shard_(read_contiguous_part(data, split, arch, comm)),
      workspace_(arch, kRowsPerPass),
      labels_(kRowsPerPass),
      all_rows_(static_cast<std::size_t>(shard_.size())) {
  std::iota(all_rows_.begin(), all_rows_.end(), 0u);
}

EvalResult Evaluator::run(const Mlp& model) const {
  EvalResult local;
  const Architecture& arch = model.arch();
  for (std::int64_t begin = 0; begin < shard_.size(); begin += kRowsPerPass) {
    const int rows = static_cast<int>(std::min<std::int64_t>(kRowsPerPass, shard_.size() - begin));
    const std::span<const std::uint32_t> indices(all_rows_.data() + begin, static_cast<std::size_t>(rows));
    shard_.gather(indices, workspace_.input(rows), labels_);
    const ConstMatrix out = model.forward(workspace_, rows);
    const std::span<const std::int32_t> labels(labels_.data(), static_cast<std::size_t>(rows));
    local.loss_sum += loss_sum(arch.loss, arch.output, out, labels);
    for (int r = 0; r < rows; ++r) {
      const float* row = out.row(r);
      const auto predicted = std::max_element(row, row + out.cols) - row;
      local.correct += predicted == labels[static_cast<std::size_t>(r)] ? 1 : 0;
    }
    local.total += rows;
  }
  std::int64_t counts[2] = {local.correct, local.total};
  comm_.allreduce_sum(std::span<std::int64_t>(counts));
  double loss = local.loss_sum;
  comm_.allreduce_sum(std::span<double>(&loss, 1));
  return {counts[0], counts[1], loss};
}

}  // namespace dptrain
