#include "probity/service/search_service.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <variant>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "elapsed_micros.h"
#include "probity/service/auth.h"
#include "probity/service/grpc_status.h"
#include "probity/service/search_entry.h"

namespace probity::service {
namespace {

using internal::AddMicrosSince;

class InFlightSlot {
 public:
  explicit InFlightSlot(std::atomic<int64_t>& counter) : counter_(counter) {}
  ~InFlightSlot() { counter_.fetch_sub(1); }
  InFlightSlot(const InFlightSlot&) = delete;
  InFlightSlot& operator=(const InFlightSlot&) = delete;

 private:
  std::atomic<int64_t>& counter_;
};

// Per refusal entry beyond its justification and per-vector records: time, parameters, the
// bounded collection, identity and message, the warrant's claims and hashes, with room to spare.
constexpr size_t kRefusalEntryOverheadBytes = 4096;
constexpr size_t kVerifiedRefusalOverheadBytes = 64 << 10;  // claims of a signed warrant
constexpr size_t kQueryRecordBytes = 40;                    // one vector_sha256 record

void FillCoverage(const RoutedSearch& routed, v1::SearchCoverage& coverage) {
  coverage.set_shards_answered(routed.shards_answered);
  coverage.set_shards_total(routed.shards_total);
  coverage.set_partial(routed.shards_answered < routed.shards_total);
  for (const ShardFailure& failure : routed.failed_shards) {
    v1::ShardFailure* out = coverage.add_failures();
    out->set_shard(failure.shard);
    out->set_code(absl::StatusCodeToString(failure.code));
    out->mutable_servers()->Add(failure.servers.begin(), failure.servers.end());
    out->set_message(failure.message);
  }
}

// UNAVAILABLE with the coverage as data (a SearchFailure in the status details), so a client
// need not parse the message to learn which shards were missing and why.
grpc::Status FailedSearchStatus(const RoutedSearch& routed, uint64_t ledger_index) {
  const grpc::Status status = ToGrpcStatus(routed.status);
  v1::SearchFailure failure;
  FillCoverage(routed, *failure.mutable_coverage());
  failure.set_ledger_entry_index(ledger_index);
  failure.set_queries_charged(0);
  v1::SearchStatus details;
  details.set_code(static_cast<int32_t>(status.error_code()));
  details.set_message(status.error_message());
  details.add_details()->PackFrom(failure);
  return grpc::Status(status.error_code(), status.error_message(), details.SerializeAsString());
}

}  // namespace

int MaxSearchMessageBytes(int max_queries_per_request, int largest_dim,
                          int max_justification_bytes) {
  // A QueryVector costs its floats plus at most 12 bytes of tags and lengths; 64 KiB covers the
  // collection name, scalar fields and the message framing.
  const int64_t bytes =
      int64_t{std::max(1, max_queries_per_request)} * (int64_t{std::max(1, largest_dim)} * 4 + 16) +
      std::max(0, max_justification_bytes) + (64 << 10);
  return static_cast<int>(std::min<int64_t>(bytes, std::numeric_limits<int>::max()));
}

v1::LedgerEntry SearchServiceImpl::RequestEntry(
    const v1::SearchRequest& request, const std::optional<std::string>& tls_identity) const {
  v1::LedgerEntry entry;
  entry.set_time_unix_micros(NowMicros());
  entry.add_collections(BoundedText(request.collection(), kMaxRecordedNameBytes));
  entry.set_justification(
      BoundedText(request.justification(), static_cast<size_t>(options_.max_justification_bytes)));
  v1::SearchParameters* parameters = entry.mutable_parameters();
  parameters->set_k(request.k());
  parameters->set_nprobe(request.nprobe() > 0 ? request.nprobe()
                                              : static_cast<uint32_t>(options_.default_nprobe));
  if (request.has_min_score()) parameters->set_min_score(request.min_score());
  parameters->set_allow_partial(request.allow_partial());
  if (tls_identity) {
    entry.mutable_investigator()->set_tls_identity(
        BoundedText(*tls_identity, kMaxRecordedNameBytes));
  }
  return entry;
}

std::optional<std::string> SearchServiceImpl::InvalidRequest(
    const v1::SearchRequest& request) const {
  const int64_t nq = request.queries_size();
  if (nq == 0) return "a search needs at least one query vector";
  if (nq > options_.max_queries_per_request) {
    return absl::StrCat("the request carries ", nq, " query vectors; this server takes at most ",
                        options_.max_queries_per_request, " per request");
  }
  if (request.k() == 0 || request.k() > kMaxK) {
    return absl::StrCat("k must be 1 .. ", kMaxK, ", got ", request.k());
  }
  if (nq * request.k() > kMaxCandidatesPerRequest) {
    return absl::StrCat("k x query vectors is ", nq * request.k(), ", over this server's limit of ",
                        kMaxCandidatesPerRequest, " candidates per request");
  }
  if (request.nprobe() > kMaxNprobe) {
    return absl::StrCat("nprobe must be 0 (the server's default) .. ", kMaxNprobe, ", got ",
                        request.nprobe());
  }
  if (request.has_min_score() && !std::isfinite(request.min_score())) {
    return "min_score must be a finite number";
  }
  if (request.justification().size() > static_cast<size_t>(options_.max_justification_bytes)) {
    return absl::StrCat("the justification has ", request.justification().size(),
                        " bytes, more than this server's limit of ",
                        options_.max_justification_bytes);
  }
  for (int q = 0; q < nq; ++q) {
    const auto& values = request.queries(q).values();
    if (!std::all_of(values.begin(), values.end(), [](float v) { return std::isfinite(v); })) {
      return absl::StrCat("query vector ", q, " holds a NaN or infinite value");
    }
  }
  return std::nullopt;
}

grpc::Status SearchServiceImpl::Refuse(grpc::ServerContext* context,
                                       const v1::SearchRequest& request, v1::LedgerEntry entry,
                                       const RefusalSource& source, const CallRefusal& refusal) {
  counters_.refusals.fetch_add(1);
  if (options_.metrics != nullptr) options_.metrics->SearchRefused(refusal.code);
  MarkRefused(refusal, entry);
  entry.set_query_count(0);
  entry.set_queries_received(static_cast<uint32_t>(request.queries_size()));
  size_t max_bytes = static_cast<size_t>(options_.max_justification_bytes) +
                     kMaxRecordedMessageBytes + kRefusalEntryOverheadBytes;
  if (source.warrant_verified) {
    // A verified caller's query vectors are on record: one hash per vector for a batch this
    // server would accept, one digest over all of them beyond (never an entry over the cap).
    if (request.queries_size() <= options_.max_queries_per_request) {
      RecordQueryHashes(request, entry);
    } else {
      entry.set_queries_sha256(QueriesSha256(request));
    }
    max_bytes += kVerifiedRefusalOverheadBytes +
                 kQueryRecordBytes * static_cast<size_t>(options_.max_queries_per_request);
  }
  if (!FitRefusalEntry(request, max_bytes, entry)) {
    spdlog::error("refusal ({}) entry over {} bytes even when cut", refusal.code, max_bytes);
  }
  return RecordRefusal(audit_, *context, std::move(entry), source, refusal, "refusal");
}

grpc::Status SearchServiceImpl::Search(grpc::ServerContext* context,
                                       const v1::SearchRequest* request,
                                       v1::SearchResponse* response) {
  const absl::Time started = options_.metrics != nullptr ? absl::Now() : absl::InfinitePast();
  if (counters_.in_flight.fetch_add(1) >= options_.max_in_flight) {
    counters_.in_flight.fetch_sub(1);
    counters_.searches_refused_busy.fetch_add(1);
    if (options_.metrics != nullptr) options_.metrics->SearchBusy();
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        absl::StrCat("server busy: ", options_.max_in_flight,
                                     " searches in flight; retry with backoff"));
  }
  InFlightSlot slot(counters_.in_flight);

  const int64_t nq = request->queries_size();
  const std::optional<std::string> identity = TlsClientIdentity(*context);
  RefusalSource source{CallerKey(identity, context->peer()), /*warrant_verified=*/false};
  v1::LedgerEntry entry = RequestEntry(*request, identity);

  // 1. The warrant, before anything else touches the request: until it verifies, the entry
  //    holds nothing of the query vectors but their count.
  const auto verified = VerifyCallWarrant(verifier_, *context, entry, source);
  if (const auto* refusal = std::get_if<CallRefusal>(&verified)) {
    return Refuse(context, *request, std::move(entry), source, *refusal);
  }
  const auto& warrant = std::get<warrant::VerifiedWarrant>(verified);
  // From here every refusal is recorded (the source's warrant verified).
  auto refuse = [&](const CallRefusal& refusal) {
    return Refuse(context, *request, std::move(entry), source, refusal);
  };

  // 2. The request, whole, before its warrant's budget is touched: its own shape, the
  //    warrant's scope, then what this deployment serves. A refused request is never charged.
  if (auto problem = InvalidRequest(*request)) {
    return refuse({grpc::StatusCode::INVALID_ARGUMENT, "invalid_request", *problem});
  }
  warrant::Request wanted;
  wanted.collections = {request->collection()};
  wanted.k = request->k();
  wanted.query_count = nq;
  wanted.tls_identity = identity;
  if (auto refusal = warrant::CheckScope(warrant, wanted)) {
    return refuse(RefusalOf(*refusal));
  }
  const std::optional<CollectionRoute> route = router_.Route(request->collection());
  if (!route) {
    return refuse({grpc::StatusCode::NOT_FOUND, "unknown_collection",
                   absl::StrCat("this deployment serves no collection named \"",
                                request->collection(), "\"")});
  }
  for (const v1::QueryVector& query : request->queries()) {
    if (query.values_size() != route->dim) {
      return refuse({grpc::StatusCode::INVALID_ARGUMENT, "invalid_request",
                     absl::StrCat("query vectors must have ", route->dim, " values, got ",
                                  query.values_size())});
    }
  }
  if (auto refusal = warrant::ReserveBudget(warrant, nq, budgets_)) {
    return refuse(RefusalOf(*refusal));
  }
  // The budget is reserved: from here no refusal remains, and a search that is not recorded
  // gives it back.
  const warrant::WarrantId warrant_id = warrant::IdOf(warrant.claims);
  RecordQueryHashes(*request, entry);
  std::vector<float> queries;
  queries.reserve(nq * route->dim);
  for (const v1::QueryVector& query : request->queries()) {
    queries.insert(queries.end(), query.values().begin(), query.values().end());
  }
  v1::SearchParameters* parameters = entry.mutable_parameters();
  parameters->set_metric(index::MetricName(route->metric));

  // 3. The search.
  index::SearchParams params;
  params.k = static_cast<int>(request->k());
  params.nprobe = static_cast<int>(parameters->nprobe());  // at most kMaxNprobe
  if (request->has_min_score()) params.min_score = request->min_score();
  const absl::Time deadline = context->deadline() == std::chrono::system_clock::time_point::max()
                                  ? absl::InfiniteFuture()
                                  : absl::FromChrono(context->deadline());
  // Every search in this handler keeps a core busy (warrant, ledger, answer), not only those
  // in the router's shard phase: the router's rule for searching local shards in one call
  // counts them all.
  const absl::Time shard_phase_started = absl::Now();
  RoutedSearch routed = router_.Search(*route, queries, params, request->allow_partial(), deadline,
                                       counters_.in_flight.load());
  AddMicrosSince(shard_phase_started, counters_.shard_phase_micros, counters_.shard_phase_latency);
  auto count_search = [&](SearchOutcome outcome) {
    if (options_.metrics == nullptr) return;
    options_.metrics->SearchRan(outcome, absl::Now() - started, routed.shards_answered,
                                routed.shards_total);
  };

  entry.set_kind(v1::ENTRY_KIND_SEARCH);
  // A failed search returns nothing, so it charges nothing: its entry says 0 queries charged
  // (and how many it carried), which is what RestoreBudgets adds up at the next start, and the
  // reservation is given back once the entry is durable.
  const bool failed = !routed.status.ok();
  entry.set_query_count(failed ? 0 : nq);
  if (failed) entry.set_queries_received(static_cast<uint32_t>(nq));
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
  const absl::Time append_started = absl::Now();
  auto receipt = audit_.Append(entry);
  AddMicrosSince(append_started, counters_.ledger_append_micros, counters_.ledger_append_latency);
  if (!receipt.ok()) {
    counters_.searches_failed.fetch_add(1);
    count_search(SearchOutcome::kNotRecorded);
    budgets_.Release(warrant_id, nq);
    spdlog::error("ledger append failed; search not answered: {}",
                  std::string(receipt.status().message()));
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        absl::StrCat("the ledger could not record this search, so it is not "
                                     "answered: ",
                                     receipt.status().message()));
  }
  context->AddTrailingMetadata(kLedgerIndexTrailer, std::to_string(receipt->index));
  if (failed) {
    counters_.searches_failed.fetch_add(1);
    budgets_.Release(warrant_id, nq);
    count_search(SearchOutcome::kFailed);
    return FailedSearchStatus(routed, receipt->index);
  }
  counters_.searches_answered.fetch_add(1);
  count_search(routed.shards_answered == routed.shards_total ? SearchOutcome::kAnswered
                                                             : SearchOutcome::kAnsweredPartial);

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
  FillCoverage(routed, *response->mutable_coverage());
  response->mutable_receipt()->set_entry_index(receipt->index);
  response->mutable_receipt()->set_signed_checkpoint(receipt->signed_checkpoint);
  response->mutable_receipt()->set_verifier_key(audit_.ledger().VerifierKey());
  response->set_index_generation(routed.generation);
  response->set_metric(index::MetricName(route->metric));
  return grpc::Status::OK;
}

}  // namespace probity::service
