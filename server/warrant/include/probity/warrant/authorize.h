#pragma once

// Whether a verified warrant covers one request: identity, scope and k, then the budget.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "probity/warrant/budget.h"
#include "probity/warrant/claims.h"
#include "probity/warrant/refusal.h"

namespace probity::warrant {

// What a request asks for, to be checked against a verified warrant.
struct Request {
  std::vector<std::string> collections;
  int64_t k = 0;
  int64_t query_count = 0;  // query vectors in the batch: each costs one from the budget
  std::optional<std::string> tls_identity;
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
