#pragma once

// One shard replica as the router sees it: a shard of the local catalog (embedded mode) or a
// `probity shard` server over gRPC. The router treats both the same way.

#include <atomic>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "probity/index/types.h"
#include "probity/service/catalog.h"

namespace grpc {
class Channel;
}

namespace probity::service {

struct ShardQuery {
  std::string collection;
  int shard = 0;
  int dim = 0;
  std::span<const float> queries;  // nq x dim
  index::SearchParams params;
  index::Metric metric = index::Metric::kInnerProduct;  // the collection's (orders hits)
};

struct ShardAnswer {
  std::vector<index::HitList> hits;  // one per query
  std::string generation;
};

class ShardBackend {
 public:
  virtual ~ShardBackend() = default;
  virtual absl::StatusOr<ShardAnswer> Search(const ShardQuery& query, absl::Time deadline) = 0;
  virtual std::string Describe() const = 0;
  // Erases ids from every shard of `collection` the backend holds; returns how many it removed.
  virtual absl::StatusOr<int64_t> Erase(const std::string& collection,
                                        const std::vector<int64_t>& ids,
                                        const std::string& reason) {
    (void)collection, (void)ids, (void)reason;
    return absl::UnimplementedError(Describe() + " cannot erase");
  }
};

// Counts shard searches that actually ran, so tests can prove a refused request ran none.
struct ShardCounters {
  std::atomic<uint64_t> searches_run{0};  // FAISS calls on local shards
  // Shard searches answered from a call shared with other requests (dynamic batching).
  std::atomic<uint64_t> searches_coalesced{0};
};

// Runs one shard search on the local catalog with a bounded number of OpenMP threads.
absl::StatusOr<ShardAnswer> SearchLocalShard(const Catalog& catalog, const ShardQuery& query,
                                             int omp_threads, ShardCounters& counters);

std::unique_ptr<ShardBackend> MakeLocalShardBackend(const Catalog& catalog, int omp_threads,
                                                    ShardCounters& counters);
std::unique_ptr<ShardBackend> MakeRemoteShardBackend(std::string address,
                                                     std::shared_ptr<grpc::Channel> channel);

}  // namespace probity::service
