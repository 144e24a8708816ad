#pragma once

// Public surface of the warrant library (no gRPC): verify a compact-JWS warrant and authorize
// one request under it. Contract: docs/ARCHITECTURE.md "Warrant token".

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "probity/warrant/ed25519.h"

namespace probity::warrant {

// Every reason a request can be refused. The name (RefusalCodeName) is the machine-readable
// reason recorded in the ledger and sent to the client.
enum class RefusalCode {
  kMissingToken,          // "missing_token"
  kMalformedToken,        // "malformed_token"
  kOversizedToken,        // "oversized_token"
  kAlgorithmNotAllowed,   // "algorithm_not_allowed" (none, HS*, RS*, ES*, ...)
  kUnknownKey,            // "unknown_key" (kid not in the JWKS)
  kKeyIssuerMismatch,     // "key_issuer_mismatch" (kid belongs to another issuer)
  kUntrustedIssuer,       // "untrusted_issuer"
  kBadSignature,          // "bad_signature"
  kMissingClaim,          // "missing_claim"
  kInvalidClaim,          // "invalid_claim" (wrong JSON type, negative budget, ...)
  kExpired,               // "expired"
  kNotYetValid,           // "not_yet_valid"
  kLifetimeOverPolicy,    // "lifetime_over_policy"
  kWrongAudience,         // "wrong_audience"
  kRevoked,               // "revoked"
  kCollectionOutOfScope,  // "collection_out_of_scope"
  kKOverMax,              // "k_over_max"
  kBudgetExhausted,       // "budget_exhausted"
  kIdentityMismatch,      // "identity_mismatch" (sub vs TLS client identity)
};

std::string_view RefusalCodeName(RefusalCode code);

struct Refusal {
  RefusalCode code;
  std::string message;  // a human sentence naming what was wrong
  // Token problems are UNAUTHENTICATED; a valid warrant that does not cover the request is
  // PERMISSION_DENIED (scope, k, budget, revocation, identity).
  bool IsAuthentication() const;
};

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
  std::string token_sha256;  // lowercase hex of SHA-256 over the token text
};

struct Policy {
  std::string audience;  // this deployment's name
  absl::Duration clock_skew = absl::Seconds(60);
  absl::Duration max_lifetime = absl::Hours(24 * 30);
  size_t max_token_bytes = 8192;
};

// Parses a warrant payload: a strict JSON object (UTF-8, no duplicate member names) with every
// required claim present and of the right type. Time, audience, issuer trust and lifetime are
// judged by the Verifier, not here. Integers only for times and limits; `max_queries` and
// `max_k` must be positive, `collections` a non-empty array of non-empty strings.
std::variant<Claims, Refusal> ParseClaims(std::string_view payload_json);

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

// Verifies tokens. Thread-safe. Caches verified tokens by token hash so signatures are not
// checked on every query; time and revocation are still checked on every call. Reloads the
// JWKS and revocation files when they change on disk (ReloadIfChanged), swapping atomically so
// queries in flight keep the set they started with.
class Verifier {
 public:
  struct Options {
    Policy policy;
    std::filesystem::path jwks_file;
    // Optional. One revoked warrant per line as a JSON object {"iss": ..., "jti": ...}; blank
    // lines and lines starting with '#' are ignored. A line that is not such an object (a bare
    // jti of the earlier format included) makes the whole file invalid.
    std::filesystem::path revocation_file;
    size_t cache_entries = 4096;  // 0 turns the cache off
  };
  static absl::StatusOr<std::unique_ptr<Verifier>> Create(Options options);
  virtual ~Verifier() = default;

  // `token` is the bare compact JWS (without "Bearer "); empty means no token was sent.
  virtual std::variant<VerifiedWarrant, Refusal> Verify(std::string_view token,
                                                        absl::Time now) const = 0;
  // Re-reads a file only when its mtime or size changed, and swaps only when its content hash
  // changed. On a parse error the previous set stays in force and the error is returned.
  virtual absl::Status ReloadIfChanged() = 0;
  virtual absl::Status Reload() = 0;  // forced, e.g. from the Admin API
};

// What a request asks for, to be checked against a verified warrant.
struct Request {
  std::vector<std::string> collections;
  int64_t k = 0;
  int64_t query_count = 0;  // query vectors in the batch: each costs one from the budget
  std::optional<std::string> tls_identity;
};

// Per-warrant query budget, kept per (issuer, jti). Counts are rebuilt at start from the ledger
// (Restore) so that a restart never refunds a budget. Thread-safe.
class BudgetTracker {
 public:
  BudgetTracker();
  ~BudgetTracker();
  void Restore(const WarrantId& warrant, int64_t used);
  // Reserves n queries against max; refuses (and reserves nothing) when it would exceed max.
  bool TryReserve(const WarrantId& warrant, int64_t n, int64_t max);
  // Gives back a reservation whose search never ran (e.g. the ledger append failed).
  void Release(const WarrantId& warrant, int64_t n);
  int64_t Used(const WarrantId& warrant) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Identity, scope and k checks of one request, in that order; touches no budget. The caller
// rejects k < 1 or query_count < 1 as invalid arguments first; should such a request reach
// here it is refused (invalid_claim), never let through.
std::optional<Refusal> CheckScope(const VerifiedWarrant& warrant, const Request& request);

// Reserves `query_count` against the warrant's max_queries (budget_exhausted when it would
// exceed it; nothing is reserved then).
std::optional<Refusal> ReserveBudget(const VerifiedWarrant& warrant, int64_t query_count,
                                     BudgetTracker& budget);

// CheckScope, then ReserveBudget: reserves budget on success only.
std::optional<Refusal> Authorize(const VerifiedWarrant& warrant, const Request& request,
                                 BudgetTracker& budget);

}  // namespace probity::warrant
