#include "probity/service/router.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace probity::service {

void Router::SetRoute(CollectionRoute route) {
  std::lock_guard lock(mutex_);
  std::string name = route.name;
  routes_[name] = std::move(route);
}

absl::Status Router::AddReplica(const std::string& collection, index::Metric metric, int dim,
                                int shards_total, int shard,
                                std::shared_ptr<ShardBackend> backend) {
  std::lock_guard lock(mutex_);
  CollectionRoute& route = routes_[collection];
  if (route.name.empty()) {
    route.name = collection;
    route.metric = metric;
    route.dim = dim;
    route.replicas.resize(shards_total);
  }
  if (route.dim != dim || route.metric != metric ||
      static_cast<int>(route.replicas.size()) != shards_total || shard < 0 ||
      shard >= shards_total) {
    return absl::FailedPreconditionError(absl::StrCat(backend->Describe(),
                                                      " disagrees about collection ", collection,
                                                      " (dimension, metric or shard count)"));
  }
  route.replicas[shard].push_back(std::move(backend));
  return absl::OkStatus();
}

std::optional<CollectionRoute> Router::Route(const std::string& collection) const {
  std::lock_guard lock(mutex_);
  auto it = routes_.find(collection);
  if (it == routes_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> Router::Collections() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> names;
  for (const auto& [name, route] : routes_) names.push_back(name);
  return names;
}

RoutedSearch Router::Search(const CollectionRoute& route, std::span<const float> queries,
                            const index::SearchParams& params, bool allow_partial,
                            absl::Time deadline) const {
  struct ShardOutcome {
    absl::StatusOr<ShardAnswer> answer = absl::UnavailableError("no replica configured");
  };
  const int num_shards = static_cast<int>(route.replicas.size());
  std::vector<std::future<ShardOutcome>> pending;
  pending.reserve(num_shards);
  for (int shard = 0; shard < num_shards; ++shard) {
    pending.push_back(pool_.Submit([&, shard] {
      ShardOutcome outcome;
      ShardQuery query{route.name, shard, route.dim, queries, params, route.metric};
      std::vector<std::string> errors;
      for (const std::shared_ptr<ShardBackend>& replica : route.replicas[shard]) {
        const absl::Time now = absl::Now();
        if (now >= deadline) {
          errors.push_back("the caller's deadline passed");
          break;
        }
        outcome.answer = replica->Search(query, std::min(now + attempt_timeout_, deadline));
        if (outcome.answer.ok()) return outcome;
        errors.push_back(std::string(outcome.answer.status().message()));
      }
      if (!errors.empty()) {
        outcome.answer = absl::UnavailableError(absl::StrJoin(errors, "; "));
      }
      return outcome;
    }));
  }

  RoutedSearch result;
  result.shards_total = num_shards;
  std::vector<std::vector<index::HitList>> per_shard;
  std::set<std::string> generations;
  for (int shard = 0; shard < num_shards; ++shard) {
    ShardOutcome outcome = pending[shard].get();
    if (!outcome.answer.ok()) {
      result.failures.push_back(
          absl::StrCat("shard ", shard, ": ", outcome.answer.status().message()));
      continue;
    }
    ++result.shards_answered;
    generations.insert(outcome.answer->generation);
    per_shard.push_back(std::move(outcome.answer->hits));
  }
  result.generation = absl::StrJoin(generations, ",");
  if (result.shards_answered < result.shards_total && !(allow_partial && result.shards_answered)) {
    result.status = absl::UnavailableError(
        absl::StrCat(result.shards_answered, " of ", result.shards_total,
                     " shards answered and partial results were not allowed: ",
                     absl::StrJoin(result.failures, "; ")));
    return result;
  }
  result.hits = index::MergeTopK(per_shard, params.k, route.metric);
  return result;
}

}  // namespace probity::service
