#pragma once

// What every call under a warrant (Search, ReviewService.RecordReview) does the same way: the
// bearer warrant is verified before anything else of the request is trusted, and a refused call
// is a REFUSAL ledger entry (within the audit log's refusal limits) before it is answered, its
// index in the `probity-ledger-index` trailer.

#include <grpcpp/grpcpp.h>

#include <string>
#include <string_view>
#include <variant>

#include "probity/service/audit_log.h"
#include "probity/v1/ledger_entry.pb.h"
#include "probity/warrant/verifier.h"
#include "probity/warrant/warrant.h"

namespace probity::service {

// A refused call: the status the caller gets, and the code and message the ledger records.
struct CallRefusal {
  grpc::StatusCode status;
  std::string code;  // the warrant library's refusal code, or the service's own
  std::string message;
};

// The warrant library's refusal: UNAUTHENTICATED when the caller did not authenticate (no,
// malformed or unverifiable token), PERMISSION_DENIED when the warrant does not allow the call.
CallRefusal RefusalOf(const warrant::Refusal& refusal);

// Verifies the call's bearer warrant. `entry` gets the token's SHA-256 whenever one was sent
// and, once it verifies, the warrant's fields (FillWarrantFields); `source.warrant_verified` is
// set then, so that every later refusal of the call is recorded.
std::variant<warrant::VerifiedWarrant, CallRefusal> VerifyCallWarrant(
    const warrant::Verifier& verifier, const grpc::ServerContext& context, v1::LedgerEntry& entry,
    RefusalSource& source);

// Makes `entry` the REFUSAL entry of `refusal` (its message cut to kMaxRecordedMessageBytes).
void MarkRefused(const CallRefusal& refusal, v1::LedgerEntry& entry);

// Appends the REFUSAL entry (MarkRefused) within the audit log's refusal limits, names its index
// in the trailer when it was recorded, and returns the caller's status ("<code>: <message>").
// The call is refused either way: one that the ledger could not record is logged under
// `log_label` ("refusal", "review refusal"), and nothing was answered unrecorded.
grpc::Status RecordRefusal(AuditLog& audit, grpc::ServerContext& context, v1::LedgerEntry entry,
                           const RefusalSource& source, const CallRefusal& refusal,
                           std::string_view log_label);

}  // namespace probity::service
