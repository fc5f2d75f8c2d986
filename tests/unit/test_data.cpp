// Data: sharding arithmetic, IDX parsing (good and crafted bad files), and the
// HDF5 layout written by convert and read back shard by shard.
#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <set>
#include <tuple>

#include "dptrain/data/dataset.hpp"
#include "dptrain/error.hpp"
#include "dptrain/util/hdf5.hpp"
#include "dptrain/util/sha256.hpp"
#include "test_files.hpp"

namespace dptrain {
namespace {

TEST(Sharding, ShardsAreContiguousBalancedAndOwnedOnce) {
  for (std::int64_t n : {1, 7, 10, 59, 60, 61, 1000, 60000}) {
    for (std::int64_t shards : {1, 2, 3, 7, 12, 240}) {
      if (shards > n) continue;
      const ShardLayout layout(n, shards);
      std::int64_t next = 0;
      for (std::int64_t s = 0; s < shards; ++s) {
        ASSERT_EQ(layout.first(s), next) << "shards follow each other without gaps";
        ASSERT_GE(layout.size(s), n / shards);
        ASSERT_LE(layout.size(s), n / shards + 1);
        next += layout.size(s);
      }
      ASSERT_EQ(next, n);
      for (int p : {1, 2, 3, 4, 7}) {
        if (p > shards) continue;
        std::vector<int> owners(static_cast<std::size_t>(shards), 0);
        std::size_t fewest = SIZE_MAX, most = 0;
        for (int r = 0; r < p; ++r) {
          const std::vector<std::int64_t> mine = layout.owned(r, p);
          fewest = std::min(fewest, mine.size());
          most = std::max(most, mine.size());
          for (std::int64_t s : mine) ++owners[static_cast<std::size_t>(s)];
        }
        for (int count : owners) ASSERT_EQ(count, 1);
        ASSERT_LE(most - fewest, 1u) << "balanced to within one shard";
      }
    }
  }
}

// Global file rows of every micro-batch of a step, over all ranks, keyed by shard.
using StepRows = std::map<std::int64_t, std::vector<std::int64_t>>;

std::vector<StepRows> epoch_rows(const ShardLayout& layout, std::int64_t batch, int ranks, std::int64_t epoch,
                                 bool shuffle) {
  std::vector<StepRows> steps;
  for (int r = 0; r < ranks; ++r) {
    RankBatches batches(layout, batch, r, ranks);
    batches.start_epoch(42, epoch, shuffle);
    std::vector<std::int64_t> local_to_global;
    for (std::int64_t s : batches.owned_shards())
      for (std::int64_t i = 0; i < layout.size(s); ++i) local_to_global.push_back(layout.first(s) + i);
    steps.resize(static_cast<std::size_t>(batches.steps()));
    std::vector<std::uint32_t> samples(static_cast<std::size_t>(batches.max_rows()));
    std::vector<MicroBatch> micro(static_cast<std::size_t>(batches.max_micro_batches()));
    for (std::int64_t t = 0; t < batches.steps(); ++t) {
      int count = 0;
      const int rows = batches.step_rows(t, samples, micro, count);
      EXPECT_LE(rows, batches.max_rows());
      int covered = 0;
      for (int m = 0; m < count; ++m) {
        const MicroBatch& mb = micro[static_cast<std::size_t>(m)];
        EXPECT_EQ(mb.first_row, covered);
        EXPECT_EQ(ShardLayout::owner(mb.shard, ranks), r);
        auto& rows_of_shard = steps[static_cast<std::size_t>(t)][mb.shard];
        EXPECT_TRUE(rows_of_shard.empty()) << "one micro-batch per shard and step";
        for (int i = 0; i < mb.rows; ++i)
          rows_of_shard.push_back(local_to_global[samples[static_cast<std::size_t>(mb.first_row + i)]]);
        covered += mb.rows;
      }
      EXPECT_EQ(covered, rows);
    }
  }
  return steps;
}

TEST(Sharding, BatchesAndMicroBatchesDoNotDependOnTheRankCount) {
  for (const bool shuffle : {false, true}) {
    for (const auto& [n, batch, shards] : {std::tuple{103, 10, 12}, {60, 7, 5}, {1000, 64, 8}, {50, 3, 24}}) {
      const ShardLayout layout(n, shards);
      const std::vector<StepRows> one = epoch_rows(layout, batch, 1, 2, shuffle);
      // Every sample exactly once per epoch; each batch the right size.
      std::set<std::int64_t> seen;
      for (std::size_t t = 0; t < one.size(); ++t) {
        std::size_t in_batch = 0;
        for (const auto& [shard, rows] : one[t]) {
          in_batch += rows.size();
          for (std::int64_t row : rows) {
            EXPECT_GE(row, layout.first(shard));
            EXPECT_LT(row, layout.first(shard) + layout.size(shard));
            EXPECT_TRUE(seen.insert(row).second);
          }
        }
        EXPECT_EQ(static_cast<std::int64_t>(in_batch),
                  std::min<std::int64_t>(batch, n - static_cast<std::int64_t>(t) * batch));
      }
      EXPECT_EQ(static_cast<std::int64_t>(seen.size()), n);
      for (int p : {2, 3, 4, 5}) {
        if (p > shards) continue;
        EXPECT_EQ(epoch_rows(layout, batch, p, 2, shuffle), one) << n << " " << batch << " " << shards << " on " << p;
      }
      if (shuffle) {
        EXPECT_NE(epoch_rows(layout, batch, 1, 3, true), one) << "each epoch draws a new order";
      }
    }
  }
}

TEST(Sharding, StepsSpreadOverTheRanks) {
  // Batch 10 of 240 shards on 2 ranks: the shards take turns, so each rank has 5 rows of every step.
  const ShardLayout layout(60000, 240);
  for (int r = 0; r < 2; ++r) {
    RankBatches batches(layout, 10, r, 2);
    std::vector<std::uint32_t> samples(static_cast<std::size_t>(batches.max_rows()));
    std::vector<MicroBatch> micro(static_cast<std::size_t>(batches.max_micro_batches()));
    int count = 0;
    for (std::int64_t t : {0, 1, 23, 5999}) EXPECT_EQ(batches.step_rows(t, samples, micro, count), 5);
  }
}

TEST(Idx, RoundTripRawAndGzip) {
  TempDir dir;
  const std::vector<std::uint32_t> dims = {3, 2, 2};
  const std::vector<std::uint8_t> data = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255};
  const std::vector<std::uint8_t> bytes = encode_idx(dims, data);
  write_bytes(dir / "raw", bytes);
  write_gzip(dir / "packed.gz", bytes);
  for (const char* name : {"raw", "packed.gz"}) {
    const IdxArray a = read_idx(dir / name);
    EXPECT_EQ(a.dims, dims);
    EXPECT_EQ(a.data, data);
    Sha256 h;
    h.update(bytes);
    EXPECT_EQ(a.sha256, h.hex_digest());
  }
}

void expect_idx_error(const std::vector<std::uint8_t>& bytes, const std::string& fragment) {
  TempDir dir;
  write_bytes(dir / "bad", bytes);
  try {
    read_idx(dir / "bad");
    FAIL() << "no error for a file that should give '" << fragment << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(dir / "bad"), std::string::npos) << "the message names the file";
  }
}

TEST(Idx, CraftedBadFilesGiveTheirErrors) {
  std::vector<std::uint8_t> good = encode_idx({4, 2}, std::vector<std::uint8_t>(8, 1));
  std::vector<std::uint8_t> bad_magic = good;
  bad_magic[0] = 0x1f;
  expect_idx_error(bad_magic, "bad magic number");
  std::vector<std::uint8_t> float_type = good;
  float_type[2] = 0x0D;
  expect_idx_error(float_type, "0x0D is not supported");
  expect_idx_error(std::vector<std::uint8_t>(good.begin(), good.end() - 3),
                   "truncated: header says 4x2 = 8 bytes of data, file has 5");
  std::vector<std::uint8_t> trailing = good;
  trailing.push_back(0);
  expect_idx_error(trailing, "trailing bytes");
  expect_idx_error(std::vector<std::uint8_t>(good.begin(), good.begin() + 6), "truncated IDX header");
  expect_idx_error({}, "bad magic number");
}

TEST(Idx, CorruptGzipIsAnError) {
  TempDir dir;
  std::vector<std::uint8_t> bytes = encode_idx({100}, std::vector<std::uint8_t>(100, 7));
  write_gzip(dir / "x.gz", bytes);
  std::vector<std::uint8_t> packed = read_bytes(dir / "x.gz");
  packed.resize(packed.size() / 2);  // a download cut short
  write_bytes(dir / "x.gz", packed);
  EXPECT_THROW(read_idx(dir / "x.gz"), Error);
}

TEST(Idx, MissingFileNamesThePath) {
  try {
    read_idx("/nonexistent/train-images");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/train-images: cannot open"), std::string::npos) << e.what();
  }
}

TEST(Dataset, ConvertedFileReadsBackShardByShard) {
  TempDir dir;
  const std::string path = dir / "d.h5";
  const SyntheticSplit train = make_split(23, 4, 3, 1);
  const SyntheticSplit test = make_split(9, 4, 3, 2);
  write_synthetic_hdf5(path, train, test);
  EXPECT_EQ(split_size(path, "train"), 23);
  EXPECT_EQ(split_size(path, "test"), 9);
  // One process plays each rank of P in turn: MPI_COMM_SELF with the layout's owned(r, P).
  for (int p : {1, 2, 3, 4}) {
    const ShardLayout layout(23, 5);
    std::int64_t total = 0;
    for (int r = 0; r < p; ++r) {
      std::vector<Shard::Rows> expected;
      for (std::int64_t s : layout.owned(r, p)) expected.push_back({layout.first(s), layout.size(s)});
      const Shard shard = read_shards(path, "train", layout, layout.owned(r, p), MPI_COMM_SELF, 4, 3);
      ASSERT_EQ(shard.rows().size(), expected.size());
      std::vector<std::uint32_t> all(static_cast<std::size_t>(shard.size()));
      std::iota(all.begin(), all.end(), 0u);
      std::vector<float> x(all.size() * 4);
      std::vector<std::int32_t> y(all.size());
      shard.gather(all, Matrix{x.data(), static_cast<int>(all.size()), 4}, y);
      for (std::size_t i = 0; i < all.size(); ++i) {
        const auto g = static_cast<std::size_t>(shard.global_index(static_cast<std::int64_t>(i)));
        EXPECT_EQ(y[i], train.labels[g]);
        for (int c = 0; c < 4; ++c) EXPECT_FLOAT_EQ(x[i * 4 + c], train.pixels[g * 4 + c] / 255.0f);
      }
      EXPECT_EQ(shard.bytes_selected(), shard.size() * (4 + 1)) << "4 uint8 pixels and a uint8 label a sample";
      total += shard.size();
    }
    EXPECT_EQ(total, 23);
  }
}

TEST(Dataset, ShapesTypesAndLabelsAreChecked) {
  TempDir dir;
  const std::string path = dir / "d.h5";
  write_synthetic_hdf5(path, make_split(10, 4, 3, 1), make_split(5, 4, 3, 2));
  const ShardLayout s(10, 1);
  auto message = [&](auto&& call) {
    try {
      call();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([&] {
              read_shards(path, "train", s, s.owned(0, 1), MPI_COMM_SELF, 5, 3);
            }).find("have 2x2 = 4 values, but the input layer has 5"),
            std::string::npos);
  EXPECT_NE(
      message([&] { read_shards(path, "train", s, s.owned(0, 1), MPI_COMM_SELF, 4, 2); }).find("is outside [0, 2)"),
      std::string::npos);
  EXPECT_NE(message([&] {
              read_shards(path, "validation", s, s.owned(0, 1), MPI_COMM_SELF, 4, 3);
            }).find("dataset /validation/images is missing"),
            std::string::npos);
  EXPECT_NE(message([&] {
              read_shards(dir / "none.h5", "train", s, s.owned(0, 1), MPI_COMM_SELF, 4, 3);
            }).find("none.h5: cannot open: No such file or directory"),
            std::string::npos);
  write_bytes(dir / "text.h5", {'h', 'e', 'l', 'l', 'o'});
  EXPECT_NE(message([&] { split_size(dir / "text.h5", "train"); }).find("file signature not found"), std::string::npos);
  // A truncated HDF5 file.
  std::vector<std::uint8_t> whole = read_bytes(path);
  whole.resize(whole.size() / 2);
  write_bytes(dir / "cut.h5", whole);
  EXPECT_NE(message([&] {
              read_shards(dir / "cut.h5", "train", s, s.owned(0, 1), MPI_COMM_SELF, 4, 3);
            }).find("truncated file"),
            std::string::npos);
}

TEST(Dataset, WrongTypesAndShapesAreNamed) {
  TempDir dir;
  write_custom_hdf5(dir / "int16.h5", "int16 images");
  write_custom_hdf5(dir / "labels2d.h5", "2-D labels");
  write_custom_hdf5(dir / "float_labels.h5", "float labels");
  write_custom_hdf5(dir / "empty.h5", "no samples");
  write_custom_hdf5(dir / "wide_label.h5", "a 2^40 label");
  const ShardLayout s(6, 2);
  auto message = [&](const std::string& p) {
    try {
      read_shards(p, "train", s, s.owned(0, 1), MPI_COMM_SELF, 4, 3);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(dir / "int16.h5").find("/train/images is int16, expected uint8 or float32"), std::string::npos);
  EXPECT_NE(message(dir / "labels2d.h5").find("/train/labels has shape [6,2], expected [6]"), std::string::npos);
  EXPECT_NE(message(dir / "float_labels.h5").find("/train/labels is float32, expected integers"), std::string::npos);
  EXPECT_NE(message(dir / "empty.h5").find("/train/images holds no samples, expected at least 1"), std::string::npos);
  // Read as it is stored, not clipped to int32 on the way in.
  EXPECT_NE(message(dir / "wide_label.h5").find("label 1099511627776 of sample 4 in /train/labels is outside [0, 3)"),
            std::string::npos);
}

// A header whose dimensions multiply past 2^64 ((2^62 + 1) x 4 values a
// sample wraps to 4, the input layer's size): refused, not read as 4-value samples.
TEST(Dataset, SampleShapesThatOverflowAreRefused) {
  TempDir dir;
  const std::string path = dir / "wrap.h5";
  write_custom_hdf5(path, "");
  {
    h5::Handle file(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose);
    ASSERT_GE(file.get(), 0);
    ASSERT_GE(H5Ldelete(file, "/train/images", H5P_DEFAULT), 0);
    const hsize_t dims[] = {6, (hsize_t{1} << 62) + 1, 4};
    const hsize_t chunk[] = {1, 1, 4};
    h5::Handle space(H5Screate_simple(3, dims, nullptr), H5Sclose);
    h5::Handle create(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
    ASSERT_GE(H5Pset_chunk(create, 3, chunk), 0);
    h5::Handle images(H5Dcreate2(file, "/train/images", H5T_STD_U8LE, space, H5P_DEFAULT, create, H5P_DEFAULT),
                      H5Dclose);
    ASSERT_GE(images.get(), 0);
  }
  const ShardLayout s(6, 1);
  try {
    read_shards(path, "train", s, s.owned(0, 1), MPI_COMM_SELF, 4, 3);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": dataset /train/images has shape [6,4611686018427387905,4], whose "
                                                "number of values overflows 64 bits"),
              std::string::npos)
        << e.what();
  }
}

TEST(Dataset, Float32ImagesAreUsedAsTheyAre) {
  TempDir dir;
  write_custom_hdf5(dir / "f.h5", "float32 images");
  const ShardLayout s(6, 1);
  const Shard shard = read_shards(dir / "f.h5", "train", s, s.owned(0, 1), MPI_COMM_SELF, 4, 3);
  std::vector<std::uint32_t> first = {5};
  float x[4];
  std::int32_t y[1];
  shard.gather(first, Matrix{x, 1, 4}, y);
  EXPECT_FLOAT_EQ(x[3], 5 * 4 + 3 + 0.5f);
}

TEST(Sha256, KnownVectors) {
  Sha256 empty;
  EXPECT_EQ(empty.hex_digest(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256 abc;
  const std::uint8_t text[] = {'a', 'b', 'c'};
  abc.update(text);
  EXPECT_EQ(abc.hex_digest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 million;  // one million 'a', fed in uneven pieces
  std::vector<std::uint8_t> chunk(999, 'a');
  std::size_t fed = 0;
  while (fed < 1000000) {
    const std::size_t n = std::min<std::size_t>(chunk.size(), 1000000 - fed);
    million.update({chunk.data(), n});
    fed += n;
  }
  EXPECT_EQ(million.hex_digest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

}  // namespace
}  // namespace dptrain
