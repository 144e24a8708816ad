#include "probity/warrant/refusal.h"

namespace probity::warrant {

std::string_view RefusalCodeName(RefusalCode code) {
  switch (code) {
    case RefusalCode::kMissingToken:
      return "missing_token";
    case RefusalCode::kMalformedToken:
      return "malformed_token";
    case RefusalCode::kOversizedToken:
      return "oversized_token";
    case RefusalCode::kAlgorithmNotAllowed:
      return "algorithm_not_allowed";
    case RefusalCode::kUnknownKey:
      return "unknown_key";
    case RefusalCode::kKeyIssuerMismatch:
      return "key_issuer_mismatch";
    case RefusalCode::kUntrustedIssuer:
      return "untrusted_issuer";
    case RefusalCode::kBadSignature:
      return "bad_signature";
    case RefusalCode::kMissingClaim:
      return "missing_claim";
    case RefusalCode::kInvalidClaim:
      return "invalid_claim";
    case RefusalCode::kExpired:
      return "expired";
    case RefusalCode::kNotYetValid:
      return "not_yet_valid";
    case RefusalCode::kLifetimeOverPolicy:
      return "lifetime_over_policy";
    case RefusalCode::kWrongAudience:
      return "wrong_audience";
    case RefusalCode::kRevoked:
      return "revoked";
    case RefusalCode::kCollectionOutOfScope:
      return "collection_out_of_scope";
    case RefusalCode::kKOverMax:
      return "k_over_max";
    case RefusalCode::kBudgetExhausted:
      return "budget_exhausted";
    case RefusalCode::kIdentityMismatch:
      return "identity_mismatch";
  }
  return "unknown_refusal";
}

bool Refusal::IsAuthentication() const {
  switch (code) {
    case RefusalCode::kRevoked:
    case RefusalCode::kCollectionOutOfScope:
    case RefusalCode::kKOverMax:
    case RefusalCode::kBudgetExhausted:
    case RefusalCode::kIdentityMismatch:
      return false;
    default:
      return true;
  }
}

}  // namespace probity::warrant
