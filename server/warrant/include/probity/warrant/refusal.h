#pragma once

// Why a request was refused: the machine-readable code recorded in the ledger and sent to the
// client, and the human sentence beside it.

#include <string>
#include <string_view>

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

}  // namespace probity::warrant
