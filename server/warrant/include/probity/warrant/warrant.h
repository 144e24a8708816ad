#pragma once

// The warrant library (no gRPC) in one include: verify a compact-JWS warrant and authorize one
// request under it. Each concept has its own header; include only the one you need.
// Contract: docs/ARCHITECTURE.md "Warrant token".

#include "probity/warrant/authorize.h"  // Request, CheckScope, ReserveBudget, Authorize
#include "probity/warrant/budget.h"     // BudgetTracker
#include "probity/warrant/claims.h"     // Claims, WarrantId, VerifiedWarrant, ParseClaims
#include "probity/warrant/key_set.h"    // TrustedKey, KeySet
#include "probity/warrant/policy.h"     // Policy
#include "probity/warrant/refusal.h"    // RefusalCode, Refusal
#include "probity/warrant/verifier.h"   // Verifier
