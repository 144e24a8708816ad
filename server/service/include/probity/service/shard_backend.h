#pragma once

// One shard replica as the router sees it: a shard of the local catalog (embedded mode) or a
// `probity shard` server over gRPC. The router treats both the same way.

#include <atomic>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "probity/index/types.h"
#include "probity/service/catalog.h"
#include "probity/service/replica_health.h"

namespace grpc {
class Channel;
class ChannelCredentials;
}  // namespace grpc

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

// A shard search started with ShardBackend::StartSearch. Cancel() asks it to end early; its
// completion callback still runs exactly once (with a CANCELLED error if it was cut short).
class ShardCall {
 public:
  virtual ~ShardCall() = default;
  virtual void Cancel() = 0;
};

using ShardSearchDone = std::function<void(absl::StatusOr<ShardAnswer>)>;

class ShardBackend {
 public:
  virtual ~ShardBackend() = default;
  // Blocks until the shard answers, fails or `deadline` passes.
  virtual absl::StatusOr<ShardAnswer> Search(const ShardQuery& query, absl::Time deadline) = 0;
  // Starts a search without blocking a thread; `done` runs once, on another thread, when it
  // ends. Backends that search on the caller's thread (local shards) return nullptr and never
  // call `done`: the router then runs Search() on its fan-out pool. `query.queries` need only
  // live until StartSearch returns.
  virtual std::shared_ptr<ShardCall> StartSearch(const ShardQuery& query, absl::Time deadline,
                                                 ShardSearchDone done) {
    (void)query, (void)deadline, (void)done;
    return nullptr;
  }
  // True for backends that can search several shards of a collection in one call on the
  // caller's thread (local shards: they share one coarse assignment, so the call costs less
  // than searching each shard on its own). The router uses it when every shard has this one
  // replica and every core already has a search to run, where spreading shards over threads
  // only adds hand-offs.
  virtual bool SearchesShardsTogether() const { return false; }
  // One answer per shard of `shards`, in that order; `query.shard` is ignored. Only called
  // where SearchesShardsTogether() is true.
  virtual absl::StatusOr<std::vector<ShardAnswer>> SearchShards(const ShardQuery& query,
                                                                std::span<const int> shards,
                                                                absl::Time deadline) {
    (void)query, (void)shards, (void)deadline;
    return absl::UnimplementedError(Describe() + " searches one shard per call");
  }
  virtual std::string Describe() const = 0;
  // The router's record of this replica (load, latency, failures); shared by every shard the
  // backend serves, so a shard server is judged as a whole.
  ReplicaHealth& health() const { return health_; }
  // Erases ids from every shard of `collection` the backend holds; returns how many it removed.
  virtual absl::StatusOr<int64_t> Erase(const std::string& collection,
                                        const std::vector<int64_t>& ids,
                                        const std::string& reason) {
    (void)collection, (void)ids, (void)reason;
    return absl::UnimplementedError(Describe() + " cannot erase");
  }

 private:
  mutable ReplicaHealth health_;
};

// Counts shard searches that actually ran, so tests can prove a refused request ran none.
struct ShardCounters {
  std::atomic<uint64_t> searches_run{0};  // FAISS calls on local shards
  // Shard searches answered from a call shared with other requests (dynamic batching).
  std::atomic<uint64_t> searches_coalesced{0};
  // Wall time inside those FAISS calls, summed over calls. Over a window, its growth over the
  // window's length is how busy the shards were: with one shard per GPU and dynamic batching,
  // the share of the time that GPU was searching, and what is left of it is the time the
  // batcher kept the shard idle between calls.
  std::atomic<uint64_t> search_micros{0};
};

// Runs one shard search on the local catalog with a bounded number of OpenMP threads.
absl::StatusOr<ShardAnswer> SearchLocalShard(const Catalog& catalog, const ShardQuery& query,
                                             int omp_threads, ShardCounters& counters);

// The same for several shards of one collection in one call (ShardedIndex::SearchShards).
absl::StatusOr<std::vector<ShardAnswer>> SearchLocalShards(const Catalog& catalog,
                                                           const ShardQuery& query,
                                                           std::span<const int> shards,
                                                           int omp_threads,
                                                           ShardCounters& counters);

std::unique_ptr<ShardBackend> MakeLocalShardBackend(const Catalog& catalog, int omp_threads,
                                                    ShardCounters& counters);
std::unique_ptr<ShardBackend> MakeRemoteShardBackend(std::string address,
                                                     std::shared_ptr<grpc::Channel> channel);

// How long one attempt to connect to a shard server may take (TCP, TLS, HTTP/2 settings)
// before it counts as failed: long enough for a handshake over a slow or busy link, short
// enough that an unreachable server is passed over (calls on a connecting channel wait).
inline constexpr absl::Duration kShardConnectTimeout = absl::Seconds(2);

// A channel to a shard server that reconnects after at most `max_reconnect_backoff` (gRPC's own
// default grows to 120 s, so a restarted server would sit unused for up to two minutes), each
// attempt bounded by kShardConnectTimeout.
std::shared_ptr<grpc::Channel> MakeShardChannel(
    const std::string& address, const std::shared_ptr<grpc::ChannelCredentials>& credentials,
    absl::Duration max_reconnect_backoff);

}  // namespace probity::service
