// Optimiser rules, schedules, and checkpoints written and read back.
#include <gtest/gtest.h>
#include <xmmintrin.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <utility>
#include <vector>

#include "dptrain/error.hpp"
#include "dptrain/io/checkpoint.hpp"
#include "dptrain/optim/schedule.hpp"
#include "dptrain/optim/sgd.hpp"
#include "dptrain/train/config.hpp"
#include "dptrain/train/run_folder.hpp"
#include "dptrain/util/denormals.hpp"
#include "dptrain/util/hdf5.hpp"
#include "test_files.hpp"

namespace dptrain {
namespace {

TEST(Sgd, PlainStepIsWMinusLrTimesGradient) {
  Sgd sgd(2, SgdSettings{});
  std::vector<float> w = {1.0f, -2.0f};
  const std::vector<float> g = {0.5f, 0.25f};
  sgd.step(w, g, 0.1f);
  EXPECT_FLOAT_EQ(w[0], 0.95f);
  EXPECT_FLOAT_EQ(w[1], -2.025f);
}

TEST(Sgd, MomentumAndWeightDecayFollowTheDocumentedRule) {
  for (bool nesterov : {false, true}) {
    Sgd sgd(1, SgdSettings{0.9f, 0.01f, nesterov});
    std::vector<float> w = {1.0f};
    double ref_w = 1.0, ref_v = 0.0;
    for (int i = 0; i < 5; ++i) {
      const std::vector<float> g = {0.1f * static_cast<float>(i + 1)};
      sgd.step(w, g, 0.5f);
      const double grad = g[0] + 0.01 * ref_w;
      ref_v = 0.9 * ref_v + grad;
      ref_w -= 0.5 * (nesterov ? grad + 0.9 * ref_v : ref_v);
      EXPECT_NEAR(w[0], ref_w, 1e-6);
      EXPECT_NEAR(sgd.velocity()[0], ref_v, 1e-6);
    }
  }
}

// PyTorch's SGD (torch/optim/sgd.py, _single_tensor_sgd) written out op by
// op in float: d = grad + wd * w; v = mu * v + d (v = d at the first step,
// the same value); d = nesterov ? d + mu * v : v; w = w + (-lr) * d.
void pytorch_sgd_reference(std::vector<float>& w, const std::vector<float>& grad, std::vector<float>& v, float lr,
                           const SgdSettings& s, bool first_step) {
  for (std::size_t i = 0; i < w.size(); ++i) {
    float d = grad[i] + s.weight_decay * w[i];
    if (s.momentum != 0.0f) {
      v[i] = first_step ? d : s.momentum * v[i] + d;
      d = s.nesterov ? d + s.momentum * v[i] : v[i];
    }
    w[i] = w[i] + (-lr) * d;
  }
}

TEST(Sgd, TheFusedUpdateIsPyTorchsRuleBitForBit) {
  const std::size_t n = 10007;  // not a multiple of any vector width
  for (const SgdSettings settings :
       {SgdSettings{0.0f, 0.0f, false}, SgdSettings{0.0f, 1e-4f, false}, SgdSettings{0.9f, 0.0f, false},
        SgdSettings{0.9f, 5e-4f, false}, SgdSettings{0.9f, 5e-4f, true}}) {
    Sgd sgd(n, settings);
    std::vector<float> w(n), reference_v(n, 0.0f);
    for (std::size_t i = 0; i < n; ++i) w[i] = std::sin(static_cast<float>(i)) * 0.3f;
    std::vector<float> reference_w = w;
    for (int step = 0; step < 4; ++step) {
      std::vector<float> grad(n);
      for (std::size_t i = 0; i < n; ++i) grad[i] = std::cos(static_cast<float>(i * 7 + step)) * 1e-2f;
      const float lr = 0.05f / static_cast<float>(step + 1);
      sgd.step(w, grad, lr);
      pytorch_sgd_reference(reference_w, grad, reference_v, lr, settings, step == 0);
      ASSERT_EQ(0, std::memcmp(w.data(), reference_w.data(), n * sizeof(float)))
          << "momentum " << settings.momentum << " weight decay " << settings.weight_decay << " nesterov "
          << settings.nesterov << " step " << step;
      if (settings.momentum != 0.0f) {
        ASSERT_EQ(0, std::memcmp(sgd.velocity().data(), reference_v.data(), n * sizeof(float))) << "step " << step;
      }
    }
  }
}

// Ranks that share one copy of the parameters each update a slice of them
// (Trainer::share_parameters): slices of any sizes, applied in any order into
// shared storage, give the whole step's parameters and velocities.
TEST(Sgd, SlicesUpdatedApartIntoSharedStorageEqualTheWholeStepBitForBit) {
  const std::size_t n = 4099;
  for (const SgdSettings settings : {SgdSettings{0.0f, 1e-4f, false}, SgdSettings{0.9f, 5e-4f, true}}) {
    Sgd whole(n, settings), sliced(n, settings);
    std::vector<float> w(n), shared_w(n), shared_v(settings.momentum != 0.0f ? n : 0, 0.0f);
    for (std::size_t i = 0; i < n; ++i) w[i] = std::sin(static_cast<float>(i)) * 0.3f;
    shared_w = w;
    sliced.use_shared_velocity(shared_v);
    for (int step = 0; step < 3; ++step) {
      std::vector<float> grad(n);
      for (std::size_t i = 0; i < n; ++i) grad[i] = std::cos(static_cast<float>(i * 3 + step)) * 1e-2f;
      whole.step(w, grad, 0.05f);
      for (const auto& [begin, end] : {std::pair<std::size_t, std::size_t>{1024, n}, {0, 1}, {1, 1024}}) {
        sliced.step_slice(shared_w, std::span<const float>(grad).subspan(begin, end - begin), 0.05f, begin);
      }
      ASSERT_EQ(0, std::memcmp(w.data(), shared_w.data(), n * sizeof(float))) << "step " << step;
      if (settings.momentum != 0.0f) {
        ASSERT_EQ(sliced.velocity().data(), shared_v.data());
        ASSERT_EQ(0, std::memcmp(whole.velocity().data(), shared_v.data(), n * sizeof(float))) << "step " << step;
      }
    }
  }
}

// A rank with several threads splits its update among them (Trainer): any
// split of any slice gives the one-pass step's bits, and a slice large
// enough is really split.
TEST(Sgd, AnUpdateSplitAmongThreadsEqualsOnePassBitForBit) {
  const std::size_t n = 3 * kMinUpdatePart + 77, begin = 35;  // a slice from an odd offset
  for (const SgdSettings settings :
       {SgdSettings{0.0f, 0.0f, false}, SgdSettings{0.9f, 5e-4f, false}, SgdSettings{0.9f, 1e-4f, true}}) {
    for (const int threads : {1, 2, 3, 4}) {
      WorkerPool workers(threads);
      Sgd one_pass(n, settings), split(n, settings);
      std::vector<float> w(n);
      for (std::size_t i = 0; i < n; ++i) w[i] = std::sin(static_cast<float>(i)) * 0.3f;
      std::vector<float> split_w = w;
      for (int step = 0; step < 3; ++step) {
        std::vector<float> grad(n - begin);
        for (std::size_t i = 0; i < grad.size(); ++i) grad[i] = std::cos(static_cast<float>(i * 3 + step)) * 1e-2f;
        one_pass.step_slice(w, grad, 0.05f, begin);
        split.step_slice(split_w, grad, 0.05f, begin, workers);
        ASSERT_EQ(0, std::memcmp(w.data(), split_w.data(), n * sizeof(float))) << threads << " threads";
        if (settings.momentum != 0.0f) {  // without momentum there is no velocity (and memcmp takes no null)
          ASSERT_EQ(0, std::memcmp(one_pass.velocity().data(), split.velocity().data(), n * sizeof(float)));
        }
      }
      // 3 steps, each in min(threads, 3) parts: all but the caller's on helpers.
      EXPECT_EQ(static_cast<std::uint64_t>(3 * (std::min(threads, 3) - 1)), workers.helper_parts());
    }
  }
}

// Storage of the wrong size is refused and leaves the buffer where it was;
// after a move the values are the storage itself.
TEST(Sgd, SharedVelocitiesMustFitAndThenAreTheSharedStorage) {
  Sgd sgd(3, SgdSettings{0.5f, 0.0f, false});
  std::vector<float> w(3, 0.0f);
  sgd.step(w, std::vector<float>{1.0f, 2.0f, 3.0f}, 0.1f);
  std::vector<float> too_short(2);
  EXPECT_THROW(sgd.use_shared_velocity(too_short), Error);
  EXPECT_EQ(sgd.velocity().size(), 3u);
  EXPECT_EQ(sgd.velocity()[2], 3.0f);
  std::vector<float> shared(sgd.velocity().begin(), sgd.velocity().end());
  sgd.use_shared_velocity(shared);
  EXPECT_EQ(sgd.velocity().data(), shared.data());
  sgd.step(w, std::vector<float>(3, 0.0f), 0.1f);
  EXPECT_EQ(shared, (std::vector<float>{0.5f, 1.0f, 1.5f}));  // the step updated the shared storage
}

// A velocity whose gradient stays 0 halves each step; by step 130 it is
// 2^-130, a subnormal float, unless subnormals are flushed to zero.
TEST(Sgd, AnUnusedVelocityDecaysToZeroNotIntoSubnormals) {
  const unsigned saved = _mm_getcsr();
  for (const bool flush : {false, true}) {
    if (flush) flush_denormals_to_zero();
    Sgd sgd(1, SgdSettings{0.5f, 0.0f, false});
    std::vector<float> w = {0.0f};
    sgd.step(w, std::vector<float>{1.0f}, 0.0f);
    for (int i = 0; i < 130; ++i) sgd.step(w, std::vector<float>{0.0f}, 0.0f);
    const float v = sgd.velocity()[0];
    if (flush) {
      EXPECT_EQ(v, 0.0f);
    } else {
      EXPECT_EQ(std::fpclassify(v), FP_SUBNORMAL) << v;
    }
  }
  _mm_setcsr(saved);
}

TEST(Schedule, CosineDecaysToZeroAndWarmupRamps) {
  OptimizerSettings o;
  o.schedule = ScheduleKind::cosine;
  o.lr = 0.1;
  const Schedule s(o, 100, 1000);
  EXPECT_DOUBLE_EQ(s.lr_at(0), 0.1);
  EXPECT_NEAR(s.lr_at(500), 0.05, 1e-12);
  EXPECT_LT(s.lr_at(999), 1e-5);
  EXPECT_GT(s.lr_at(999), 0.0);
  o.warmup_epochs = 1;
  const Schedule warm(o, 100, 1000);
  EXPECT_NEAR(warm.lr_at(0), 0.001, 1e-12);
  EXPECT_NEAR(warm.lr_at(99), 0.1, 1e-12);
  EXPECT_NEAR(warm.lr_at(100), 0.1, 1e-12);
  EXPECT_NEAR(warm.lr_at(550), 0.05, 1e-12);
}

TEST(Schedule, StepMultipliesByGammaEveryStepEpochs) {
  OptimizerSettings o;
  o.schedule = ScheduleKind::step;
  o.lr = 1.0;
  o.lr_step_epochs = 2;
  o.lr_gamma = 0.5;
  const Schedule s(o, 10, 1000);
  EXPECT_DOUBLE_EQ(s.lr_at(19), 1.0);
  EXPECT_DOUBLE_EQ(s.lr_at(20), 0.5);
  EXPECT_DOUBLE_EQ(s.lr_at(45), 0.25);
  EXPECT_THROW(parse_schedule("linear"), Error);
}

struct Saved {
  Mlp model{Architecture{{6, 4, 3}, Activation::relu, Activation::softmax, Loss::cross_entropy}};
  Sgd optimizer{model.num_params(), SgdSettings{0.9f, 1e-4f, true}};
  OptimizerSettings settings;
  Progress progress;
  Saved() {
    model.initialize(5);
    for (std::size_t i = 0; i < model.num_params(); ++i) optimizer.velocity()[i] = 0.001f * static_cast<float>(i);
    settings.lr = 0.05;
    settings.sgd = optimizer.settings();
    settings.schedule = ScheduleKind::cosine;
    settings.warmup_epochs = 1.5;
    progress = Progress{7, 3, 1234, 4, 64, kDefaultShards, 99, false, "data.h5", std::string(64, 'a')};
  }
  // The saved INI of the run that wrote these: read_checkpoint checks it against the attributes.
  std::string config() const {
    TrainConfig c;
    c.data = progress.data_file;
    c.arch = model.arch();
    c.optimizer = settings;
    c.batch_size = progress.batch_size;
    c.seed = progress.seed;
    c.shuffle = progress.shuffle;
    return c.to_ini();
  }
};

TEST(Checkpoint, RoundTripRestoresEverything) {
  TempDir dir;
  Saved s;
  const std::string path = dir / "c.h5";
  write_checkpoint(path, s.model, s.optimizer, s.settings, s.progress, s.config());
  const Checkpoint c = read_checkpoint(path);
  EXPECT_EQ(c.arch, s.model.arch());
  EXPECT_TRUE(std::equal(c.params.begin(), c.params.end(), s.model.params().begin()));
  EXPECT_TRUE(std::equal(c.velocity.begin(), c.velocity.end(), s.optimizer.velocity().begin()));
  EXPECT_EQ(c.optimizer.lr, 0.05);
  EXPECT_EQ(c.optimizer.sgd.momentum, 0.9f);
  EXPECT_TRUE(c.optimizer.sgd.nesterov);
  EXPECT_EQ(c.optimizer.schedule, ScheduleKind::cosine);
  EXPECT_EQ(c.optimizer.warmup_epochs, 1.5);
  EXPECT_EQ(c.progress.epochs_done, 7);
  EXPECT_EQ(c.progress.step_in_epoch, 3);
  EXPECT_EQ(c.progress.global_step, 1234);
  EXPECT_EQ(c.progress.world_size, 4);
  EXPECT_EQ(c.progress.batch_size, 64);
  EXPECT_EQ(c.progress.shards, kDefaultShards);
  EXPECT_EQ(c.progress.seed, 99);
  EXPECT_FALSE(c.progress.shuffle);
  EXPECT_EQ(c.progress.data_sha256, std::string(64, 'a'));
  EXPECT_EQ(c.config, s.config());
}

TEST(Checkpoint, LayoutIsTheDocumentedOne) {
  TempDir dir;
  Saved s;
  const std::string path = dir / "c.h5";
  write_checkpoint(path, s.model, s.optimizer, s.settings, s.progress, s.config());
  h5::Handle file = h5::open_file(path);
  h5::Handle model = h5::open_group(file, "/model", path);
  EXPECT_EQ(h5::read_string_attribute(model, "format", path), "dptrain-checkpoint");
  EXPECT_EQ(h5::read_int_attribute(model, "format_version", path), 1);
  EXPECT_EQ(h5::read_ints_attribute(model, "layers", path), (std::vector<std::int64_t>{6, 4, 3}));
  EXPECT_EQ(h5::read_string_attribute(model, "activation", path), "relu");
  EXPECT_EQ(h5::read_string_attribute(model, "output", path), "softmax");
  EXPECT_EQ(h5::read_string_attribute(model, "loss", path), "cross-entropy");
  // W_1 is [out, in] = [3, 4], row-major: W_1[2][1] is at 2 * 4 + 1 after layer 0.
  const std::vector<float> w1 = h5::read_floats(file, "/model/layer_1/weight", {3, 4}, path);
  EXPECT_EQ(w1[2 * 4 + 1], s.model.params()[s.model.layers()[1].weight_offset + 2 * 4 + 1]);
  EXPECT_EQ(h5::read_floats(file, "/model/layer_1/bias", {3}, path).size(), 3u);
  // W_0 is input-major in memory (LayerSlice::input_major) and [out, in] in the file, as every W.
  const LayerSlice& first = s.model.layers()[0];
  ASSERT_TRUE(first.input_major);
  const std::vector<float> w0 = h5::read_floats(file, "/model/layer_0/weight", {4, 6}, path);
  const std::vector<float> v0 = h5::read_floats(file, "/optimizer/layer_0/weight", {4, 6}, path);
  for (int o = 0; o < 4; ++o) {
    for (int i = 0; i < 6; ++i) {
      EXPECT_EQ(w0[static_cast<std::size_t>(o) * 6 + i], s.model.params()[first.weight_index(o, i)]) << o << "," << i;
      EXPECT_EQ(v0[static_cast<std::size_t>(o) * 6 + i], s.optimizer.velocity()[first.weight_index(o, i)]);
    }
  }
  EXPECT_NE(first.weight_index(0, 5), first.weight_offset + 5);  // a layout that is not [out, in]
  h5::Handle progress = h5::open_group(file, "/progress", path);
  EXPECT_EQ(h5::read_int_attribute(progress, "epochs_done", path), 7);
  EXPECT_EQ(h5::read_int_attribute(progress, "world_size", path), 4);
}

TEST(Checkpoint, BadFilesNameTheProblem) {
  TempDir dir;
  Saved s;
  write_bytes(dir / "empty.h5", {});
  EXPECT_THROW(read_checkpoint(dir / "empty.h5"), Error);
  write_checkpoint(dir / "c.h5", s.model, s.optimizer, s.settings, s.progress, s.config());
  std::vector<std::uint8_t> bytes = read_bytes(dir / "c.h5");
  bytes.resize(bytes.size() * 2 / 3);
  write_bytes(dir / "cut.h5", bytes);
  try {
    read_checkpoint(dir / "cut.h5");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cut.h5"), std::string::npos) << e.what();
  }
  {
    h5::Handle file = h5::create_checksummed_file(dir / "other.h5");
    h5::Handle model = h5::create_group(file, "/model", "other.h5");
    h5::write_attribute(model, "format", std::string("something-else"));
  }
  try {
    read_checkpoint(dir / "other.h5");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("format is 'something-else', expected 'dptrain-checkpoint'"),
              std::string::npos)
        << e.what();
  }
}

TEST(Checkpoint, LatestLinkIsReplacedAtomically) {
  TempDir dir;
  write_bytes(dir / "epoch-0001.h5", {1});
  write_bytes(dir / "epoch-0002.h5", {2});
  point_link_atomically(dir / "latest.h5", "epoch-0001.h5");
  EXPECT_EQ(read_bytes(dir / "latest.h5"), std::vector<std::uint8_t>{1});
  point_link_atomically(dir / "latest.h5", "epoch-0002.h5");
  EXPECT_EQ(read_bytes(dir / "latest.h5"), std::vector<std::uint8_t>{2});
  EXPECT_EQ(std::filesystem::read_symlink(dir / "latest.h5"), "epoch-0002.h5");
}

TEST(Checkpoint, PruningKeepsTheNewestAndTheHighestStepsWhateverTheFileTimes) {
  TempDir dir;
  Saved s;
  const std::vector<std::pair<std::string, std::int64_t>> steps = {
      {"epoch-0001.h5", 100}, {"step-000000150.h5", 150}, {"epoch-0002.h5", 200}, {"epoch-0003.h5", 300}};
  const auto now = std::filesystem::file_time_type::clock::now();
  for (std::size_t i = 0; i < steps.size(); ++i) {
    s.progress.global_step = steps[i].second;
    write_checkpoint(dir / steps[i].first, s.model, s.optimizer, s.settings, s.progress, s.config());
    // Modification times in the reverse order of the steps, as after a copy or a clock stepped back.
    std::filesystem::last_write_time(dir / steps[i].first, now - std::chrono::hours(static_cast<int>(i)));
    EXPECT_EQ(checkpoint_global_step(dir / steps[i].first), steps[i].second);
  }
  write_bytes(dir / "epoch-0009.h5", {1, 2, 3});  // not a checkpoint: not ours to delete
  auto left = [&] { return checkpoint_files(dir.path().string()); };

  prune_checkpoints(dir.path().string(), 3, "epoch-0001.h5");  // a run resumed from epoch 1 has just rewritten it
  EXPECT_EQ(left(), (std::vector<std::string>{"epoch-0001.h5", "epoch-0002.h5", "epoch-0003.h5", "epoch-0009.h5"}));
  prune_checkpoints(dir.path().string(), 1, "epoch-0001.h5");
  EXPECT_EQ(left(), (std::vector<std::string>{"epoch-0001.h5", "epoch-0009.h5"}));
  prune_checkpoints(dir.path().string(), 0, "epoch-0001.h5");  // 0 keeps all
  EXPECT_EQ(left().size(), 2u);
  EXPECT_TRUE(checkpoint_files(dir / "absent").empty());
}

TEST(RunFolder, AResumeKeepsTheMetricsLinesUpToItsStepAndNoneCutShort) {
  EXPECT_TRUE(metrics_line_kept(R"({"epoch": 2, "step": 40, "lr": 0.1})", 40));
  EXPECT_FALSE(metrics_line_kept(R"({"epoch": 3, "step": 41, "lr": 0.1})", 40));
  EXPECT_TRUE(metrics_line_kept(R"({"epoch": 2, "step": 40})", 40));
  EXPECT_TRUE(metrics_line_kept(R"({"note": "any other line"})", 0));
  // Cut short by a full disk or a kill, whatever its step.
  EXPECT_FALSE(metrics_line_kept(R"({"epoch": 2, "step": 40)", 40));
  EXPECT_FALSE(metrics_line_kept(R"({"epoch": 2, "step": 4)", 40));
  // Lines of other kinds stay, and a CRLF file's lines read as their LF selves.
  EXPECT_TRUE(metrics_line_kept("", 40));
  EXPECT_TRUE(metrics_line_kept(R"({"note": "cut)", 40));
  EXPECT_TRUE(metrics_line_kept("{\"epoch\": 2, \"step\": 40}\r", 40));
  EXPECT_FALSE(metrics_line_kept("{\"epoch\": 3, \"step\": 41}\r", 40));
  // Epoch lines the trainer does not write are not compared by a misreading.
  EXPECT_FALSE(metrics_line_kept(R"({"epoch": 2, "steps": 4})", 40));
  EXPECT_FALSE(metrics_line_kept(R"({"epoch": 2, "step": 5.0})", 40));
  EXPECT_FALSE(metrics_line_kept(R"({"epoch": 2, "step": 99999999999999999999})", 40));
  EXPECT_FALSE(metrics_line_kept(R"({"epoch": 2, "lr": 0.1, "step": 4})", 40));
}

}  // namespace
}  // namespace dptrain
