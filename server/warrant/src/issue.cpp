#include "probity/warrant/issue.h"

#include <openssl/rand.h>

#include "probity/common/hex.h"
#include "probity/common/string_view.h"
#include "probity/warrant/jws.h"
#include "probity/warrant/key_set.h"
#include "strict_json.h"

namespace probity::warrant {

using Json = nlohmann::json;

absl::StatusOr<std::string> PublicJwk(const Ed25519PrivateKey& key, std::string_view kid,
                                      std::string_view issuer) {
  if (kid.empty() || issuer.empty()) {
    return absl::InvalidArgumentError("a JWK needs a non-empty kid and issuer");
  }
  auto public_key = key.PublicKey();
  if (!public_key.ok()) return public_key.status();
  Json jwk = {{"kty", "OKP"},
              {"crv", "Ed25519"},
              {"x", Base64UrlEncode(public_key->Raw())},
              {"kid", std::string(kid)},
              {"use", "sig"},
              {"alg", "EdDSA"},
              {"iss", std::string(issuer)}};
  return jwk.dump();
}

absl::StatusOr<std::string> AppendToJwks(std::string_view jwks_json, std::string_view jwk_json) {
  Json jwks = {{"keys", Json::array()}};
  if (!jwks_json.empty()) {
    internal::StrictJson parsed = internal::ParseStrictJsonObject(jwks_json);
    if (!parsed.error.empty()) return absl::InvalidArgumentError("JWKS: " + parsed.error);
    jwks = std::move(parsed.value);
    if (!jwks.contains("keys") || !jwks["keys"].is_array()) {
      return absl::InvalidArgumentError("JWKS: no \"keys\" array");
    }
  }
  internal::StrictJson jwk = internal::ParseStrictJsonObject(jwk_json);
  if (!jwk.error.empty()) return absl::InvalidArgumentError("JWK: " + jwk.error);
  for (const Json& existing : jwks["keys"]) {
    if (existing.is_object() && existing.contains("kid") && jwk.value.contains("kid") &&
        existing["kid"] == jwk.value["kid"]) {
      return absl::AlreadyExistsError("the JWKS already has a key with kid " +
                                      jwk.value["kid"].dump());
    }
  }
  jwks["keys"].push_back(std::move(jwk.value));
  std::string text = jwks.dump(2) + "\n";
  // Refuse to write a set the verifier would not load.
  if (auto check = KeySet::Parse(text); !check.ok()) return check.status();
  return text;
}

std::string ClaimsToJson(const Claims& claims) {
  Json payload = {{"iss", claims.iss},
                  {"sub", claims.sub},
                  {"aud", claims.aud},
                  {"jti", claims.jti},
                  {"iat", claims.iat},
                  {"nbf", claims.nbf},
                  {"exp", claims.exp},
                  {"case", claims.case_number},
                  {"purpose", claims.purpose},
                  {"collections", claims.collections},
                  {"max_queries", claims.max_queries},
                  {"max_k", claims.max_k}};
  return payload.dump();
}

absl::StatusOr<std::string> IssueToken(const Claims& claims, const Ed25519PrivateKey& key,
                                       std::string_view kid) {
  if (kid.empty()) return absl::InvalidArgumentError("a warrant needs a kid");
  Json header = {{"alg", "EdDSA"}, {"typ", "JWT"}, {"kid", std::string(kid)}};
  std::string payload = ClaimsToJson(claims);
  // Issue only what this library would accept, so that mistakes surface at issue time.
  if (auto parsed = ParseClaims(payload); std::holds_alternative<Refusal>(parsed)) {
    return absl::InvalidArgumentError(std::get<Refusal>(parsed).message);
  }
  return SignCompactJws(header.dump(), payload, key);
}

absl::StatusOr<std::string> RandomJti() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return absl::InternalError("RAND_bytes failed");
  return common::LowercaseHex(std::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes));
}

}  // namespace probity::warrant
