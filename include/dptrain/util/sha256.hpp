#pragma once
// SHA-256, to record and check where data came from (IDX sources, the HDF5
// data file a checkpoint was trained on). OpenSSL's libcrypto (EVP) computes
// it: its SHA-NI/AVX2 code is several times faster than a portable loop, and
// rank 0 hashes the whole data file at every start while the others wait.
#include <cstdint>
#include <memory>
#include <span>
#include <string>

struct evp_md_ctx_st;  // OpenSSL's EVP_MD_CTX, kept out of every includer

namespace dptrain {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  void update(std::span<const std::uint8_t> bytes);
  std::string hex_digest();  // finishes the hash

 private:
  struct Free {
    void operator()(evp_md_ctx_st* context) const;
  };
  std::unique_ptr<evp_md_ctx_st, Free> context_;
};

// SHA-256 of a whole file, read in chunks.
std::string sha256_of_file(const std::string& path);

}  // namespace dptrain
