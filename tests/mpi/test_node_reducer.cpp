// The shared-memory reduction against explicit sums: floats equal a
// left-to-right sum in rank order, bit for bit; 64-bit integers equal
// MPI_Allreduce and are the same however ranks are grouped into nodes
// (fake nodes of k consecutive ranks stand for a cluster on this machine).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "dptrain/comm/communicator.hpp"
#include "dptrain/comm/node_reducer.hpp"
#include "dptrain/util/random.hpp"

namespace dptrain {
namespace {

const Communicator& world() {
  static const Communicator comm(MPI_COMM_WORLD);
  return comm;
}

// Rank r's values at a step: floats spread over many magnitudes, so that the
// order of a sum shows in its last bits.
std::vector<float> float_values(int rank, int step, std::size_t count) {
  Rng rng(static_cast<std::uint64_t>(step), 1000 + static_cast<std::uint64_t>(rank));
  std::vector<float> v(count);
  for (float& x : v) x = static_cast<float>((rng.uniform() - 0.5) * std::pow(10.0, 6.0 * rng.uniform() - 3.0));
  return v;
}

std::vector<std::int64_t> integer_values(int rank, int step, std::size_t count) {
  Rng rng(static_cast<std::uint64_t>(step), 2000 + static_cast<std::uint64_t>(rank));
  std::vector<std::int64_t> v(count);
  // Fixed-point gradients: large magnitudes of either sign, far from overflowing a sum of 4.
  for (std::int64_t& x : v) x = static_cast<std::int64_t>((rng.uniform() - 0.5) * 9.0e17);
  return v;
}

// ((v_first + v_first+1) + ...) + v_last, element by element.
std::vector<float> sum_in_rank_order(int first, int last, int step, std::size_t count) {
  std::vector<float> sum = float_values(first, step, count);
  for (int r = first + 1; r <= last; ++r) {
    const std::vector<float> v = float_values(r, step, count);
    for (std::size_t i = 0; i < count; ++i) sum[i] += v[i];
  }
  return sum;
}

bool bitwise_equal(std::span<const float> a, std::span<const float> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size_bytes()) == 0;
}

// Sizes: less than a cache line, not a multiple of one, and several slices of blocks.
constexpr std::size_t kCounts[] = {1, 7, 4099, 70001};

TEST(NodeReducer, FloatSumIsTheLeftToRightSumInRankOrderBitForBit) {
  for (const NodeSync sync : {NodeSync::flags, NodeSync::barrier}) {
    for (const std::size_t count : kCounts) {
      NodeReducer<float> reducer(world(), count, sync, world().size());  // one node holding every rank
      ASSERT_EQ(reducer.nodes(), 1);
      for (int step = 0; step < 3; ++step) {  // the segment is reused step after step
        const std::vector<float> mine = float_values(world().rank(), step, count);
        std::copy(mine.begin(), mine.end(), reducer.local().begin());
        const std::span<const float> sum = reducer.finish();
        EXPECT_TRUE(bitwise_equal(sum, sum_in_rank_order(0, world().size() - 1, step, count)))
            << count << " values, step " << step << ", sync " << static_cast<int>(sync);
      }
    }
  }
}

TEST(NodeReducer, FloatSumOverTwoFakeNodesAddsTheTwoNodeSums) {
  const int size = world().size();
  const int per_node = (size + 1) / 2;  // 2 ranks: 1 + 1; 3: 2 + 1; 4: 2 + 2
  for (const NodeSync sync : {NodeSync::flags, NodeSync::barrier}) {
    NodeReducer<float> reducer(world(), 4099, sync, per_node);
    ASSERT_EQ(reducer.nodes(), size == 1 ? 1 : 2);
    for (int step = 0; step < 3; ++step) {
      const std::vector<float> mine = float_values(world().rank(), step, 4099);
      std::copy(mine.begin(), mine.end(), reducer.local().begin());
      std::vector<float> expected = sum_in_rank_order(0, std::min(per_node, size) - 1, step, 4099);
      if (size > 1) {  // two addends: the same float in either order, whatever MPI does
        const std::vector<float> second = sum_in_rank_order(per_node, size - 1, step, 4099);
        for (std::size_t i = 0; i < expected.size(); ++i) expected[i] += second[i];
      }
      EXPECT_TRUE(bitwise_equal(reducer.finish(), expected)) << "step " << step;
    }
  }
}

TEST(NodeReducer, IntegerSumsEqualMpiAllreduceOnAnyGroupingIntoNodes) {
  const std::size_t count = 4099 + 2;  // gradients, then the loss and stop count riding at the end
  for (const int per_node : {1, 2, 3, world().size()}) {
    for (const NodeSync sync : {NodeSync::flags, NodeSync::barrier}) {
      NodeReducer<std::int64_t> reducer(world(), count, sync, per_node);
      EXPECT_EQ(reducer.nodes(), (world().size() + per_node - 1) / per_node);
      for (int step = 0; step < 3; ++step) {
        std::vector<std::int64_t> mine = integer_values(world().rank(), step, count);
        mine[count - 1] = world().rank() == 1 ? 1 : 0;  // a stop request from rank 1 only
        std::copy(mine.begin(), mine.end(), reducer.local().begin());
        std::vector<std::int64_t> expected = mine;
        MPI_Allreduce(MPI_IN_PLACE, expected.data(), static_cast<int>(count), MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
        const std::span<const std::int64_t> sum = reducer.finish();
        EXPECT_TRUE(std::equal(sum.begin(), sum.end(), expected.begin(), expected.end()))
            << per_node << " ranks per node, step " << step;
        EXPECT_EQ(sum[count - 1], world().size() > 1 ? 1 : 0);
      }
    }
  }
}

TEST(NodeReducer, TwoNodesOfTwoEqualOneNodeOfFourAndOneRank) {
  // Integer-valued floats sum exactly in any order, as 64-bit integers do:
  // the groupings must agree bit for bit, and with a rank alone.
  const std::size_t count = 1000;
  std::vector<float> mine(count);
  for (std::size_t i = 0; i < count; ++i) mine[i] = static_cast<float>((world().rank() + 1) * 1000 + i);
  std::vector<float> alone_expected(count);
  for (std::size_t i = 0; i < count; ++i) {
    for (int r = 0; r < world().size(); ++r) alone_expected[i] += static_cast<float>((r + 1) * 1000 + i);
  }
  std::vector<std::vector<float>> sums;
  for (const int per_node : {world().size(), 2, 1}) {
    NodeReducer<float> reducer(world(), count, NodeSync::flags, per_node);
    std::copy(mine.begin(), mine.end(), reducer.local().begin());
    const std::span<const float> sum = reducer.finish();
    sums.emplace_back(sum.begin(), sum.end());
  }
  EXPECT_EQ(sums[0], alone_expected);
  EXPECT_EQ(sums[1], sums[0]);
  EXPECT_EQ(sums[2], sums[0]);
}

// Adds each slice it is given into the shared state: an index given twice, or
// not at all, or before its sum is final, leaves the wrong total.
class AddIntoSharedState final : public SliceConsumer<float> {
 public:
  AddIntoSharedState(std::span<float> shared, std::size_t stored_from) : shared_(shared), stored_from_(stored_from) {}
  void consume(std::size_t begin, std::size_t end, const float* block) override {
    for (std::size_t i = begin; i < end; ++i) shared_[i] += block[i - begin];
  }
  std::size_t stored_from() const override { return stored_from_; }

 private:
  std::span<float> shared_;
  std::size_t stored_from_;
};

TEST(NodeReducer, EachSliceIsConsumedOnceOnEveryNodeWithItsFinalSumAndSeenByAll) {
  // Integer-valued floats, so that sums are exact in any grouping.
  const auto value = [](int rank, int step, std::size_t i) {
    return static_cast<float>(((rank + 1) * 7919 + step * 104729 + static_cast<int>(i)) % 2001 - 1000);
  };
  for (const std::size_t count : kCounts) {
    // The trainer's consumer stores only the loss and the stop flag (the last two values).
    for (const std::size_t stored_from : {std::size_t{0}, count - std::min<std::size_t>(count, 2), count}) {
      for (const int per_node : {world().size(), (world().size() + 1) / 2, 1}) {
        NodeReducer<float> reducer(world(), count, NodeSync::flags, per_node, count);
        const std::vector<float> start(count, 0.5f);
        reducer.share(0, start);
        AddIntoSharedState add(reducer.shared_state(), stored_from);
        std::vector<float> expected = start, sum(count);
        const std::string where = std::to_string(count) + " values stored from " + std::to_string(stored_from) +
                                  ", nodes of " + std::to_string(per_node) + " ranks, step ";
        for (int step = 0; step < 3; ++step) {
          for (std::size_t i = 0; i < count; ++i) {
            reducer.local()[i] = value(world().rank(), step, i);
            sum[i] = 0.0f;
            for (int r = 0; r < world().size(); ++r) sum[i] += value(r, step, i);
            expected[i] += sum[i];
          }
          const std::span<const float> stored = reducer.finish(&add).subspan(stored_from);
          EXPECT_TRUE(bitwise_equal(stored, std::span<const float>(sum).subspan(stored_from))) << where << step;
          EXPECT_TRUE(bitwise_equal(reducer.shared_state(), expected)) << where << step;
        }
      }
    }
  }
}

}  // namespace
}  // namespace dptrain
