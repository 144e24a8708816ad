#include "probity/service/search_service.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <variant>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "probity/service/auth.h"
#include "probity/service/grpc_status.h"

namespace probity::service {
namespace {

class InFlightSlot {
 public:
  explicit InFlightSlot(std::atomic<int64_t>& counter) : counter_(counter) {}
  ~InFlightSlot() { counter_.fetch_sub(1); }
  InFlightSlot(const InFlightSlot&) = delete;
  InFlightSlot& operator=(const InFlightSlot&) = delete;

 private:
  std::atomic<int64_t>& counter_;
};

void FillWarrant(const warrant::VerifiedWarrant& warrant, v1::LedgerEntry& entry) {
  entry.set_warrant_id(warrant.claims.jti);
  entry.set_issuer(warrant.claims.iss);
  entry.mutable_investigator()->set_sub(warrant.claims.sub);
  entry.set_case_number(warrant.claims.case_number);
  entry.set_purpose(warrant.claims.purpose);
}

}  // namespace

grpc::Status SearchServiceImpl::Refuse(grpc::ServerContext* context, v1::LedgerEntry entry,
                                       grpc::StatusCode code, const std::string& refusal_code,
                                       const std::string& message) {
  counters_.refusals.fetch_add(1);
  entry.set_kind(v1::ENTRY_KIND_REFUSAL);
  entry.set_outcome(v1::OUTCOME_REFUSED);
  entry.set_query_count(0);
  entry.mutable_refusal()->set_code(refusal_code);
  entry.mutable_refusal()->set_message(message);
  auto receipt = audit_.AppendRefusal(std::move(entry));
  if (!receipt.ok()) {
    // The request is refused either way; no search ran, so nothing is answered unrecorded.
    spdlog::error("refusal ({}) could not be recorded: {}", refusal_code,
                  std::string(receipt.status().message()));
  } else if (receipt->has_value()) {
    context->AddTrailingMetadata(kLedgerIndexTrailer, std::to_string((*receipt)->index));
  }
  return grpc::Status(code, absl::StrCat(refusal_code, ": ", message));
}

grpc::Status SearchServiceImpl::Search(grpc::ServerContext* context,
                                       const v1::SearchRequest* request,
                                       v1::SearchResponse* response) {
  if (counters_.in_flight.fetch_add(1) >= options_.max_in_flight) {
    counters_.in_flight.fetch_sub(1);
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        absl::StrCat("server busy: ", options_.max_in_flight,
                                     " searches in flight; retry with backoff"));
  }
  InFlightSlot slot(counters_.in_flight);

  const int64_t nq = request->queries_size();
  v1::LedgerEntry entry;
  entry.set_time_unix_micros(NowMicros());
  entry.add_collections(request->collection());
  entry.set_justification(request->justification());
  const int nprobe =
      request->nprobe() > 0 ? static_cast<int>(request->nprobe()) : options_.default_nprobe;
  v1::SearchParameters* parameters = entry.mutable_parameters();
  parameters->set_k(request->k());
  parameters->set_nprobe(nprobe);
  if (request->has_min_score()) parameters->set_min_score(request->min_score());
  parameters->set_allow_partial(request->allow_partial());
  for (const v1::QueryVector& query : request->queries()) {
    const std::string_view bytes(reinterpret_cast<const char*>(query.values().data()),
                                 query.values_size() * sizeof(float));
    entry.add_queries()->set_vector_sha256(Sha256Bytes(bytes));
  }
  const std::optional<std::string> identity = TlsClientIdentity(*context);
  if (identity) entry.mutable_investigator()->set_tls_identity(*identity);

  // 1. The warrant, before anything else touches the request.
  const std::optional<std::string> token = BearerToken(*context);
  if (token && !token->empty()) {
    entry.set_warrant_sha256(Sha256Bytes(*token));
  }
  const auto verified = verifier_.Verify(token.value_or(""), absl::Now());
  if (const auto* refusal = std::get_if<warrant::Refusal>(&verified)) {
    const auto code = refusal->IsAuthentication() ? grpc::StatusCode::UNAUTHENTICATED
                                                  : grpc::StatusCode::PERMISSION_DENIED;
    return Refuse(context, std::move(entry), code,
                  std::string(warrant::RefusalCodeName(refusal->code)), refusal->message);
  }
  const auto& warrant = std::get<warrant::VerifiedWarrant>(verified);
  FillWarrant(warrant, entry);

  // The request's shape before its scope: Authorize expects k >= 1 and at least one query.
  if (nq == 0 || request->k() == 0) {
    return Refuse(context, std::move(entry), grpc::StatusCode::INVALID_ARGUMENT, "invalid_request",
                  "a search needs at least one query vector and k >= 1");
  }
  warrant::Request wanted;
  wanted.collections = {request->collection()};
  wanted.k = request->k();
  wanted.query_count = nq;
  wanted.tls_identity = identity;
  if (auto refusal = warrant::Authorize(warrant, wanted, budgets_)) {
    const auto code = refusal->IsAuthentication() ? grpc::StatusCode::UNAUTHENTICATED
                                                  : grpc::StatusCode::PERMISSION_DENIED;
    return Refuse(context, std::move(entry), code,
                  std::string(warrant::RefusalCodeName(refusal->code)), refusal->message);
  }
  // From here the budget is reserved: every early return gives it back.
  auto refuse_request = [&](grpc::StatusCode code, const std::string& refusal_code,
                            const std::string& message) {
    budgets_.Release(warrant.claims.jti, nq);
    return Refuse(context, std::move(entry), code, refusal_code, message);
  };

  // 2. The request itself.
  const std::optional<CollectionRoute> route = router_.Route(request->collection());
  if (!route) {
    return refuse_request(
        grpc::StatusCode::NOT_FOUND, "unknown_collection",
        absl::StrCat("this deployment serves no collection named \"", request->collection(), "\""));
  }
  std::vector<float> queries;
  queries.reserve(nq * route->dim);
  for (const v1::QueryVector& query : request->queries()) {
    if (query.values_size() != route->dim) {
      return refuse_request(grpc::StatusCode::INVALID_ARGUMENT, "invalid_request",
                            absl::StrCat("query vectors must have ", route->dim, " values, got ",
                                         query.values_size()));
    }
    queries.insert(queries.end(), query.values().begin(), query.values().end());
  }
  parameters->set_metric(index::MetricName(route->metric));

  // 3. The search.
  index::SearchParams params;
  params.k = static_cast<int>(request->k());
  params.nprobe = nprobe;
  if (request->has_min_score()) params.min_score = request->min_score();
  const absl::Time deadline = context->deadline() == std::chrono::system_clock::time_point::max()
                                  ? absl::InfiniteFuture()
                                  : absl::FromChrono(context->deadline());
  RoutedSearch routed = router_.Search(*route, queries, params, request->allow_partial(), deadline);

  entry.set_kind(v1::ENTRY_KIND_SEARCH);
  entry.set_query_count(nq);
  entry.set_index_generation(routed.generation);
  entry.mutable_coverage()->set_shards_answered(routed.shards_answered);
  entry.mutable_coverage()->set_shards_total(routed.shards_total);
  if (!routed.status.ok()) {
    entry.set_outcome(v1::OUTCOME_FAILED);
  } else {
    entry.set_outcome(routed.shards_answered == routed.shards_total ? v1::OUTCOME_ANSWERED
                                                                    : v1::OUTCOME_ANSWERED_PARTIAL);
    for (int q = 0; q < nq; ++q) {
      for (const index::Hit& hit : routed.hits[q]) {
        v1::Candidate* candidate = entry.mutable_queries(q)->add_candidates();
        candidate->set_id(hit.id);
        candidate->set_score(hit.score);
        candidate->set_shard(hit.shard);
      }
    }
  }

  // 4. The ledger entry, durable, before any answer.
  auto receipt = audit_.Append(entry);
  if (!receipt.ok()) {
    counters_.searches_failed.fetch_add(1);
    budgets_.Release(warrant.claims.jti, nq);
    spdlog::error("ledger append failed; search not answered: {}",
                  std::string(receipt.status().message()));
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        absl::StrCat("the ledger could not record this search, so it is not "
                                     "answered: ",
                                     receipt.status().message()));
  }
  context->AddTrailingMetadata(kLedgerIndexTrailer, std::to_string(receipt->index));
  if (!routed.status.ok()) {
    counters_.searches_failed.fetch_add(1);
    return ToGrpcStatus(routed.status);
  }
  counters_.searches_answered.fetch_add(1);

  for (const index::HitList& hits : routed.hits) {
    v1::CandidateList* list = response->add_results();
    uint32_t rank = 0;
    for (const index::Hit& hit : hits) {
      v1::RankedCandidate* candidate = list->add_candidates();
      candidate->set_rank(++rank);
      candidate->set_id(hit.id);
      candidate->set_score(hit.score);
      candidate->set_shard(hit.shard);
    }
  }
  response->mutable_coverage()->set_shards_answered(routed.shards_answered);
  response->mutable_coverage()->set_shards_total(routed.shards_total);
  response->mutable_coverage()->set_partial(routed.shards_answered < routed.shards_total);
  response->mutable_receipt()->set_entry_index(receipt->index);
  response->mutable_receipt()->set_signed_checkpoint(receipt->signed_checkpoint);
  response->mutable_receipt()->set_verifier_key(audit_.ledger().VerifierKey());
  response->set_index_generation(routed.generation);
  response->set_metric(index::MetricName(route->metric));
  return grpc::Status::OK;
}

}  // namespace probity::service
