// Checkpoints edited or crafted with the HDF5 C API: each is refused with one
// error naming the file and the field, before anything is allocated from or
// copied out of it (run under ASan in the sanitizer build).
#include <gtest/gtest.h>

#include <functional>
#include <limits>
#include <tuple>

#include "dptrain/error.hpp"
#include "dptrain/io/checkpoint.hpp"
#include "dptrain/train/config.hpp"
#include "dptrain/util/hdf5.hpp"
#include "fuzz_support.hpp"
#include "test_files.hpp"

namespace dptrain {
namespace {

struct Written : fuzz::ExampleCheckpoint {
  TempDir dir;
  std::string path = dir / "c.h5";

  Written() { write(path); }

  // Changes the written file through the C API, as h5py or a crafted file would.
  void edit(const std::function<void(hid_t)>& change) const {
    h5::Handle file(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose);
    ASSERT_GE(file.get(), 0);
    change(file);
  }

  // The error reading the file gives ("no error" if none); either way, it
  // must leave no HDF5 handle open.
  std::string error() const {
    const fuzz::Hdf5Handles before = fuzz::Hdf5Handles::now();
    std::string message = "no error";
    try {
      read_checkpoint(path);
    } catch (const Error& e) {
      message = e.what();
    }
    EXPECT_EQ(fuzz::Hdf5Handles::now().left_open_since(before), "") << "HDF5 handles left open after: " << message;
    return message;
  }
};

void replace_dataset(hid_t file, const std::string& name, hid_t type, const std::vector<hsize_t>& dims) {
  ASSERT_GE(H5Ldelete(file, name.c_str(), H5P_DEFAULT), 0);
  std::vector<double> zeros(64, 0.0);
  h5::write_dataset(file, name, H5T_NATIVE_DOUBLE, type, dims, zeros.data(), 0, "test");
}

// /model/layer_0/weight deleted and created again, float32 [4,6] of the
// architecture's shape, with the creation properties `create`, and nothing
// written; a negative handle when HDF5 refuses.
h5::Handle recreate_first_weight(hid_t file, hid_t create) {
  if (H5Ldelete(file, "/model/layer_0/weight", H5P_DEFAULT) < 0) return {};
  const hsize_t dims[] = {4, 6};
  h5::Handle space(H5Screate_simple(2, dims, nullptr), H5Sclose);
  return {H5Dcreate2(file, "/model/layer_0/weight", H5T_IEEE_F32LE, space, H5P_DEFAULT, create, H5P_DEFAULT), H5Dclose};
}

#define EXPECT_ERROR_HAS(written, fragment)                                       \
  do {                                                                            \
    const std::string message = (written).error();                                \
    EXPECT_NE(message.find((written).path + ": "), std::string::npos) << message; \
    EXPECT_NE(message.find(fragment), std::string::npos) << message;              \
  } while (false)

TEST(HostileCheckpoints, TheUntouchedFileReads) {
  Written w;
  EXPECT_EQ(w.error(), "no error");
}

// The reported case: 784-64-10 whose INI was edited to say 784,8,10 made
// resume build the INI's network and copy /model's parameters into it.
TEST(HostileCheckpoints, AnIniThatContradictsTheModelIsRefused) {
  Written w;
  TrainConfig edited = w.config;
  edited.arch.layers = {6, 2, 3};
  w.edit([&](hid_t file) { h5::write_attribute(file, "config", edited.to_ini()); });
  EXPECT_ERROR_HAS(w,
                   "attribute config (the saved configuration) says layers = 6,2,3, but /model attribute layers "
                   "is 6,4,3");
}

TEST(HostileCheckpoints, OptimizerAndProgressCopiesAreCheckedToo) {
  for (const auto& [key, value, field] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"lr", "0.5", "/optimizer attribute lr"},
           {"momentum", "0", "/optimizer attribute momentum"},
           {"activation", "tanh", "/model attribute activation"},
           {"batch-size", "9", "/progress attribute batch_size"},
           {"shuffle", "false", "/progress attribute shuffle"}}) {
    Written w;
    std::string ini = w.config.to_ini();
    const std::size_t line = ini.find("\n" + key + " = ") + 1;
    ini.replace(line, ini.find('\n', line) - line, key + " = " + value);
    w.edit([&](hid_t file) { h5::write_attribute(file, "config", ini); });
    EXPECT_ERROR_HAS(w, "says " + key + " = " + value + ", but " + field);
  }
}

TEST(HostileCheckpoints, AnIniWithoutTheArchitectureIsRefused) {
  Written w;
  w.edit([](hid_t file) { h5::write_attribute(file, "config", std::string("lr = 0.1\n")); });
  EXPECT_ERROR_HAS(w,
                   "attribute config (the saved configuration) lacks layers, which /model attribute layers gives "
                   "as 6,4,3");
}

TEST(HostileCheckpoints, WrongShapesAndTypesAreRefusedBeforeReading) {
  Written shape;
  shape.edit([](hid_t file) { replace_dataset(file, "/model/layer_0/weight", H5T_IEEE_F32LE, {4, 5}); });
  EXPECT_ERROR_HAS(shape, "dataset /model/layer_0/weight is float32 [4,5], expected float32 [4,6]");
  Written type;
  type.edit([](hid_t file) { replace_dataset(file, "/model/layer_1/bias", H5T_IEEE_F64LE, {3}); });
  EXPECT_ERROR_HAS(type, "dataset /model/layer_1/bias is float64 [3], expected float32 [3]");
  Written integers;
  integers.edit([](hid_t file) { replace_dataset(file, "/optimizer/layer_1/weight", H5T_STD_I32LE, {3, 4}); });
  EXPECT_ERROR_HAS(integers, "dataset /optimizer/layer_1/weight is int32 [3,4], expected float32 [3,4]");
}

// Training saves nothing after a non-finite loss, so such values are damage.
TEST(HostileCheckpoints, ParametersThatAreNotFiniteAreRefused) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (const auto& [name, bad, dims, fragment] :
       std::vector<std::tuple<std::string, float, std::vector<hsize_t>, std::string>>{
           {"/model/layer_1/bias", nan, {3}, "/model/layer_1/bias holds nan at index 2, expected finite values"},
           {"/optimizer/layer_0/weight", -inf, {4, 6}, "/optimizer/layer_0/weight holds -inf at index 2"}}) {
    Written w;
    w.edit([&, &name = name, &bad = bad, &dims = dims](hid_t file) {
      ASSERT_GE(H5Ldelete(file, name.c_str(), H5P_DEFAULT), 0);
      std::vector<float> values(24, 0.5f);
      values[2] = bad;
      h5::write_dataset(file, name, H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, dims, values.data(), 0, "test");
    });
    EXPECT_ERROR_HAS(w, fragment);
  }
}

// Resume checks the node's memory from the header, before the parameters
// (as large as the network) are read: here a NaN in them is not reached.
TEST(HostileCheckpoints, TheHeaderIsCheckedBeforeTheParametersAreRead) {
  Written w;
  Architecture seen;
  std::size_t params_seen = 1;
  const Checkpoint whole = read_checkpoint(w.path, [&](const Checkpoint& header) {
    seen = header.arch;
    params_seen = header.params.size() + header.velocity.size();
  });
  EXPECT_EQ(seen, w.config.arch);
  EXPECT_EQ(params_seen, 0u);
  EXPECT_EQ(whole.params.size(), w.config.arch.parameter_count());
  w.edit([](hid_t file) {
    ASSERT_GE(H5Ldelete(file, "/model/layer_0/bias", H5P_DEFAULT), 0);
    const std::vector<float> values(4, std::numeric_limits<float>::quiet_NaN());
    h5::write_dataset(file, "/model/layer_0/bias", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, {4}, values.data(), 0, "test");
  });
  const fuzz::Hdf5Handles before = fuzz::Hdf5Handles::now();
  try {
    read_checkpoint(w.path, [](const Checkpoint&) { throw Error("does not fit"); });
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "does not fit");
  }
  EXPECT_EQ(fuzz::Hdf5Handles::now().left_open_since(before), "") << "after the callback's error";
  EXPECT_ERROR_HAS(w, "/model/layer_0/bias holds nan at index 0");
}

TEST(HostileCheckpoints, MissingDatasetsAreNamed) {
  Written w;
  w.edit([](hid_t file) { ASSERT_GE(H5Ldelete(file, "/optimizer/layer_1/bias", H5P_DEFAULT), 0); });
  EXPECT_ERROR_HAS(w, "dataset /optimizer/layer_1/bias is missing");
}

TEST(HostileCheckpoints, HugeDimensionsAreRefusedBeforeAllocating) {
  Written w;
  w.edit([](hid_t file) {
    h5::Handle model(H5Gopen2(file, "/model", H5P_DEFAULT), H5Gclose);
    h5::write_attribute(model, "layers", std::vector<std::int64_t>{1'000'000, 1'000'000, 10});
  });
  EXPECT_ERROR_HAS(w, "/model: --layers '1000000,1000000,10': more than 1073741824 parameters");
}

// Within kMaxParameters but not within the file: 1000000-1073-2
// needs 8 GiB of parameters and velocities, which a 10 KB file cannot hold.
// Refused before anything is allocated for them.
TEST(HostileCheckpoints, ArchitecturesLargerThanTheFileAreRefusedBeforeAllocating) {
  Written w;
  w.edit([](hid_t file) {
    h5::Handle model(H5Gopen2(file, "/model", H5P_DEFAULT), H5Gclose);
    h5::write_attribute(model, "layers", std::vector<std::int64_t>{1'000'000, 1073, 2});
  });
  EXPECT_ERROR_HAS(w,
                   "/model attribute layers 1000000,1073,2 means 1073003221 parameters and as many velocities "
                   "(8584025768 bytes), but the file has only ");
}

// dptrain writes no filters; a compressed dataset's size is not bounded by
// the file's, so it is refused with the way to undo it.
TEST(HostileCheckpoints, CompressedDatasetsAreRefused) {
  Written w;
  w.edit([](hid_t file) {
    h5::Handle create(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
    const hsize_t chunk[] = {4, 6};
    ASSERT_GE(H5Pset_chunk(create, 2, chunk), 0);
    ASSERT_GE(H5Pset_deflate(create, 6), 0);
    const h5::Handle dataset = recreate_first_weight(file, create);
    ASSERT_GE(dataset.get(), 0);
    const std::vector<float> values(24, 0.5f);
    ASSERT_GE(H5Dwrite(dataset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), 0);
  });
  EXPECT_ERROR_HAS(w, "dataset /model/layer_0/weight is stored through 1 HDF5 filter(s)");
}

// A dataset of the right shape whose storage was never written: HDF5 would
// hand out fill values; it is a crafted or damaged file.
TEST(HostileCheckpoints, DatasetsWithoutTheirBytesAreRefused) {
  Written w;
  w.edit([](hid_t file) { ASSERT_GE(recreate_first_weight(file, H5P_DEFAULT).get(), 0); });
  EXPECT_ERROR_HAS(w, "dataset /model/layer_0/weight stores 0 bytes, expected 96 for float32 [4,6]");
}

// H5Aread writes every element: an array of strings must not land in one string's buffer.
TEST(HostileCheckpoints, AttributesOfTheWrongShapeAreRefused) {
  Written w;
  w.edit([](hid_t file) {
    ASSERT_GE(H5Adelete(file, "config"), 0);
    h5::Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(type, 8);
    const hsize_t two = 2;
    h5::Handle space(H5Screate_simple(1, &two, nullptr), H5Sclose);
    h5::Handle attr(H5Acreate2(file, "config", type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    ASSERT_GE(H5Awrite(attr, type, "layers =shuffle="), 0);
  });
  EXPECT_ERROR_HAS(w, "attribute config holds 2 values, expected one string");
}

TEST(HostileCheckpoints, TruncatedFilesNameTheFile) {
  Written w;
  std::vector<std::uint8_t> bytes = read_bytes(w.path);
  bytes.resize(bytes.size() / 2);
  write_bytes(w.path, bytes);
  EXPECT_ERROR_HAS(w, "cannot open as HDF5: truncated file");
}

// libhdf5 1.10.8 overran a heap buffer decoding a damaged attribute of a
// file without metadata checksums (tests/fuzz/regressions/checkpoint): such
// files are refused before HDF5 parses them.
TEST(HostileCheckpoints, FilesWithoutMetadataChecksumsAreNotParsed) {
  Written w;
  EXPECT_GE(h5::superblock_version(w.path), kCheckpointMinSuperblock);
  const std::string old = w.dir / "old.h5";
  h5::create_file(old).reset();
  try {
    read_checkpoint(old);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(old + ": HDF5 superblock version 0, expected 2 or later"), std::string::npos)
        << e.what();
  }
  write_bytes(old, {'n', 'o', 't', ' ', 'h', 'd', 'f', '5', '!', '!'});
  EXPECT_THROW(read_checkpoint(old), Error);
}

// A v2 superblock checksums only itself, and may point at v1 object headers,
// which have no checksum: the overrun above came back that way (the fuzz
// campaign's regression inputs, a v2 or v3 superblock over the old file's
// headers). Every header on the way to what is read must be a checksummed one.
TEST(HostileCheckpoints, ObjectHeadersWithoutChecksumsAreNotParsed) {
  for (const char* name : {"v2-superblock-over-v1-headers.h5", "v3-superblock-over-v1-headers.h5"}) {
    const std::string crafted = std::string(DPTRAIN_FUZZ_DIR) + "/regressions/checkpoint/" + name;
    try {
      read_checkpoint(crafted);
      FAIL() << name;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(crafted + ": the object header of the root group (at byte 96) is not a "
                                                     "checksummed version 2 header"),
                std::string::npos)
          << e.what();
    }
  }
  // Below the root: a dataset's header whose signature is overwritten is
  // refused by name before HDF5 decodes it.
  Written w;
  haddr_t address = HADDR_UNDEF;
  w.edit([&](hid_t file) {
    H5L_info_t link;
    ASSERT_GE(H5Lget_info(file, "/model/layer_1/bias", &link, H5P_DEFAULT), 0);
    address = link.u.address;
  });
  ASSERT_NE(address, HADDR_UNDEF);
  std::vector<std::uint8_t> bytes = read_bytes(w.path);
  ASSERT_LT(address + 4, bytes.size());
  ASSERT_EQ(std::string(bytes.begin() + static_cast<std::ptrdiff_t>(address),
                        bytes.begin() + static_cast<std::ptrdiff_t>(address) + 4),
            "OHDR");
  std::copy_n("XXXX", 4, bytes.begin() + static_cast<std::ptrdiff_t>(address));
  write_bytes(w.path, bytes);
  EXPECT_ERROR_HAS(w, "the object header of /model/layer_1/bias (at byte " + std::to_string(address) +
                          ") is not a checksummed version 2 header");
}

TEST(HostileCheckpoints, ParametersLoadOnlyIntoTheirOwnArchitecture) {
  Written w;
  const Checkpoint c = read_checkpoint(w.path);
  Mlp other(Architecture{{6, 2, 3}, Activation::relu, Activation::softmax, Loss::cross_entropy});
  const std::vector<float> before(other.params().begin(), other.params().end());
  try {
    load_parameters(c, other, w.path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(w.path + ": the checkpoint holds 43 parameters of 6,4,3"), std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(std::equal(before.begin(), before.end(), other.params().begin()));
  Mlp same(c.arch);
  load_parameters(c, same, w.path);
  EXPECT_TRUE(std::equal(c.params.begin(), c.params.end(), same.params().begin()));
}

}  // namespace
}  // namespace dptrain
