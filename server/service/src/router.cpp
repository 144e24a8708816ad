#include "probity/service/router.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <random>
#include <set>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace probity::service {

RoutingOptions Router::WithDefaults(RoutingOptions options) {
  if (options.search_together_from <= 0) {
    options.search_together_from =
        static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
  return options;
}

void Router::SetRoute(CollectionRoute route) {
  if (route.split_choice == nullptr) route.split_choice = std::make_shared<SplitChoice>();
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
    route.split_choice = std::make_shared<SplitChoice>();
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

namespace {

std::mt19937_64& Random() {
  thread_local std::mt19937_64 random(std::random_device{}());
  return random;
}

// Which untried replica of a shard to try next (-1: none left). Replicas not backing off after
// a failure come first; among them, two random choices compared by ReplicaHealth::Cost
// (latency estimate x attempts running), with a coin flip when the two are within 20% of each
// other, so that equal replicas share the load even when the router is idle.
int ChooseReplica(const std::vector<std::shared_ptr<ShardBackend>>& replicas,
                  const std::vector<bool>& tried, absl::Time now) {
  std::vector<int> ready, backing_off;
  for (int r = 0; r < static_cast<int>(replicas.size()); ++r) {
    if (tried[r]) continue;
    (replicas[r]->health().BackingOff(now) ? backing_off : ready).push_back(r);
  }
  const std::vector<int>& choices = ready.empty() ? backing_off : ready;
  if (choices.empty()) return -1;
  if (choices.size() == 1) return choices[0];
  std::mt19937_64& random = Random();
  const size_t first = std::uniform_int_distribution<size_t>(0, choices.size() - 1)(random);
  size_t second = std::uniform_int_distribution<size_t>(0, choices.size() - 2)(random);
  if (second >= first) ++second;
  const int a = choices[first], b = choices[second];
  const double cost_a = replicas[a]->health().Cost(now);
  const double cost_b = replicas[b]->health().Cost(now);
  if (std::abs(cost_a - cost_b) <= 0.2 * std::max(cost_a, cost_b)) {
    return std::bernoulli_distribution(0.5)(random) ? a : b;
  }
  return cost_a < cost_b ? a : b;
}

}  // namespace

// One search's attempts on the shards of a collection. Run() is the coordinator, on the
// caller's thread: it starts attempts, and wakes for each completion (delivered to a mailbox
// by gRPC's or the pool's threads), each hedge time and the caller's deadline. Only the
// coordinator touches the per-shard state, and it returns only once every attempt it started
// has completed (cancelled ones complete at once), so nothing outlives the search.
class Router::ShardSearchRound {
 public:
  ShardSearchRound(const Router& router, const CollectionRoute& route,
                   std::span<const float> queries, const index::SearchParams& params,
                   absl::Time deadline, int64_t searches_in_flight)
      : running_(std::max<int64_t>(router.searches_running_.fetch_add(1) + 1, searches_in_flight)),
        router_(router),
        route_(route),
        k_(params.k),
        deadline_(deadline),
        shards_(route.replicas.size()) {
    for (size_t s = 0; s < shards_.size(); ++s) {
      shards_[s].query =
          ShardQuery{route.name, static_cast<int>(s), route.dim, queries, params, route.metric};
      shards_[s].tried.assign(route.replicas[s].size(), false);
    }
  }

  RoutedSearch Run(bool allow_partial) {
    absl::Time now = absl::Now();
    // With one replica per shard (embedded mode) nothing can be hedged or retried elsewhere, so
    // the coordinator would only wait: it searches the last shard itself if that one searches
    // on the caller's thread (a local shard), which saves a hand-off to the pool and the wake-up
    // back on every search.
    const bool single_replicas =
        std::all_of(route_.replicas.begin(), route_.replicas.end(),
                    [](const auto& replicas) { return replicas.size() <= 1; });
    // When one backend holds every shard and can search them in one call, and at least as many
    // searches run as there are cores, every core already has a search to run: splitting this
    // one over threads cannot end the searches sooner, only add hand-offs. One call here costs
    // less (no hand-offs, one coarse assignment for all shards). With cores to spare, the
    // search goes the way that has been faster for this collection (SplitChoice): apart where
    // a shard search costs more than a hand-off, in one call where it costs less.
    SplitChoice* measured = nullptr;
    if (ShardBackend* together = OneBackendForAllShards(); together != nullptr) {
      const bool cores_busy = running_ >= router_.options_.search_together_from;
      if (!cores_busy && router_.options_.split_by_measurement) {
        measured = route_.split_choice.get();
      }
      if (cores_busy || (measured != nullptr && !measured->Apart(now))) {
        SearchTogether(*together, now);
        if (measured != nullptr && AllAnswered()) {
          const absl::Time done = absl::Now();
          measured->Observe(/*apart=*/false, done - now, done);
        }
        return Merge(allow_partial);
      }
    }
    const absl::Time started = now;
    for (size_t s = 0; s < shards_.size(); ++s) {
      const bool may_run_here = single_replicas && s + 1 == shards_.size();
      if (StartNext(static_cast<int>(s), /*hedge=*/false, now, may_run_here)) {
        router_.hedging_.EarnCredit();
      }
    }
    while (!AllSettled() && now < deadline_) {
      absl::Time wake = deadline_;
      for (const Shard& shard : shards_) {
        if (!shard.answered && shard.running > 0) wake = std::min(wake, shard.hedge_at);
      }
      for (Completion& completion : Wait(wake)) Handle(std::move(completion));
      now = absl::Now();
      for (size_t s = 0; s < shards_.size(); ++s) {
        Shard& shard = shards_[s];
        if (shard.answered || shard.running == 0 || now < shard.hedge_at) continue;
        shard.hedge_at = absl::InfiniteFuture();
        if (!HasUntried(shard)) continue;
        if (!router_.hedging_.TakeCredit()) {
          // No hedge credit left at this moment (a server just stopped with many searches on
          // it): look again after another delay, since every first attempt earns credit back,
          // instead of leaving this attempt to run into the caller's deadline.
          shard.hedge_at = now + std::max(absl::Milliseconds(1), std::min(router_.hedging_.Delay(),
                                                                          (deadline_ - now) / 2));
          continue;
        }
        if (StartNext(static_cast<int>(s), /*hedge=*/true, now)) router_.hedges_.fetch_add(1);
      }
    }
    if (measured != nullptr && AllAnswered()) {
      const absl::Time done = absl::Now();
      measured->Observe(/*apart=*/true, done - started, done);
    }
    // The search is decided (or out of time): stop what still runs and wait for it.
    finishing_ = true;
    for (size_t s = 0; s < shards_.size(); ++s) {
      Shard& shard = shards_[s];
      if (!shard.answered && shard.running > 0) {
        shard.errors.push_back("no replica answered before the caller's deadline");
        shard.last_code = absl::StatusCode::kDeadlineExceeded;
      }
      CancelRunning(shard);
    }
    while (outstanding_ > 0) {
      for (Completion& completion : Wait(absl::InfiniteFuture())) Handle(std::move(completion));
    }
    return Merge(allow_partial);
  }

 private:
  struct Attempt {
    int replica = 0;
    absl::Time started;
    bool hedge = false;
    bool cancelled = false;
    bool finished = false;
    std::shared_ptr<ShardCall> call;  // null for searches on the pool (they cannot be cancelled)
  };
  struct Shard {
    ShardQuery query;
    std::vector<bool> tried;
    std::vector<Attempt> attempts;
    int running = 0;
    bool answered = false;
    ShardAnswer answer;
    absl::Time hedge_at = absl::InfiniteFuture();
    std::vector<std::string> errors;
    absl::StatusCode last_code = absl::StatusCode::kUnavailable;
    std::vector<std::string> servers;
  };
  struct Completion {
    int shard = 0;
    int attempt = 0;
    absl::StatusOr<ShardAnswer> answer;
    absl::Time at;
  };
  struct Mailbox {
    std::mutex mutex;
    std::condition_variable arrived;
    std::vector<Completion> completions;
  };

  // The backend that is the only replica of every shard (two shards or more) and searches
  // shards together; null otherwise.
  ShardBackend* OneBackendForAllShards() const {
    if (shards_.size() < 2) return nullptr;
    ShardBackend* backend = nullptr;
    for (const auto& replicas : route_.replicas) {
      if (replicas.size() != 1 || (backend != nullptr && replicas[0].get() != backend)) {
        return nullptr;
      }
      backend = replicas[0].get();
    }
    return backend->SearchesShardsTogether() ? backend : nullptr;
  }

  // Searches every shard in one call of `backend` on this thread, with the same accounting as
  // one attempt per shard.
  void SearchTogether(ShardBackend& backend, absl::Time now) {
    if (now >= deadline_) {
      for (Shard& shard : shards_) {
        shard.errors.push_back("the caller's deadline passed");
        shard.last_code = absl::StatusCode::kDeadlineExceeded;
      }
      return;
    }
    std::vector<int> all(shards_.size());
    for (size_t s = 0; s < all.size(); ++s) {
      all[s] = static_cast<int>(s);
      shards_[s].servers.push_back(backend.Describe());
      backend.health().Started(/*hedge=*/false);
    }
    absl::StatusOr<std::vector<ShardAnswer>> answers =
        backend.SearchShards(shards_.front().query, all, deadline_);
    if (answers.ok() && answers->size() != shards_.size()) {
      answers = absl::InternalError(absl::StrCat(backend.Describe(), " answered ", answers->size(),
                                                 " shards of ", all.size()));
    }
    const absl::Time done = absl::Now();
    ReplicaHealth& health = backend.health();
    if (!answers.ok()) {
      uint64_t failures = 0;
      for (Shard& shard : shards_) {
        failures =
            std::max(failures, health.Failed(answers.status(), done, router_.options_.first_backoff,
                                             router_.options_.max_reconnect_backoff));
        shard.errors.push_back(std::string(answers.status().message()));
        shard.last_code = answers.status().code();
      }
      if (failures > 0) {
        spdlog::warn(
            "{} failed {} shard search(es) since its last report; latest (collection {}, all "
            "shards together): {}",
            backend.Describe(), failures, route_.name, std::string(answers.status().message()));
      }
      return;
    }
    for (size_t s = 0; s < shards_.size(); ++s) {
      health.Answered(done - now, done, /*hedge_won=*/false);
      shards_[s].answered = true;
      shards_[s].answer = std::move((*answers)[s]);
    }
    router_.hedging_.Observe(done - now);
  }

  static bool HasUntried(const Shard& shard) {
    return std::find(shard.tried.begin(), shard.tried.end(), false) != shard.tried.end();
  }

  bool AllAnswered() const {
    return std::all_of(shards_.begin(), shards_.end(),
                       [](const Shard& shard) { return shard.answered; });
  }

  bool AllSettled() const {
    return std::all_of(shards_.begin(), shards_.end(),
                       [](const Shard& shard) { return shard.answered || shard.running == 0; });
  }

  // Starts an attempt on the shard's best untried replica; false when none is left or the
  // caller's deadline has passed. `may_run_here`: a replica that searches on the caller's
  // thread runs on this one (and has completed when this returns) instead of on the pool.
  bool StartNext(int s, bool hedge, absl::Time now, bool may_run_here = false) {
    Shard& shard = shards_[s];
    if (route_.replicas[s].empty()) {
      shard.errors.push_back("no replica configured");
      return false;
    }
    if (now >= deadline_) {
      shard.errors.push_back("the caller's deadline passed");
      shard.last_code = absl::StatusCode::kDeadlineExceeded;
      return false;
    }
    const int replica = ChooseReplica(route_.replicas[s], shard.tried, now);
    if (replica < 0) return false;
    shard.tried[replica] = true;
    const std::shared_ptr<ShardBackend>& backend = route_.replicas[s][replica];
    shard.servers.push_back(backend->Describe());
    const int attempt = static_cast<int>(shard.attempts.size());
    Attempt started;
    started.replica = replica;
    started.started = now;
    started.hedge = hedge;
    shard.attempts.push_back(std::move(started));
    ++shard.running;
    ++outstanding_;
    backend->health().Started(hedge);
    const absl::Time attempt_deadline = std::min(deadline_, now + router_.attempt_timeout_);
    ShardSearchDone done = [mailbox = mailbox_, s, attempt](absl::StatusOr<ShardAnswer> answer) {
      std::lock_guard lock(mailbox->mutex);
      mailbox->completions.push_back(Completion{s, attempt, std::move(answer), absl::Now()});
      mailbox->arrived.notify_one();
    };
    std::shared_ptr<ShardCall> call = backend->StartSearch(shard.query, attempt_deadline, done);
    if (call != nullptr) {
      shard.attempts[attempt].call = std::move(call);
    } else if (may_run_here) {
      done(backend->Search(shard.query, attempt_deadline));
    } else {
      router_.pool_.Submit([backend, query = shard.query, attempt_deadline, done] {
        done(backend->Search(query, attempt_deadline));
      });
    }
    // The next hedge of this shard, if another replica is left: after the observed-latency
    // delay, and never later than halfway to the caller's deadline, so the hedge has time too.
    shard.hedge_at = HasUntried(shard)
                         ? now + std::min(router_.hedging_.Delay(), (deadline_ - now) / 2)
                         : absl::InfiniteFuture();
    return true;
  }

  void CancelRunning(Shard& shard) {
    for (Attempt& attempt : shard.attempts) {
      if (attempt.finished || attempt.cancelled) continue;
      attempt.cancelled = true;
      if (attempt.call != nullptr) attempt.call->Cancel();
    }
  }

  std::vector<Completion> Wait(absl::Time until) {
    std::unique_lock lock(mailbox_->mutex);
    auto arrived = [&] { return !mailbox_->completions.empty(); };
    if (until == absl::InfiniteFuture()) {
      mailbox_->arrived.wait(lock, arrived);
    } else {
      mailbox_->arrived.wait_until(lock, absl::ToChronoTime(until), arrived);
    }
    return std::exchange(mailbox_->completions, {});
  }

  void Handle(Completion completion) {
    Shard& shard = shards_[completion.shard];
    Attempt& attempt = shard.attempts[completion.attempt];
    attempt.finished = true;
    --shard.running;
    --outstanding_;
    const std::shared_ptr<ShardBackend>& backend =
        route_.replicas[completion.shard][attempt.replica];
    ReplicaHealth& health = backend->health();
    const absl::Duration latency = completion.at - attempt.started;
    if (completion.answer.ok()) {
      const bool used = !shard.answered && !finishing_;
      health.Answered(latency, completion.at, used && attempt.hedge);
      if (!used) return;  // a hedged duplicate, or too late: each shard is merged once
      shard.answered = true;
      shard.answer = *std::move(completion.answer);
      router_.hedging_.Observe(latency);
      CancelRunning(shard);
      return;
    }
    if (attempt.cancelled || finishing_ || completion.at >= deadline_) {
      // Cut short by the router or by the caller's deadline: no fault of the replica's.
      if (shard.answered) {
        health.Overtaken(latency, completion.at);
      } else {
        health.Abandoned();
        if (!attempt.cancelled && !finishing_) {
          shard.errors.push_back(std::string(completion.answer.status().message()));
          shard.last_code = absl::StatusCode::kDeadlineExceeded;
        }
      }
      return;
    }
    const absl::Status& status = completion.answer.status();
    if (const uint64_t failures =
            health.Failed(status, completion.at, router_.options_.first_backoff,
                          router_.options_.max_reconnect_backoff)) {
      spdlog::warn(
          "shard server {} failed {} shard search(es) since its last report; latest "
          "(collection {}, shard {}): {}",
          backend->Describe(), failures, route_.name, completion.shard,
          std::string(status.message()));
    }
    shard.errors.push_back(std::string(status.message()));
    shard.last_code = status.code();
    if (!shard.answered && StartNext(completion.shard, /*hedge=*/false, absl::Now())) {
      router_.retries_.fetch_add(1);
    }
  }

  RoutedSearch Merge(bool allow_partial) {
    RoutedSearch result;
    result.shards_total = static_cast<uint32_t>(shards_.size());
    std::vector<std::vector<index::HitList>> per_shard;
    std::set<std::string> generations;
    for (size_t s = 0; s < shards_.size(); ++s) {
      Shard& shard = shards_[s];
      if (shard.answered) {
        ++result.shards_answered;
        generations.insert(shard.answer.generation);
        per_shard.push_back(std::move(shard.answer.hits));
        continue;
      }
      ShardFailure failure;
      failure.shard = static_cast<uint32_t>(s);
      failure.code = shard.last_code;
      failure.servers = shard.servers;
      failure.message =
          shard.errors.empty() ? "no replica answered" : absl::StrJoin(shard.errors, "; ");
      result.failures.push_back(absl::StrCat("shard ", s, ": ", failure.message));
      result.failed_shards.push_back(std::move(failure));
    }
    result.generation = absl::StrJoin(generations, ",");
    if (result.shards_answered < result.shards_total &&
        !(allow_partial && result.shards_answered)) {
      result.status = absl::UnavailableError(
          absl::StrCat(result.shards_answered, " of ", result.shards_total,
                       " shards answered and partial results were not allowed: ",
                       absl::StrJoin(result.failures, "; ")));
      return result;
    }
    result.hits = index::MergeTopK(per_shard, k_, route_.metric);
    return result;
  }

  // Searches running when this one started, this one included: in the router's shard phase,
  // or as the caller counted them, whichever is more.
  const int64_t running_;
  const Router& router_;
  const CollectionRoute& route_;
  const int k_;
  const absl::Time deadline_;
  std::vector<Shard> shards_;
  std::shared_ptr<Mailbox> mailbox_ = std::make_shared<Mailbox>();
  int outstanding_ = 0;  // attempts started and not yet completed
  bool finishing_ = false;
};

RoutedSearch Router::Search(const CollectionRoute& route, std::span<const float> queries,
                            const index::SearchParams& params, bool allow_partial,
                            absl::Time deadline, int64_t searches_in_flight) const {
  ShardSearchRound round(*this, route, queries, params, deadline, searches_in_flight);
  RoutedSearch routed = round.Run(allow_partial);
  searches_running_.fetch_sub(1);
  return routed;
}

std::vector<ReplicaSnapshot> Router::ReplicaStats() const {
  std::vector<std::shared_ptr<ShardBackend>> backends;
  {
    std::lock_guard lock(mutex_);
    std::set<const ShardBackend*> seen;
    for (const auto& [name, route] : routes_) {
      for (const auto& replicas : route.replicas) {
        for (const auto& backend : replicas) {
          if (seen.insert(backend.get()).second) backends.push_back(backend);
        }
      }
    }
  }
  const absl::Time now = absl::Now();
  std::vector<ReplicaSnapshot> snapshots;
  for (const auto& backend : backends) {
    snapshots.push_back(backend->health().Snapshot(now));
    snapshots.back().server = backend->Describe();
  }
  std::sort(snapshots.begin(), snapshots.end(),
            [](const ReplicaSnapshot& a, const ReplicaSnapshot& b) { return a.server < b.server; });
  return snapshots;
}

RouterTotals Router::Totals() const { return RouterTotals{hedges_.load(), retries_.load()}; }

}  // namespace probity::service
