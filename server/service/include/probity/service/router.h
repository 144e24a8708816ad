#pragma once

// Fans a batch of queries out to every shard of a collection in parallel, retries a failed
// shard on its next replica, merges with index::MergeTopK and reports coverage. The same code
// serves local shards (embedded mode) and remote shard servers.

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
#include "probity/service/shard_backend.h"
#include "probity/service/thread_pool.h"

namespace probity::service {

struct CollectionRoute {
  std::string name;
  index::Metric metric = index::Metric::kInnerProduct;
  int dim = 0;
  // replicas[s] lists the backends holding shard s, tried in order; empty = shard unreachable.
  std::vector<std::vector<std::shared_ptr<ShardBackend>>> replicas;
};

struct RoutedSearch {
  absl::Status status;               // not OK when shards are missing and partial is not allowed
  std::vector<index::HitList> hits;  // merged, one per query (empty when status is not OK)
  uint32_t shards_answered = 0;
  uint32_t shards_total = 0;
  std::string generation;             // generations that answered, comma-separated if several
  std::vector<std::string> failures;  // one line per shard that failed on every replica
};

class Router {
 public:
  // `fanout_threads` bounds the shard searches (local or remote calls) running at once.
  Router(absl::Duration attempt_timeout, int fanout_threads)
      : attempt_timeout_(attempt_timeout), pool_(fanout_threads) {}

  void SetRoute(CollectionRoute route);
  // Adds `backend` as a replica of one shard, creating the collection's route on first sight;
  // refuses a server that disagrees with the route about dimension, metric or shard count.
  absl::Status AddReplica(const std::string& collection, index::Metric metric, int dim,
                          int shards_total, int shard, std::shared_ptr<ShardBackend> backend);
  std::optional<CollectionRoute> Route(const std::string& collection) const;
  std::vector<std::string> Collections() const;

  // `deadline` is the caller's: no shard attempt starts after it or outlives it.
  RoutedSearch Search(const CollectionRoute& route, std::span<const float> queries,
                      const index::SearchParams& params, bool allow_partial,
                      absl::Time deadline = absl::InfiniteFuture()) const;

 private:
  absl::Duration attempt_timeout_;
  mutable ThreadPool pool_;
  mutable std::mutex mutex_;
  std::map<std::string, CollectionRoute> routes_;
};

}  // namespace probity::service
