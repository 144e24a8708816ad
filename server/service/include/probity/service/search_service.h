#pragma once

// The investigator's Search API: warrant first, no search on refusal, the ledger entry durable
// before the answer, fail closed when the ledger cannot append.

#include <atomic>
#include <cstdint>

#include "probity/service/audit_log.h"
#include "probity/service/router.h"
#include "probity/service/shard_backend.h"
#include "probity/v1/search.grpc.pb.h"
#include "probity/warrant/warrant.h"

namespace probity::service {

struct ServiceCounters {
  std::atomic<uint64_t> searches_answered{0};
  std::atomic<uint64_t> searches_failed{0};
  std::atomic<uint64_t> refusals{0};
  std::atomic<int64_t> in_flight{0};
  ShardCounters shards;  // searches run on the shards of this process
};

// Trailing metadata naming the ledger entry of a refused or failed call.
inline constexpr char kLedgerIndexTrailer[] = "probity-ledger-index";

class SearchServiceImpl final : public v1::Search::Service {
 public:
  struct Options {
    int max_in_flight = 64;
    int default_nprobe = 16;
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
  grpc::Status Refuse(grpc::ServerContext* context, v1::LedgerEntry entry, grpc::StatusCode code,
                      const std::string& refusal_code, const std::string& message);

  const warrant::Verifier& verifier_;
  warrant::BudgetTracker& budgets_;
  AuditLog& audit_;
  const Router& router_;
  ServiceCounters& counters_;
  Options options_;
};

}  // namespace probity::service
