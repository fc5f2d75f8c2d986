#include "dptrain/util/sha256.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "dptrain/error.hpp"
#include "dptrain/util/files.hpp"

namespace dptrain {
namespace {

// OpenSSL's own reason for the failure that just happened (its error queue).
[[noreturn]] void fail(const char* what) {
  char reason[256] = "no reason given";
  if (const unsigned long code = ERR_get_error(); code != 0) ERR_error_string_n(code, reason, sizeof reason);
  ERR_clear_error();
  throw Error(std::string("SHA-256 (libcrypto): ") + what + ": " + reason);
}

}  // namespace

void Sha256::Free::operator()(evp_md_ctx_st* context) const { EVP_MD_CTX_free(context); }

Sha256::Sha256() : context_(EVP_MD_CTX_new()) {
  if (!context_) fail("cannot allocate a digest context");
  if (EVP_DigestInit_ex(context_.get(), EVP_sha256(), nullptr) != 1) fail("cannot start the digest");
}

Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(std::span<const std::uint8_t> bytes) {
  if (bytes.empty()) return;
  if (EVP_DigestUpdate(context_.get(), bytes.data(), bytes.size()) != 1) fail("cannot hash");
}

std::string Sha256::hex_digest() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(context_.get(), digest, &length) != 1) fail("cannot finish the digest");
  static const char* hex = "0123456789abcdef";
  std::string text;
  for (unsigned int i = 0; i < length; ++i) {
    text += hex[digest[i] >> 4];
    text += hex[digest[i] & 15];
  }
  return text;
}

std::string sha256_of_file(const std::string& path) {
  require_regular_file(path);
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) throw Error(path + ": cannot open: " + std::strerror(errno));
  Sha256 hash;
  std::vector<std::uint8_t> chunk(1 << 20);
  std::size_t got;
  while ((got = std::fread(chunk.data(), 1, chunk.size(), file.get())) > 0) {
    hash.update({chunk.data(), got});
  }
  if (std::ferror(file.get())) throw Error(path + ": read error: " + std::strerror(errno));
  return hash.hex_digest();
}

}  // namespace dptrain
