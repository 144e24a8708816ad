#include "probity/common/sha256.h"

#include <openssl/sha.h>

#include <array>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "probity/common/hex.h"

namespace probity::common {

Sha256Digest Sha256(std::string_view bytes) {
  Sha256Digest digest{};
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest.data());
  return digest;
}

std::string Sha256Bytes(std::string_view bytes) {
  const Sha256Digest digest = Sha256(bytes);
  return std::string(reinterpret_cast<const char*>(digest.data()), digest.size());
}

std::string Sha256Hex(std::string_view bytes) { return LowercaseHex(Sha256(bytes)); }

Sha256Hasher::Sha256Hasher() : context_(EVP_MD_CTX_new()) {
  ok_ = context_ != nullptr && EVP_DigestInit_ex(context_.get(), EVP_sha256(), nullptr) == 1;
}

void Sha256Hasher::Update(const void* data, size_t size) {
  if (ok_ && size > 0) ok_ = EVP_DigestUpdate(context_.get(), data, size) == 1;
}

absl::StatusOr<Sha256Digest> Sha256Hasher::Finish() {
  Sha256Digest digest{};
  unsigned int length = 0;
  if (!ok_ || EVP_DigestFinal_ex(context_.get(), digest.data(), &length) != 1 ||
      length != digest.size()) {
    ok_ = false;
    return absl::InternalError("OpenSSL SHA-256 failed");
  }
  ok_ = false;  // a second Finish is a caller's bug; it reports an error rather than a digest
  return digest;
}

absl::StatusOr<std::string> Sha256HexOfFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path.string(), ": cannot open"));
  Sha256Hasher hasher;
  std::array<char, 1 << 16> buffer;
  while (in) {
    in.read(buffer.data(), buffer.size());
    if (in.gcount() > 0) hasher.Update(buffer.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat(path.string(), ": read error"));
  absl::StatusOr<Sha256Digest> digest = hasher.Finish();
  if (!digest.ok()) return digest.status();
  return LowercaseHex(*digest);
}

}  // namespace probity::common
