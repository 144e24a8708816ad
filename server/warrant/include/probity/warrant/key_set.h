#pragma once

// The trusted issuers' public keys, from a JWKS file.

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "probity/warrant/ed25519.h"

namespace probity::warrant {

struct TrustedKey {
  std::string kid;
  std::string issuer;  // the JWK member "iss"
  Ed25519PublicKey key;
};

// Trusted issuer keys from a JWKS file (kty OKP, crv Ed25519). Each key carries `kid` and the
// issuer it belongs to (member "iss" of the JWK, required here); several keys per issuer.
// Strict: a key of another type, a private key member ("d"), a duplicate kid or a `use`/`alg`
// that is not for EdDSA signatures makes the whole file invalid.
class KeySet {
 public:
  static absl::StatusOr<std::shared_ptr<const KeySet>> Parse(std::string_view jwks_json);
  static absl::StatusOr<std::shared_ptr<const KeySet>> Load(const std::filesystem::path& file);
  virtual ~KeySet() = default;

  const TrustedKey* Find(std::string_view kid) const;  // nullptr when the kid is unknown
  bool TrustsIssuer(std::string_view issuer) const;
  size_t size() const { return keys_.size(); }

 private:
  KeySet() = default;
  std::vector<TrustedKey> keys_;
};

}  // namespace probity::warrant
