#include "probity/service/review_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "probity/service/auth.h"
#include "probity/service/search_entry.h"
#include "probity/service/search_service.h"

namespace probity::service {
namespace {

// Why the request is malformed whatever the warrant says; empty when it is well formed.
std::string InvalidReview(const v1::RecordReviewRequest& request) {
  if (request.reviews_size() == 0) return "a review names at least one candidate";
  if (request.reviews_size() > kMaxCandidateReviewsPerRequest) {
    return absl::StrCat("a review names at most ", kMaxCandidateReviewsPerRequest,
                        " candidates, this one ", request.reviews_size());
  }
  std::set<std::pair<uint32_t, int64_t>> seen;
  for (const v1::CandidateReview& review : request.reviews()) {
    if (review.outcome() != v1::REVIEW_OUTCOME_KEPT &&
        review.outcome() != v1::REVIEW_OUTCOME_REJECTED) {
      return absl::StrCat("candidate ", review.id(), ": the outcome must be kept or rejected");
    }
    if (review.reason().empty()) {
      return absl::StrCat("candidate ", review.id(), ": a review needs a reason");
    }
    if (review.reason().size() > kMaxReviewReasonBytes) {
      return absl::StrCat("candidate ", review.id(), ": the reason has ", review.reason().size(),
                          " bytes, more than ", kMaxReviewReasonBytes);
    }
    if (!seen.emplace(review.query(), review.id()).second) {
      return absl::StrCat("candidate ", review.id(), " of query ", review.query(),
                          " is reviewed twice");
    }
  }
  return "";
}

// The candidates of the search that a review names but the search did not return.
std::string NotReturned(const v1::RecordReviewRequest& request, const v1::LedgerEntry& search) {
  for (const v1::CandidateReview& review : request.reviews()) {
    bool returned = false;
    if (review.query() < static_cast<uint32_t>(search.queries_size())) {
      for (const v1::Candidate& candidate :
           search.queries(static_cast<int>(review.query())).candidates()) {
        if (candidate.id() == review.id()) {
          returned = true;
          break;
        }
      }
    }
    if (!returned) {
      return absl::StrCat("candidate ", review.id(), " of query ", review.query(),
                          " is not among the candidates search entry ",
                          request.search_entry_index(), " returned");
    }
  }
  return "";
}

}  // namespace

grpc::Status ReviewServiceImpl::Refuse(grpc::ServerContext* context, v1::LedgerEntry entry,
                                       const RefusalSource& source, const CallRefusal& refusal) {
  MarkRefused(refusal, entry);
  return RecordRefusal(audit_, *context, std::move(entry), source, refusal, "review refusal");
}

grpc::Status ReviewServiceImpl::RecordReview(grpc::ServerContext* context,
                                             const v1::RecordReviewRequest* request,
                                             v1::RecordReviewResponse* response) {
  const std::optional<std::string> identity = TlsClientIdentity(*context);
  RefusalSource source{CallerKey(identity, context->peer()), /*warrant_verified=*/false};
  v1::LedgerEntry entry;
  entry.set_time_unix_micros(NowMicros());
  if (identity) {
    entry.mutable_investigator()->set_tls_identity(BoundedText(*identity, kMaxRecordedNameBytes));
  }
  // A refusal names the search entry only; the reasons are kept once the request is valid.
  entry.mutable_review()->set_search_entry_index(request->search_entry_index());

  // 1. The warrant, before anything else of the request is trusted.
  const auto verified = VerifyCallWarrant(verifier_, *context, entry, source);
  if (const auto* refusal = std::get_if<CallRefusal>(&verified)) {
    return Refuse(context, std::move(entry), source, *refusal);
  }
  const auto& warrant = std::get<warrant::VerifiedWarrant>(verified);
  // From here every refusal is recorded (the source's warrant verified).
  auto refuse = [&](const CallRefusal& refusal) {
    return Refuse(context, std::move(entry), source, refusal);
  };

  // 2. The request's own shape.
  if (std::string problem = InvalidReview(*request); !problem.empty()) {
    return refuse({grpc::StatusCode::INVALID_ARGUMENT, "invalid_request", problem});
  }

  // 3. The search it reviews: it exists, is a search, and ran under this very warrant.
  const uint64_t index = request->search_entry_index();
  v1::LedgerEntry search;
  absl::StatusOr<std::string> bytes = index < audit_.ledger().Size()
                                          ? audit_.ledger().ReadEntry(index)
                                          : absl::NotFoundError("past the end of the ledger");
  if (!bytes.ok() || !search.ParseFromString(*bytes) || search.kind() != v1::ENTRY_KIND_SEARCH) {
    return refuse({grpc::StatusCode::NOT_FOUND, "unknown_search_entry",
                   absl::StrCat("ledger entry ", index, " is not a search")});
  }
  if (search.issuer() != warrant.claims.iss || search.warrant_id() != warrant.claims.jti) {
    return refuse({grpc::StatusCode::PERMISSION_DENIED, "other_warrant",
                   absl::StrCat("search entry ", index,
                                " ran under another warrant; review it under that warrant")});
  }

  // 4. The warrant's scope over that search (identity, collection, k), reserving nothing.
  warrant::Request scope;
  scope.collections.assign(search.collections().begin(), search.collections().end());
  scope.k = search.parameters().k();
  // The search's own shape; CheckScope reserves nothing, so no budget is charged.
  scope.query_count = std::max<int64_t>(1, search.query_count());
  scope.tls_identity = identity;
  if (auto refusal = warrant::CheckScope(warrant, scope)) {
    return refuse(RefusalOf(*refusal));
  }
  if (std::string problem = NotReturned(*request, search); !problem.empty()) {
    return refuse({grpc::StatusCode::INVALID_ARGUMENT, "invalid_request", problem});
  }

  // 5. The review, durable before the answer.
  entry.set_kind(v1::ENTRY_KIND_REVIEW);
  *entry.mutable_collections() = search.collections();
  entry.mutable_review()->mutable_candidates()->CopyFrom(request->reviews());
  auto receipt = audit_.Append(entry);
  if (!receipt.ok()) {
    spdlog::error("review of entry {} not recorded: {}", index,
                  std::string(receipt.status().message()));
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "the review could not be recorded in the ledger, so it is not on the "
                        "record; try again");
  }
  response->mutable_receipt()->set_entry_index(receipt->index);
  response->mutable_receipt()->set_signed_checkpoint(receipt->signed_checkpoint);
  response->mutable_receipt()->set_verifier_key(audit_.ledger().VerifierKey());
  return grpc::Status::OK;
}

}  // namespace probity::service
