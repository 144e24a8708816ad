#pragma once

// The compact-JWS layer under warrants (RFC 7515 section 7.1, RFC 8037): strict base64url,
// strict JSON, the algorithm allow-list, and the Ed25519 signature. It knows nothing of
// claims, so that a plain JWS such as RFC 8037's example can be checked with it.

#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "probity/warrant/ed25519.h"
#include "probity/warrant/refusal.h"

namespace probity::warrant {

// Base64url without padding (RFC 7515 section 2). Decoding refuses padding, any character
// outside the alphabet, impossible lengths and non-zero unused trailing bits, so that every
// byte string has exactly one accepted spelling.
std::string Base64UrlEncode(std::string_view bytes);
std::optional<std::string> Base64UrlDecode(std::string_view text);

struct JwsHeader {
  std::string alg;
  std::optional<std::string> kid;
  std::optional<std::string> typ;
};

struct CompactJws {
  JwsHeader header;
  std::string header_json;    // decoded protected header
  std::string payload;        // decoded payload bytes (not parsed)
  std::string signature;      // decoded signature bytes
  std::string signing_input;  // "<header b64>.<payload b64>" exactly as received
};

// Splits and decodes a compact JWS without touching any key. Refuses (in this order): an empty
// token, one over max_bytes, anything but three base64url segments, a header that is not a
// strict JSON object, an `alg` other than EdDSA/Ed25519, a `typ` other than JWT, and a `crit`
// header (no extensions are understood). A missing `kid` is left to the caller.
std::variant<CompactJws, Refusal> ParseCompactJws(std::string_view token, size_t max_bytes);

// True when the Ed25519 signature of `jws` verifies under `key`.
bool VerifyJwsSignature(const CompactJws& jws, const Ed25519PublicKey& key);

// Signs `payload` under `header_json` (taken as given: tests use it to forge odd headers).
absl::StatusOr<std::string> SignCompactJws(std::string_view header_json, std::string_view payload,
                                           const Ed25519PrivateKey& key);

}  // namespace probity::warrant
