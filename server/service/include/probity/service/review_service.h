#pragma once

// Human review on the record (EU AI Act Art. 12(3)(d)): the investigator who reviewed a
// search's candidate list records, per candidate, whether it was kept as a lead or rejected,
// and why. Under the same warrant as the search: the warrant is verified and its scope checked
// (identity, the search's collection and k), no search budget is charged, and the search
// entry must exist and belong to that warrant (issuer and id). The review is a REVIEW ledger
// entry naming the search entry, durable before the answer; a refused review is a REFUSAL
// entry, bounded and rate-limited like the Search service's.

#include <grpcpp/grpcpp.h>

#include <cstddef>

#include "probity/service/audit_log.h"
#include "probity/service/warranted_call.h"
#include "probity/v1/review.grpc.pb.h"
#include "probity/warrant/warrant.h"

namespace probity::service {

// A reason is a short sentence; longer ones are refused (invalid_request), not cut.
inline constexpr size_t kMaxReviewReasonBytes = 512;
// Candidates reviewed per request: as many as one search's query can return (kMaxK).
inline constexpr int kMaxCandidateReviewsPerRequest = 4096;

class ReviewServiceImpl final : public v1::ReviewService::Service {
 public:
  ReviewServiceImpl(const warrant::Verifier& verifier, AuditLog& audit)
      : verifier_(verifier), audit_(audit) {}

  grpc::Status RecordReview(grpc::ServerContext* context, const v1::RecordReviewRequest* request,
                            v1::RecordReviewResponse* response) override;

 private:
  grpc::Status Refuse(grpc::ServerContext* context, v1::LedgerEntry entry,
                      const RefusalSource& source, const CallRefusal& refusal);

  const warrant::Verifier& verifier_;
  AuditLog& audit_;
};

}  // namespace probity::service
