#pragma once

// Fans a batch of queries out to every shard of a collection in parallel and merges with
// index::MergeTopK, reporting coverage. Each shard search goes to the replica expected to
// answer first (two random choices, compared by latency estimate x attempts running, with a
// replica that just failed passed over for a short while); a failed attempt is retried at once
// on another replica, and one that has not answered after the hedge delay (derived from observed
// latency, see HedgePolicy) is hedged on another replica: the first answer is used, the other
// attempt cancelled, so each shard contributes exactly one answer to the merge. Every attempt
// ends by the caller's deadline. The same code serves local shards (embedded mode) and remote
// shard servers. Where one backend is the only replica of every shard and can search several
// shards in one call (local shards), and at least as many searches run as there are cores, the
// shards are searched in that one call on the caller's thread instead (see
// ShardBackend::SearchesShardsTogether); with fewer searches running, a search goes whichever way
// has been faster for that collection (SplitChoice).

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "probity/index/types.h"
#include "probity/service/hedge_policy.h"
#include "probity/service/shard_backend.h"
#include "probity/service/split_choice.h"
#include "probity/service/thread_pool.h"

namespace probity::service {

struct CollectionRoute {
  std::string name;
  index::Metric metric = index::Metric::kInnerProduct;
  int dim = 0;
  // replicas[s] lists the backends holding shard s; empty = shard unreachable.
  std::vector<std::vector<std::shared_ptr<ShardBackend>>> replicas;
  // Where one backend holds every shard and searches them in one call: whether a search with
  // cores to spare splits them over the pool, measured (shared by every copy of the route;
  // Router::SetRoute and AddReplica give each route one). None: such searches always split.
  std::shared_ptr<SplitChoice> split_choice;
};

// A shard that no replica answered.
struct ShardFailure {
  uint32_t shard = 0;
  absl::StatusCode code = absl::StatusCode::kUnavailable;  // of the last error
  std::vector<std::string> servers;  // the replicas tried, in order (empty: none was tried)
  std::string message;               // the errors, joined
};

struct RoutingOptions {
  HedgeOptions hedge;
  // A replica that failed is passed over for first_backoff, doubling per consecutive failure up
  // to max_reconnect_backoff, which is also the longest gRPC waits between reconnection
  // attempts to a shard server: a restarted server is asked again within about twice that.
  absl::Duration first_backoff = absl::Milliseconds(25);
  absl::Duration max_reconnect_backoff = absl::Seconds(1);
  // Searches running at once (in the router, or as the caller counts them: Router::Search) from
  // which a backend holding every shard searches them in one call
  // (ShardBackend::SearchesShardsTogether); 0: the number of cores.
  int search_together_from = 0;
  // With fewer searches running, such a backend's shards go the way that has been faster for
  // the collection (CollectionRoute::split_choice); false: always apart, in parallel.
  bool split_by_measurement = true;
};

// Router-wide counts for Admin.Stats (per-server counts are in each backend's ReplicaHealth).
struct RouterTotals {
  uint64_t hedges = 0;   // hedge attempts sent
  uint64_t retries = 0;  // attempts sent after another replica of the shard failed
};

struct RoutedSearch {
  absl::Status status;               // not OK when shards are missing and partial is not allowed
  std::vector<index::HitList> hits;  // merged, one per query (empty when status is not OK)
  uint32_t shards_answered = 0;
  uint32_t shards_total = 0;
  std::string generation;                   // generations that answered, comma-separated if several
  std::vector<std::string> failures;        // one line per shard that failed on every replica
  std::vector<ShardFailure> failed_shards;  // the same, as data
};

class Router {
 public:
  // `fanout_threads` bounds the shard searches (local or remote calls) running at once.
  // `attempt_timeout` bounds one attempt on one replica (shard_deadline_ms; the caller's
  // deadline bounds it too). `fanout_threads` bounds the shard searches of backends without
  // StartSearch (local shards) running at once.
  Router(absl::Duration attempt_timeout, int fanout_threads, RoutingOptions options = {})
      : attempt_timeout_(attempt_timeout),
        options_(WithDefaults(options)),
        hedging_(options.hedge),
        pool_(fanout_threads) {}

  void SetRoute(CollectionRoute route);
  // Adds `backend` as a replica of one shard, creating the collection's route on first sight;
  // refuses a server that disagrees with the route about dimension, metric or shard count.
  absl::Status AddReplica(const std::string& collection, index::Metric metric, int dim,
                          int shards_total, int shard, std::shared_ptr<ShardBackend> backend);
  std::optional<CollectionRoute> Route(const std::string& collection) const;
  std::vector<std::string> Collections() const;

  // `deadline` is the caller's: no shard attempt starts after it or outlives it.
  // `searches_in_flight`: the searches the caller is serving at once, this one included, where
  // it counts them (the service counts each from its arrival to its answer); the rule of
  // RoutingOptions::search_together_from takes the larger of it and the searches in the
  // router's own shard phase. A service's searches spend much of their time outside that phase
  // (warrant, ledger, answer), so the router alone undercounts how busy the cores are.
  RoutedSearch Search(const CollectionRoute& route, std::span<const float> queries,
                      const index::SearchParams& params, bool allow_partial,
                      absl::Time deadline = absl::InfiniteFuture(),
                      int64_t searches_in_flight = 0) const;

  const RoutingOptions& options() const { return options_; }
  // One snapshot per distinct backend of every route, ordered by server name.
  std::vector<ReplicaSnapshot> ReplicaStats() const;
  RouterTotals Totals() const;

 private:
  class ShardSearchRound;
  static RoutingOptions WithDefaults(RoutingOptions options);

  absl::Duration attempt_timeout_;
  RoutingOptions options_;
  mutable HedgePolicy hedging_;
  mutable std::atomic<uint64_t> hedges_{0};
  mutable std::atomic<uint64_t> retries_{0};
  mutable std::atomic<int> searches_running_{0};
  mutable ThreadPool pool_;
  mutable std::mutex mutex_;
  std::map<std::string, CollectionRoute> routes_;
};

}  // namespace probity::service
