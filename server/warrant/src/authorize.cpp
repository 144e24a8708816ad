#include "probity/warrant/authorize.h"

#include <algorithm>

#include "probity/common/string_view.h"
#include "refusal.h"

namespace probity::warrant {

using internal::Refuse;

WarrantId IdOf(const Claims& claims) { return WarrantId{claims.iss, claims.jti}; }

std::optional<Refusal> CheckScope(const VerifiedWarrant& warrant, const Request& request) {
  const Claims& claims = warrant.claims;
  if (request.k < 1 || request.query_count < 1) {
    return Refuse(RefusalCode::kInvalidClaim,
                  common::Cat("The request asks for k = ", request.k, " over ", request.query_count,
                              " query vectors; both must be at least 1."));
  }
  if (request.tls_identity && *request.tls_identity != claims.sub) {
    return Refuse(
        RefusalCode::kIdentityMismatch,
        common::Cat("The warrant was issued to \"", claims.sub,
                    "\" but the client certificate identifies \"", *request.tls_identity, "\"."));
  }
  if (request.collections.empty()) {
    return Refuse(RefusalCode::kCollectionOutOfScope, "The request names no collection.");
  }
  for (const std::string& collection : request.collections) {
    if (std::find(claims.collections.begin(), claims.collections.end(), collection) ==
        claims.collections.end()) {
      return Refuse(RefusalCode::kCollectionOutOfScope,
                    common::Cat("The warrant does not cover collection \"", collection, "\"."));
    }
  }
  if (request.k > claims.max_k) {
    return Refuse(RefusalCode::kKOverMax,
                  common::Cat("The request asks for k = ", request.k,
                              " but the warrant allows at most ", claims.max_k, "."));
  }
  return std::nullopt;
}

std::optional<Refusal> ReserveBudget(const VerifiedWarrant& warrant, int64_t query_count,
                                     BudgetTracker& budget) {
  const Claims& claims = warrant.claims;
  const WarrantId id = IdOf(claims);
  if (query_count < 1) {
    return Refuse(RefusalCode::kInvalidClaim,
                  common::Cat("The request carries ", query_count,
                              " query vectors; it must carry at least 1."));
  }
  if (!budget.TryReserve(id, query_count, claims.max_queries)) {
    return Refuse(RefusalCode::kBudgetExhausted,
                  common::Cat("The warrant's budget of ", claims.max_queries, " query vectors has ",
                              claims.max_queries - std::min(claims.max_queries, budget.Used(id)),
                              " left, fewer than the ", query_count, " requested."));
  }
  return std::nullopt;
}

std::optional<Refusal> Authorize(const VerifiedWarrant& warrant, const Request& request,
                                 BudgetTracker& budget) {
  if (auto refusal = CheckScope(warrant, request)) return refusal;
  return ReserveBudget(warrant, request.query_count, budget);
}

}  // namespace probity::warrant
