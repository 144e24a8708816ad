#pragma once

// Ed25519 keys on OpenSSL 3's EVP interface: the only signature algorithm warrants use.

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace probity::warrant {

// A public key. Copies share the same immutable OpenSSL key, which is safe to use from many
// threads at once.
class Ed25519PublicKey {
 public:
  static constexpr size_t kRawBytes = 32;
  static constexpr size_t kSignatureBytes = 64;

  static absl::StatusOr<Ed25519PublicKey> FromRaw(std::string_view raw);
  // The 32 raw bytes (JWK "x" before base64url). Every key is made from them (FromRaw, and
  // PrivateKey::PublicKey through it), which keeps them: reading them back cannot fail.
  const std::string& Raw() const { return raw_; }
  bool Verify(std::string_view message, std::string_view signature) const;

 private:
  Ed25519PublicKey(std::shared_ptr<EVP_PKEY> key, std::string raw)
      : key_(std::move(key)), raw_(std::move(raw)) {}
  std::shared_ptr<EVP_PKEY> key_;
  std::string raw_;
};

class Ed25519PrivateKey {
 public:
  static absl::StatusOr<Ed25519PrivateKey> Generate();
  static absl::StatusOr<Ed25519PrivateKey> FromPem(std::string_view pem);
  static absl::StatusOr<Ed25519PrivateKey> FromRawSeed(std::string_view seed);  // 32 bytes
  absl::StatusOr<std::string> ToPem() const;                                    // PKCS#8
  absl::StatusOr<std::string> Sign(std::string_view message) const;
  absl::StatusOr<Ed25519PublicKey> PublicKey() const;

 private:
  explicit Ed25519PrivateKey(std::shared_ptr<EVP_PKEY> key) : key_(std::move(key)) {}
  std::shared_ptr<EVP_PKEY> key_;
};

}  // namespace probity::warrant
