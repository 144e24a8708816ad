#pragma once

// A warrant's claims, its identity (issuer, jti) and what verification yields; parsing the
// payload. Contract: docs/ARCHITECTURE.md "Warrant token".

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "probity/warrant/refusal.h"

namespace probity::warrant {

struct Claims {
  // `aud` is this deployment's audience once verified; `audiences` lists every value the
  // token's "aud" carried (a string or an array of strings).
  std::string iss, sub, aud, jti;
  std::vector<std::string> audiences;
  int64_t iat = 0, nbf = 0, exp = 0;  // seconds since the epoch
  std::string case_number;            // "case"
  std::string purpose;
  std::vector<std::string> collections;
  int64_t max_queries = 0;
  int64_t max_k = 0;
};

// Which warrant: `jti` values are unique only within their issuer, so budgets and revocations
// are kept per (issuer, jti) and one issuer can neither spend nor revoke another's warrant.
struct WarrantId {
  std::string issuer;  // "iss"
  std::string jti;
  friend bool operator==(const WarrantId&, const WarrantId&) = default;
};

WarrantId IdOf(const Claims& claims);

struct VerifiedWarrant {
  Claims claims;
  std::string kid;
  std::string token_sha256;  // lowercase hex of SHA-256 over the token text (empty only if OpenSSL
                             // could not digest it)
};

// Parses a warrant payload: a strict JSON object (UTF-8, no duplicate member names) with every
// required claim present and of the right type. Time, audience, issuer trust and lifetime are
// judged by the Verifier, not here. Integers only for times and limits; `max_queries` and
// `max_k` must be positive, `collections` a non-empty array of non-empty strings.
std::variant<Claims, Refusal> ParseClaims(std::string_view payload_json);

}  // namespace probity::warrant
