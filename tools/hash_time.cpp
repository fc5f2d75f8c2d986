// How long rank 0's start-up check takes: the SHA-256 of a whole data file
// (what `train` hashes at every start while the other ranks wait), with the
// implementation dptrain links. Prints bytes, seconds, MB/s and the digest.
//
//   build/dptrain_hash_time data/mnist.h5 [more files...]
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "dptrain/error.hpp"
#include "dptrain/util/sha256.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE...\n", argv[0]);
    return 2;
  }
  try {
    for (int i = 1; i < argc; ++i) {
      const auto bytes = std::filesystem::file_size(argv[i]);
      const auto start = std::chrono::steady_clock::now();
      const std::string digest = dptrain::sha256_of_file(argv[i]);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("%s: %ju bytes in %.3f s (%.0f MB/s), sha256 %s\n", argv[i], static_cast<std::uintmax_t>(bytes),
                  seconds, static_cast<double>(bytes) / seconds / 1e6, digest.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dptrain_hash_time: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
