#pragma once

// Issuing side of warrants, for `probity warrant keygen|issue`, tests and small deployments;
// any JWT library that signs EdDSA tokens can issue warrants as well.

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "probity/warrant/claims.h"
#include "probity/warrant/ed25519.h"

namespace probity::warrant {

// The public JWK of `key` as one JSON object text: kty OKP, crv Ed25519, x, kid, use sig,
// alg EdDSA and the issuer the key belongs to as member "iss".
absl::StatusOr<std::string> PublicJwk(const Ed25519PrivateKey& key, std::string_view kid,
                                      std::string_view issuer);

// Adds `jwk_json` to the JWKS text `jwks_json` (empty text starts a new set); refuses a kid
// that is already present.
absl::StatusOr<std::string> AppendToJwks(std::string_view jwks_json, std::string_view jwk_json);

// The payload of a warrant: every member of Claims, with `aud` as a single string.
std::string ClaimsToJson(const Claims& claims);

// A compact JWS with header {"alg":"EdDSA","typ":"JWT","kid":kid} over ClaimsToJson(claims).
absl::StatusOr<std::string> IssueToken(const Claims& claims, const Ed25519PrivateKey& key,
                                       std::string_view kid);

// A random warrant id: 32 lowercase hex digits from OpenSSL's RNG.
absl::StatusOr<std::string> RandomJti();

}  // namespace probity::warrant
