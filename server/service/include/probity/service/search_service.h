#pragma once

// The investigator's Search API: warrant first, no search on refusal, the ledger entry durable
// before the answer, fail closed when the ledger cannot append.

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include "probity/service/audit_log.h"
#include "probity/service/metrics.h"
#include "probity/service/router.h"
#include "probity/service/service_counters.h"
#include "probity/service/shard_backend.h"
#include "probity/service/warranted_call.h"
#include "probity/v1/search.grpc.pb.h"
#include "probity/warrant/warrant.h"

namespace probity::service {

// Trailing metadata naming the ledger entry of a refused or failed call.
inline constexpr char kLedgerIndexTrailer[] = "probity-ledger-index";

// Hard bounds on request fields, whatever a warrant allows: k and nprobe must fit the index's
// int parameters, and k x queries bounds the candidates one SEARCH entry records.
inline constexpr uint32_t kMaxK = 4096;
inline constexpr uint32_t kMaxNprobe = 65536;
inline constexpr int64_t kMaxCandidatesPerRequest = int64_t{1} << 20;

// The gRPC receive limit for a server whose largest collection has `largest_dim` dimensions:
// the largest legitimate SearchRequest (max_queries_per_request vectors, the longest
// justification) with headroom for framing and the collection name. A larger message is
// refused by gRPC (RESOURCE_EXHAUSTED) before it is read into memory or reaches the service.
int MaxSearchMessageBytes(int max_queries_per_request, int largest_dim,
                          int max_justification_bytes);

class SearchServiceImpl final : public v1::Search::Service {
 public:
  struct Options {
    int max_in_flight = 64;
    int default_nprobe = 16;
    int max_queries_per_request = 1024;
    int max_justification_bytes = 2048;
    Metrics* metrics = nullptr;  // null: no metrics
  };
  SearchServiceImpl(const warrant::Verifier& verifier, warrant::BudgetTracker& budgets,
                    AuditLog& audit, const Router& router, ServiceCounters& counters,
                    Options options)
      : verifier_(verifier),
        budgets_(budgets),
        audit_(audit),
        router_(router),
        counters_(counters),
        options_(options) {}

  grpc::Status Search(grpc::ServerContext* context, const v1::SearchRequest* request,
                      v1::SearchResponse* response) override;

 private:
  // The entry every outcome starts from: bounded, and without per-vector data.
  v1::LedgerEntry RequestEntry(const v1::SearchRequest& request,
                               const std::optional<std::string>& tls_identity) const;
  // Why the request is invalid whatever the warrant says; nullopt when it is well formed.
  std::optional<std::string> InvalidRequest(const v1::SearchRequest& request) const;
  grpc::Status Refuse(grpc::ServerContext* context, const v1::SearchRequest& request,
                      v1::LedgerEntry entry, const RefusalSource& source,
                      const CallRefusal& refusal);

  const warrant::Verifier& verifier_;
  warrant::BudgetTracker& budgets_;
  AuditLog& audit_;
  const Router& router_;
  ServiceCounters& counters_;
  Options options_;
};

}  // namespace probity::service
