// The router's replica choice, retries and hedging against fake replicas that answer at once,
// fail, or hold their answer until released or cancelled (a stopped server), and the pieces it
// decides with: ReplicaHealth (latency estimate, back-off after failures, log rate limit) and
// HedgePolicy (delay from observed latency, hedge budget), and SplitChoice (local shards apart or
// in one call, by measured latency, primed or given times in the tests). No test depends on how
// long anything takes: stalled replicas stall until the router cancels them.
#include "probity/service/router.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "common/held_calls.h"
#include "probity/service/hedge_policy.h"
#include "probity/service/replica_health.h"
#include "probity/service/split_choice.h"

namespace probity::service::testing {
namespace {

// Answers query q of shard s with ids s*100 + q*10 + i (so shards never share an id).
ShardAnswer AnswerOf(const ShardQuery& query) {
  ShardAnswer answer;
  answer.generation = "1";
  const int nq = static_cast<int>(query.queries.size()) / query.dim;
  for (int q = 0; q < nq; ++q) {
    index::HitList hits;
    for (int i = 0; i < query.params.k; ++i) {
      hits.push_back({query.shard * 100 + q * 10 + i, 1.0f - 0.1f * i - 0.01f * query.shard,
                      static_cast<uint32_t>(query.shard)});
    }
    answer.hits.push_back(std::move(hits));
  }
  return answer;
}

// A remote-like replica (StartSearch): answers at once, fails at once, or holds every call until
// Release() or the router cancels it.
class FakeReplica : public ShardBackend {
 public:
  enum class Mode { kAnswer, kFail, kHold };
  FakeReplica(std::string name, Mode mode) : name_(std::move(name)), mode_(mode) {}
  ~FakeReplica() override { Release(); }

  absl::StatusOr<ShardAnswer> Search(const ShardQuery&, absl::Time) override {
    return absl::UnimplementedError("asynchronous only");
  }

  std::shared_ptr<ShardCall> StartSearch(const ShardQuery& query, absl::Time,
                                         ShardSearchDone done) override {
    auto call = std::make_shared<HeldCall>(AnswerOf(query), std::move(done));
    std::lock_guard lock(mutex_);
    ++started_;
    changed_.notify_all();
    if (mode_ == Mode::kAnswer) {
      threads_.emplace_back([call] { call->Complete(call->answer); });
    } else if (mode_ == Mode::kFail) {
      threads_.emplace_back(
          [call] { call->Complete(absl::UnavailableError("connection refused")); });
    } else {
      held_.push_back(call);
    }
    return call;
  }

  std::string Describe() const override { return name_; }

  // Answers every held call (those not cancelled yet), from this thread.
  void Release() {
    std::vector<std::shared_ptr<HeldCall>> held;
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mutex_);
      held.swap(held_);
      threads.swap(threads_);
    }
    for (auto& call : held) call->Complete(call->answer);
    for (auto& thread : threads) thread.join();
  }

  void WaitForStarted(int count) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return started_ >= count; });
  }

  int started() const {
    std::lock_guard lock(mutex_);
    return started_;
  }

 private:
  class HeldCall : public ShardCall {
   public:
    HeldCall(ShardAnswer a, ShardSearchDone done) : answer(std::move(a)), done_(std::move(done)) {}
    void Cancel() override { Complete(absl::CancelledError("cancelled by the router")); }
    void Complete(absl::StatusOr<ShardAnswer> result) {
      std::lock_guard lock(mutex_);
      if (completed_) return;
      completed_ = true;
      done_(std::move(result));
    }
    const ShardAnswer answer;

   private:
    std::mutex mutex_;
    bool completed_ = false;
    ShardSearchDone done_;
  };

  const std::string name_;
  const Mode mode_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  int started_ = 0;
  std::vector<std::shared_ptr<HeldCall>> held_;
  std::vector<std::thread> threads_;
};

using Mode = FakeReplica::Mode;

CollectionRoute RouteOf(const std::vector<std::vector<std::shared_ptr<FakeReplica>>>& shards) {
  CollectionRoute route;
  route.name = "c";
  route.dim = 2;
  for (const auto& replicas : shards) {
    route.replicas.emplace_back(replicas.begin(), replicas.end());
  }
  return route;
}

const std::vector<float> kTwoQueries = {1, 0, 0, 1};

index::SearchParams K(int k) {
  index::SearchParams params;
  params.k = k;
  return params;
}

// Hedges after 1 ms, with a budget that never runs out in these tests.
RoutingOptions EagerHedging() {
  RoutingOptions options;
  options.hedge = {absl::Milliseconds(1), absl::Milliseconds(1), 100};
  return options;
}

std::vector<int64_t> Ids(const index::HitList& hits) {
  std::vector<int64_t> ids;
  for (const index::Hit& hit : hits) ids.push_back(hit.id);
  return ids;
}

TEST(RouterFaultTest, StalledReplicaIsOvertakenByAHedgeWithinTheCallersDeadline) {
  auto stalled = std::make_shared<FakeReplica>("stalled", Mode::kHold);
  auto fast = std::make_shared<FakeReplica>("fast", Mode::kAnswer);
  auto other = std::make_shared<FakeReplica>("other", Mode::kAnswer);
  const CollectionRoute route = RouteOf({{stalled, fast}, {other}});
  // The attempt timeout is far beyond the caller's deadline: only hedging can answer in time.
  Router router(absl::Hours(1), 2, EagerHedging());
  for (int search = 0; search < 20 && stalled->started() == 0; ++search) {
    RoutedSearch result =
        router.Search(route, kTwoQueries, K(3), false, absl::Now() + absl::Seconds(60));
    ASSERT_TRUE(result.status.ok()) << result.status;
    EXPECT_EQ(result.shards_answered, 2u);
  }
  ASSERT_GT(stalled->started(), 0) << "the stalled replica was never chosen";
  const ReplicaSnapshot stalled_stats = stalled->health().Snapshot(absl::Now());
  EXPECT_EQ(stalled_stats.overtaken, static_cast<uint64_t>(stalled->started()));
  EXPECT_EQ(stalled_stats.failures, 0u);
  EXPECT_EQ(stalled_stats.in_flight, 0);
  // Either the stalled replica went first and a hedge on the fast one won, or the fast one was
  // slow to answer once and the hedge went to the stalled one: a hedge either way.
  EXPECT_GE(router.Totals().hedges, 1u);
  EXPECT_GE(fast->health().Snapshot(absl::Now()).hedges_won + stalled_stats.hedges_sent, 1u);
}

// Polls until `replicas` have started `count` attempts in all, for at most 20 s.
bool WaitForStartedInAll(const std::vector<std::shared_ptr<FakeReplica>>& replicas, int count) {
  for (int i = 0; i < 20000; ++i) {
    int started = 0;
    for (const auto& replica : replicas) started += replica->started();
    if (started >= count) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

TEST(RouterFaultTest, AnAttemptDeniedAHedgeForWantOfCreditIsHedgedOnceCreditComesBack) {
  // Two shards whose replicas all hold their answers (a stopped server), a budget of 25 %: each
  // search earns half a hedge (two first attempts) and spends two, so the burst of 10 runs out
  // in the seventh search, which can hedge only one of its shards at first.
  auto a0 = std::make_shared<FakeReplica>("a0", Mode::kHold);
  auto b0 = std::make_shared<FakeReplica>("b0", Mode::kHold);
  auto a1 = std::make_shared<FakeReplica>("a1", Mode::kHold);
  auto b1 = std::make_shared<FakeReplica>("b1", Mode::kHold);
  const std::vector<std::shared_ptr<FakeReplica>> held = {a0, b0, a1, b1};
  const CollectionRoute stalled = RouteOf({{a0, b0}, {a1, b1}});
  RoutingOptions options;
  options.hedge = {absl::Milliseconds(1), absl::Milliseconds(1), 25};
  Router router(absl::Hours(1), 2, options);
  std::vector<std::future<RoutedSearch>> searches;
  auto start_search = [&] {
    searches.push_back(std::async(std::launch::async, [&] {
      return router.Search(stalled, kTwoQueries, K(2), false, absl::Now() + absl::Seconds(60));
    }));
  };
  for (int search = 1; search <= 6; ++search) {
    start_search();
    ASSERT_TRUE(WaitForStartedInAll(held, 4 * search)) << "search " << search << " not hedged";
  }
  start_search();
  ASSERT_TRUE(WaitForStartedInAll(held, 4 * 6 + 3));
  EXPECT_EQ(router.Totals().hedges, 6u * 2 + 1);
  // Four first attempts of another collection earn one hedge's credit: the seventh search's
  // waiting shard takes it.
  auto quick = std::make_shared<FakeReplica>("quick", Mode::kAnswer);
  const CollectionRoute other = RouteOf({{quick}, {quick}, {quick}, {quick}});
  ASSERT_TRUE(
      router.Search(other, kTwoQueries, K(2), false, absl::Now() + absl::Seconds(60)).status.ok());
  EXPECT_TRUE(WaitForStartedInAll(held, 4 * 7))
      << "the attempt left without a hedge was never hedged";
  EXPECT_EQ(router.Totals().hedges, 7u * 2);
  for (const auto& replica : held) replica->Release();
  for (auto& search : searches) EXPECT_TRUE(search.get().status.ok());
}

TEST(RouterFaultTest, AnswersOfBothReplicasAreMergedOnce) {
  auto first = std::make_shared<FakeReplica>("first", Mode::kHold);
  auto second = std::make_shared<FakeReplica>("second", Mode::kHold);
  auto other = std::make_shared<FakeReplica>("other", Mode::kAnswer);
  const CollectionRoute route = RouteOf({{first, second}, {other}});
  Router router(absl::Hours(1), 2, EagerHedging());
  auto search = std::async(std::launch::async, [&] {
    return router.Search(route, kTwoQueries, K(4), false, absl::Now() + absl::Seconds(60));
  });
  // The first attempt is hedged onto the other replica; then both answer.
  first->WaitForStarted(1);
  second->WaitForStarted(1);
  first->Release();
  second->Release();
  RoutedSearch result = search.get();
  ASSERT_TRUE(result.status.ok()) << result.status;
  ASSERT_EQ(result.hits.size(), 2u);
  for (const index::HitList& hits : result.hits) {
    const std::vector<int64_t> ids = Ids(hits);
    EXPECT_EQ(std::set<int64_t>(ids.begin(), ids.end()).size(), ids.size());
  }
  // Exactly what one answer per shard merges to: rank by i, then shard.
  EXPECT_EQ(Ids(result.hits[1]), (std::vector<int64_t>{10, 110, 11, 111}));
  const uint64_t answered = first->health().Snapshot(absl::Now()).answered +
                            second->health().Snapshot(absl::Now()).answered;
  const uint64_t overtaken = first->health().Snapshot(absl::Now()).overtaken +
                             second->health().Snapshot(absl::Now()).overtaken;
  EXPECT_EQ(answered + overtaken, 2u);
}

TEST(RouterFaultTest, FailedReplicaIsRetriedAtOnceAndThenPassedOver) {
  auto down = std::make_shared<FakeReplica>("down", Mode::kFail);
  auto up = std::make_shared<FakeReplica>("up", Mode::kAnswer);
  const CollectionRoute route = RouteOf({{down, up}});
  RoutingOptions options;
  options.first_backoff = options.max_reconnect_backoff = absl::Hours(1);
  options.hedge.min_delay = options.hedge.max_delay = absl::Hours(1);  // no hedging here
  Router router(absl::Hours(1), 2, options);
  for (int search = 0; search < 20 && down->started() == 0; ++search) {
    RoutedSearch result = router.Search(route, kTwoQueries, K(2), false);
    ASSERT_TRUE(result.status.ok()) << result.status;
  }
  ASSERT_EQ(down->started(), 1);
  EXPECT_EQ(router.Totals().retries, 1u);
  EXPECT_TRUE(down->health().BackingOff(absl::Now()));
  // While it backs off, every search goes to the replica that is up first.
  const int before = up->started();
  for (int search = 0; search < 10; ++search) {
    ASSERT_TRUE(router.Search(route, kTwoQueries, K(2), false).status.ok());
  }
  EXPECT_EQ(down->started(), 1);
  EXPECT_EQ(up->started(), before + 10);
  const ReplicaSnapshot stats = down->health().Snapshot(absl::Now());
  EXPECT_EQ(stats.failures, 1u);
  EXPECT_EQ(stats.consecutive_failures, 1u);
  EXPECT_EQ(stats.last_failure, "connection refused");
}

TEST(RouterFaultTest, ConcurrentSearchesSpreadOverReplicasByAttemptsRunning) {
  auto a = std::make_shared<FakeReplica>("a", Mode::kHold);
  auto b = std::make_shared<FakeReplica>("b", Mode::kHold);
  const CollectionRoute route = RouteOf({{a, b}});
  RoutingOptions no_hedging;
  no_hedging.hedge.min_delay = no_hedging.hedge.max_delay = absl::Hours(1);
  Router router(absl::Hours(1), 2, no_hedging);
  // Ten searches in flight at once, started one after another: each goes to the replica with
  // fewer attempts running (a coin flip only within 20%), so neither gets far ahead.
  std::vector<std::future<RoutedSearch>> searches;
  for (int n = 0; n < 10; ++n) {
    searches.push_back(std::async(std::launch::async,
                                  [&] { return router.Search(route, kTwoQueries, K(2), false); }));
    while (a->started() + b->started() < n + 1) std::this_thread::yield();
    EXPECT_LE(std::abs(a->started() - b->started()), 2) << "after " << n + 1 << " searches";
  }
  EXPECT_GE(a->started(), 4);
  EXPECT_GE(b->started(), 4);
  a->Release();
  b->Release();
  for (auto& search : searches) EXPECT_TRUE(search.get().status.ok());
}

TEST(RouterFaultTest, ShardWithEveryReplicaDownIsReportedAsData) {
  auto down = std::make_shared<FakeReplica>("down-1", Mode::kFail);
  auto also_down = std::make_shared<FakeReplica>("down-2", Mode::kFail);
  auto up = std::make_shared<FakeReplica>("up", Mode::kAnswer);
  const CollectionRoute route = RouteOf({{up}, {down, also_down}});
  Router router(absl::Hours(1), 2);
  RoutedSearch strict = router.Search(route, kTwoQueries, K(2), false);
  EXPECT_EQ(strict.status.code(), absl::StatusCode::kUnavailable);
  ASSERT_EQ(strict.failed_shards.size(), 1u);
  const ShardFailure& failure = strict.failed_shards[0];
  EXPECT_EQ(failure.shard, 1u);
  EXPECT_EQ(failure.code, absl::StatusCode::kUnavailable);
  EXPECT_EQ(std::set<std::string>(failure.servers.begin(), failure.servers.end()),
            (std::set<std::string>{"down-1", "down-2"}));
  EXPECT_NE(failure.message.find("connection refused"), std::string::npos);

  RoutedSearch partial = router.Search(route, kTwoQueries, K(2), true);
  ASSERT_TRUE(partial.status.ok());
  EXPECT_EQ(partial.shards_answered, 1u);
  ASSERT_EQ(partial.failed_shards.size(), 1u);
  EXPECT_EQ(partial.failed_shards[0].shard, 1u);
}

TEST(RouterFaultTest, StalledShardWithoutAReplicaEndsAtTheCallersDeadline) {
  auto stalled = std::make_shared<FakeReplica>("stalled", Mode::kHold);
  const CollectionRoute route = RouteOf({{stalled}});
  Router router(absl::Hours(1), 2, EagerHedging());
  RoutedSearch result =
      router.Search(route, kTwoQueries, K(2), false, absl::Now() + absl::Milliseconds(50));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kUnavailable);
  ASSERT_EQ(result.failed_shards.size(), 1u);
  EXPECT_EQ(result.failed_shards[0].code, absl::StatusCode::kDeadlineExceeded);
  // Cut short by the caller's deadline, not the replica's fault, and nothing left running.
  const ReplicaSnapshot stats = stalled->health().Snapshot(absl::Now());
  EXPECT_EQ(stats.failures, 0u);
  EXPECT_EQ(stats.in_flight, 0);
}

// A local-like replica (Search only, as the local shard backend): records the threads its
// searches ran on.
class ThreadRecordingReplica : public ShardBackend {
 public:
  absl::StatusOr<ShardAnswer> Search(const ShardQuery& query, absl::Time) override {
    std::lock_guard lock(mutex_);
    threads_.push_back(std::this_thread::get_id());
    return AnswerOf(query);
  }
  std::string Describe() const override { return "local"; }
  std::vector<std::thread::id> threads() const {
    std::lock_guard lock(mutex_);
    return threads_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::thread::id> threads_;
};

TEST(RouterTest, WithOneReplicaPerShardTheCallersThreadSearchesTheLastLocalShard) {
  std::vector<std::shared_ptr<ThreadRecordingReplica>> shards;
  CollectionRoute route;
  route.name = "c";
  route.dim = 2;
  for (int s = 0; s < 3; ++s) {
    shards.push_back(std::make_shared<ThreadRecordingReplica>());
    route.replicas.push_back({shards.back()});
  }
  Router router(absl::Hours(1), 2);
  RoutedSearch result = router.Search(route, kTwoQueries, K(3), false, absl::InfiniteFuture());
  ASSERT_TRUE(result.status.ok()) << result.status;
  EXPECT_EQ(result.shards_answered, 3u);
  ASSERT_EQ(result.hits.size(), 2u);
  EXPECT_EQ(result.hits[0].size(), 3u);
  const std::thread::id caller = std::this_thread::get_id();
  ASSERT_EQ(shards[2]->threads().size(), 1u);
  EXPECT_EQ(shards[2]->threads()[0], caller) << "the last shard went to the pool";
  for (int s = 0; s < 2; ++s) {
    ASSERT_EQ(shards[s]->threads().size(), 1u);
    EXPECT_NE(shards[s]->threads()[0], caller) << "shard " << s << " did not run in parallel";
  }
}

TEST(RouterTest, WithReplicasNoShardIsSearchedOnTheCallersThread) {
  // Two replicas of one shard: the coordinator must stay free to hedge, so nothing runs on it.
  auto first = std::make_shared<ThreadRecordingReplica>();
  auto second = std::make_shared<ThreadRecordingReplica>();
  CollectionRoute route;
  route.name = "c";
  route.dim = 2;
  route.replicas.push_back({first, second});
  Router router(absl::Hours(1), 2);
  for (int search = 0; search < 8; ++search) {
    RoutedSearch result = router.Search(route, kTwoQueries, K(3), false, absl::InfiniteFuture());
    ASSERT_TRUE(result.status.ok()) << result.status;
  }
  for (const auto& replica : {first, second}) {
    for (std::thread::id thread : replica->threads()) EXPECT_NE(thread, std::this_thread::get_id());
  }
  EXPECT_GE(first->threads().size() + second->threads().size(), 8u);
}

// A local-like backend holding every shard of a collection that can also search them in one
// call (as the local shard backend does): counts both kinds of call, can hold per-shard
// searches until released, and can fail the one-call search.
class AllShardsReplica : public ShardBackend {
 public:
  absl::StatusOr<ShardAnswer> Search(const ShardQuery& query, absl::Time) override {
    bool hold = false;
    {
      std::lock_guard lock(mutex_);
      ++per_shard_calls_;
      hold = holding_;
    }
    if (hold) held_.EnterAndWait();
    return AnswerOf(query);
  }
  bool SearchesShardsTogether() const override { return true; }
  absl::StatusOr<std::vector<ShardAnswer>> SearchShards(const ShardQuery& query,
                                                        std::span<const int> shards,
                                                        absl::Time) override {
    std::lock_guard lock(mutex_);
    together_threads_.push_back(std::this_thread::get_id());
    if (fail_) return absl::InternalError("the index is damaged");
    std::vector<ShardAnswer> answers;
    for (int shard : shards) {
      ShardQuery one = query;
      one.shard = shard;
      answers.push_back(AnswerOf(one));
    }
    return answers;
  }
  std::string Describe() const override { return "local"; }

  // Per-shard searches started from now on wait until Release().
  void Hold() {
    std::lock_guard lock(mutex_);
    holding_ = true;
  }
  void Release() {
    {
      std::lock_guard lock(mutex_);
      holding_ = false;
    }
    held_.Open();
  }
  void Fail() {
    std::lock_guard lock(mutex_);
    fail_ = true;
  }
  void WaitForHeldCalls(int n) { held_.WaitForEntered(n); }
  int per_shard_calls() const {
    std::lock_guard lock(mutex_);
    return per_shard_calls_;
  }
  std::vector<std::thread::id> together_threads() const {
    std::lock_guard lock(mutex_);
    return together_threads_;
  }

 private:
  mutable std::mutex mutex_;
  test_support::HeldCalls held_;
  bool holding_ = false;
  bool fail_ = false;
  int per_shard_calls_ = 0;
  std::vector<std::thread::id> together_threads_;
};

CollectionRoute ThreeShardsOn(const std::shared_ptr<ShardBackend>& backend) {
  CollectionRoute route;
  route.name = "c";
  route.dim = 2;
  for (int s = 0; s < 3; ++s) route.replicas.push_back({backend});
  return route;
}

RoutingOptions TogetherFrom(int searches) {
  RoutingOptions options;
  options.search_together_from = searches;
  return options;
}

void ExpectSameHits(const RoutedSearch& actual, const RoutedSearch& expected) {
  ASSERT_EQ(actual.hits.size(), expected.hits.size());
  for (size_t q = 0; q < expected.hits.size(); ++q) {
    EXPECT_EQ(Ids(actual.hits[q]), Ids(expected.hits[q])) << "query " << q;
  }
}

TEST(RouterTest, ABackendHoldingEveryShardSearchesThemInOneCallOnTheCallersThreadWhenCoresAreBusy) {
  auto backend = std::make_shared<AllShardsReplica>();
  const CollectionRoute route = ThreeShardsOn(backend);
  // From one search on, every search counts as "every core busy".
  Router together(absl::Hours(1), 2, TogetherFrom(1));
  RoutedSearch one_call = together.Search(route, kTwoQueries, K(3), false, absl::InfiniteFuture());
  ASSERT_TRUE(one_call.status.ok()) << one_call.status;
  EXPECT_EQ(one_call.shards_answered, 3u);
  EXPECT_EQ(one_call.generation, "1");
  ASSERT_EQ(backend->together_threads().size(), 1u);
  EXPECT_EQ(backend->together_threads()[0], std::this_thread::get_id());
  EXPECT_EQ(backend->per_shard_calls(), 0);
  const ReplicaSnapshot stats = backend->health().Snapshot(absl::Now());
  EXPECT_EQ(stats.attempts, 3u) << "one attempt per shard, as if searched one by one";
  EXPECT_EQ(stats.in_flight, 0);

  // The same answer as searching shard by shard.
  Router apart(absl::Hours(1), 2, TogetherFrom(1000));
  RoutedSearch by_shard = apart.Search(route, kTwoQueries, K(3), false, absl::InfiniteFuture());
  ASSERT_TRUE(by_shard.status.ok()) << by_shard.status;
  EXPECT_EQ(backend->per_shard_calls(), 3);
  EXPECT_EQ(backend->together_threads().size(), 1u);
  ExpectSameHits(one_call, by_shard);
  ASSERT_EQ(one_call.hits[0].size(), 3u);
}

TEST(RouterTest, ShardsAreSearchedApartUntilAsManySearchesRunAsTheThresholdSays) {
  auto backend = std::make_shared<AllShardsReplica>();
  const CollectionRoute route = ThreeShardsOn(backend);
  Router router(absl::Hours(1), 4, TogetherFrom(2));
  // The first search runs alone: its shards go apart, and are held there.
  backend->Hold();
  std::future<RoutedSearch> first = std::async(std::launch::async, [&] {
    return router.Search(route, kTwoQueries, K(3), false, absl::InfiniteFuture());
  });
  backend->WaitForHeldCalls(3);
  EXPECT_TRUE(backend->together_threads().empty());
  // A second search while the first runs: two searches, so one call.
  RoutedSearch second = router.Search(route, kTwoQueries, K(3), false, absl::InfiniteFuture());
  ASSERT_TRUE(second.status.ok()) << second.status;
  EXPECT_EQ(backend->together_threads().size(), 1u);
  backend->Release();
  RoutedSearch first_result = first.get();
  ASSERT_TRUE(first_result.status.ok()) << first_result.status;
  ExpectSameHits(second, first_result);
  EXPECT_EQ(backend->per_shard_calls(), 3);
  // Alone again: apart again.
  ASSERT_TRUE(router.Search(route, kTwoQueries, K(3), false, absl::InfiniteFuture()).status.ok());
  EXPECT_EQ(backend->per_shard_calls(), 6);
  EXPECT_EQ(backend->together_threads().size(), 1u);
}

TEST(RouterTest, TheCallersCountOfSearchesInFlightCountsForTheThreshold) {
  auto backend = std::make_shared<AllShardsReplica>();
  const CollectionRoute route = ThreeShardsOn(backend);
  Router router(absl::Hours(1), 4, TogetherFrom(2));
  // Alone in the router, and the caller serves no other search: apart.
  ASSERT_TRUE(
      router.Search(route, kTwoQueries, K(3), false, absl::InfiniteFuture(), 1).status.ok());
  EXPECT_EQ(backend->per_shard_calls(), 3);
  EXPECT_TRUE(backend->together_threads().empty());
  // Alone in the router, but the caller serves a second search (say, in its ledger append):
  // every core has a search, so one call on the caller's thread.
  RoutedSearch busy = router.Search(route, kTwoQueries, K(3), false, absl::InfiniteFuture(), 2);
  ASSERT_TRUE(busy.status.ok()) << busy.status;
  EXPECT_EQ(backend->per_shard_calls(), 3);
  ASSERT_EQ(backend->together_threads().size(), 1u);
  EXPECT_EQ(backend->together_threads()[0], std::this_thread::get_id());
}

// A SplitChoice that has seen both ways, each kFirstSamples times, at the given latencies.
std::shared_ptr<SplitChoice> ChoiceWithSamples(double apart_ms, double together_ms) {
  auto choice = std::make_shared<SplitChoice>();
  const absl::Time now = absl::Now();
  for (int i = 0; i < SplitChoice::kFirstSamples; ++i) {
    choice->Observe(true, absl::Milliseconds(apart_ms), now);
    choice->Observe(false, absl::Milliseconds(together_ms), now);
  }
  return choice;
}

TEST(RouterTest, WithCoresToSpareASearchGoesTheWayThatHasBeenFaster) {
  auto backend = std::make_shared<AllShardsReplica>();
  CollectionRoute route = ThreeShardsOn(backend);
  Router router(absl::Hours(1), 4, TogetherFrom(1000));  // cores never all busy

  route.split_choice = ChoiceWithSamples(/*apart_ms=*/5, /*together_ms=*/1);
  RoutedSearch together = router.Search(route, kTwoQueries, K(3), false, absl::InfiniteFuture());
  ASSERT_TRUE(together.status.ok()) << together.status;
  EXPECT_EQ(backend->per_shard_calls(), 0);
  ASSERT_EQ(backend->together_threads().size(), 1u);
  EXPECT_EQ(backend->together_threads()[0], std::this_thread::get_id());
  // The search's own latency went into the estimate of the way it took.
  EXPECT_EQ(route.split_choice->Snapshot().together_samples, SplitChoice::kFirstSamples + 1);
  EXPECT_EQ(route.split_choice->Snapshot().apart_samples, SplitChoice::kFirstSamples);

  route.split_choice = ChoiceWithSamples(/*apart_ms=*/1, /*together_ms=*/5);
  RoutedSearch apart = router.Search(route, kTwoQueries, K(3), false, absl::InfiniteFuture());
  ASSERT_TRUE(apart.status.ok()) << apart.status;
  EXPECT_EQ(backend->per_shard_calls(), 3);
  EXPECT_EQ(backend->together_threads().size(), 1u);
  EXPECT_EQ(route.split_choice->Snapshot().apart_samples, SplitChoice::kFirstSamples + 1);
  ExpectSameHits(apart, together);
}

TEST(RouterTest, AFreshRouteMeasuresBothWaysBeforeChoosing) {
  auto backend = std::make_shared<AllShardsReplica>();
  CollectionRoute route = ThreeShardsOn(backend);
  route.split_choice = std::make_shared<SplitChoice>();
  Router router(absl::Hours(1), 4, TogetherFrom(1000));
  for (int i = 0; i < 2 * SplitChoice::kFirstSamples; ++i) {
    ASSERT_TRUE(router.Search(route, kTwoQueries, K(3), false, absl::InfiniteFuture()).status.ok());
  }
  EXPECT_EQ(backend->per_shard_calls(), 3 * SplitChoice::kFirstSamples);
  EXPECT_EQ(backend->together_threads().size(), static_cast<size_t>(SplitChoice::kFirstSamples));
  const SplitChoice::Estimates estimates = route.split_choice->Snapshot();
  EXPECT_EQ(estimates.apart_samples, SplitChoice::kFirstSamples);
  EXPECT_EQ(estimates.together_samples, SplitChoice::kFirstSamples);
}

TEST(RouterTest, WhenEveryCoreIsBusyTheSearchIsOneCallAndNotMeasured) {
  auto backend = std::make_shared<AllShardsReplica>();
  CollectionRoute route = ThreeShardsOn(backend);
  route.split_choice = ChoiceWithSamples(/*apart_ms=*/1, /*together_ms=*/5);
  Router router(absl::Hours(1), 4, TogetherFrom(2));
  RoutedSearch busy = router.Search(route, kTwoQueries, K(3), false, absl::InfiniteFuture(), 2);
  ASSERT_TRUE(busy.status.ok()) << busy.status;
  EXPECT_EQ(backend->per_shard_calls(), 0);
  EXPECT_EQ(backend->together_threads().size(), 1u);
  EXPECT_EQ(route.split_choice->Snapshot().together_samples, SplitChoice::kFirstSamples);
}

TEST(RouterTest, WithoutSplitByMeasurementASearchWithCoresToSpareGoesApart) {
  auto backend = std::make_shared<AllShardsReplica>();
  CollectionRoute route = ThreeShardsOn(backend);
  route.split_choice = ChoiceWithSamples(/*apart_ms=*/5, /*together_ms=*/1);
  RoutingOptions options = TogetherFrom(1000);
  options.split_by_measurement = false;
  Router router(absl::Hours(1), 4, options);
  ASSERT_TRUE(router.Search(route, kTwoQueries, K(3), false, absl::InfiniteFuture()).status.ok());
  EXPECT_EQ(backend->per_shard_calls(), 3);
  EXPECT_TRUE(backend->together_threads().empty());
  EXPECT_EQ(route.split_choice->Snapshot().apart_samples, SplitChoice::kFirstSamples);
}

TEST(RouterTest, EveryRouteTheRouterHoldsHasOneSplitChoiceSharedByItsCopies) {
  Router router(absl::Hours(1), 2);
  CollectionRoute set;
  set.name = "set";
  set.dim = 2;
  router.SetRoute(set);
  ASSERT_TRUE(router
                  .AddReplica("added", index::Metric::kInnerProduct, 2, 1, 0,
                              std::make_shared<AllShardsReplica>())
                  .ok());
  for (const char* name : {"set", "added"}) {
    const std::optional<CollectionRoute> first = router.Route(name);
    const std::optional<CollectionRoute> second = router.Route(name);
    ASSERT_TRUE(first && second) << name;
    ASSERT_NE(first->split_choice, nullptr) << name;
    EXPECT_EQ(first->split_choice, second->split_choice) << name;
  }
}

TEST(RouterTest, AFailedCallForEveryShardReportsEachShardAsData) {
  auto backend = std::make_shared<AllShardsReplica>();
  backend->Fail();
  Router router(absl::Hours(1), 2, TogetherFrom(1));
  RoutedSearch result =
      router.Search(ThreeShardsOn(backend), kTwoQueries, K(3), true, absl::InfiniteFuture());
  EXPECT_EQ(result.status.code(), absl::StatusCode::kUnavailable) << "no shard answered";
  EXPECT_TRUE(result.hits.empty());
  EXPECT_EQ(result.shards_answered, 0u);
  EXPECT_EQ(result.shards_total, 3u);
  ASSERT_EQ(result.failed_shards.size(), 3u);
  for (uint32_t s = 0; s < 3; ++s) {
    EXPECT_EQ(result.failed_shards[s].shard, s);
    EXPECT_EQ(result.failed_shards[s].code, absl::StatusCode::kInternal);
    EXPECT_EQ(result.failed_shards[s].servers, std::vector<std::string>{"local"});
    EXPECT_NE(result.failed_shards[s].message.find("the index is damaged"), std::string::npos);
  }
  EXPECT_EQ(backend->health().Snapshot(absl::Now()).failures, 3u);
  EXPECT_EQ(backend->health().Snapshot(absl::Now()).in_flight, 0);
}

TEST(ReplicaHealthTest, BackOffDoublesPerConsecutiveFailureUpToTheBoundAndSuccessEndsIt) {
  ReplicaHealth health;
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  const absl::Status down = absl::UnavailableError("down");
  const absl::Duration first = absl::Milliseconds(25), most = absl::Milliseconds(80);
  health.Started(false);
  health.Failed(down, t0, first, most);
  EXPECT_TRUE(health.BackingOff(t0 + absl::Milliseconds(24)));
  EXPECT_FALSE(health.BackingOff(t0 + absl::Milliseconds(25)));
  health.Started(false);
  health.Failed(down, t0, first, most);
  EXPECT_TRUE(health.BackingOff(t0 + absl::Milliseconds(49)));
  EXPECT_FALSE(health.BackingOff(t0 + absl::Milliseconds(50)));
  for (int i = 0; i < 5; ++i) {
    health.Started(false);
    health.Failed(down, t0, first, most);
  }
  EXPECT_TRUE(health.BackingOff(t0 + absl::Milliseconds(79)));
  EXPECT_FALSE(health.BackingOff(t0 + absl::Milliseconds(80)));
  health.Started(false);
  health.Answered(absl::Milliseconds(2), t0, false);
  EXPECT_FALSE(health.BackingOff(t0));
  EXPECT_EQ(health.Snapshot(t0).consecutive_failures, 0u);
  EXPECT_EQ(health.Snapshot(t0).failures, 7u);
}

TEST(ReplicaHealthTest, FailuresAreLoggedOncePerPeriodWithTheCountLeftOut) {
  ReplicaHealth health;
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  const absl::Status down = absl::UnavailableError("down");
  auto fail = [&](absl::Time at) {
    health.Started(false);
    return health.Failed(down, at, absl::Milliseconds(25), absl::Seconds(1));
  };
  EXPECT_EQ(fail(t0), 1u);
  EXPECT_EQ(fail(t0 + absl::Seconds(1)), 0u);
  EXPECT_EQ(fail(t0 + absl::Seconds(2)), 0u);
  EXPECT_EQ(fail(t0 + ReplicaHealth::kLogPeriod), 3u);
}

TEST(ReplicaHealthTest, SlowAnswerRaisesTheCostAtOnceAndIdlenessDecaysIt) {
  ReplicaHealth health;
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  EXPECT_DOUBLE_EQ(health.Cost(t0), ReplicaHealth::kCostFloorMs);  // never heard from
  health.Started(false);
  health.Answered(absl::Milliseconds(2), t0, false);
  EXPECT_DOUBLE_EQ(health.Cost(t0), 2);
  health.Started(false);
  health.Overtaken(absl::Milliseconds(200), t0);  // a lower bound above the estimate: taken
  EXPECT_DOUBLE_EQ(health.Cost(t0), 200);
  health.Started(false);  // one attempt running doubles the expected wait
  EXPECT_DOUBLE_EQ(health.Cost(t0), 400);
  health.Abandoned();
  EXPECT_DOUBLE_EQ(health.Cost(t0 + 10 * ReplicaHealth::kLatencyDecay),
                   ReplicaHealth::kCostFloorMs);  // idle: decayed to the floor
  EXPECT_LT(health.Snapshot(t0 + 10 * ReplicaHealth::kLatencyDecay).latency_ms, 1);
  const ReplicaSnapshot stats = health.Snapshot(t0);
  EXPECT_EQ(stats.attempts, 3u);
  EXPECT_EQ(stats.answered, 1u);
  EXPECT_EQ(stats.overtaken, 1u);
  EXPECT_EQ(stats.in_flight, 0);
}

TEST(HedgePolicyTest, DelayFollowsObservedLatencyWithinItsBounds) {
  HedgePolicy policy({absl::Milliseconds(5), absl::Milliseconds(100), 20});
  EXPECT_EQ(policy.Delay(), absl::Milliseconds(100));  // nothing observed: the maximum
  for (int i = 0; i < 50; ++i) policy.Observe(absl::Milliseconds(2));
  EXPECT_GE(policy.Delay(), absl::Milliseconds(5));
  EXPECT_LT(policy.Delay(), absl::Milliseconds(10));
  for (int i = 0; i < 50; ++i) policy.Observe(absl::Milliseconds(40));
  EXPECT_GE(policy.Delay(), absl::Milliseconds(40));
  EXPECT_LE(policy.Delay(), absl::Milliseconds(100));
  for (int i = 0; i < 50; ++i) policy.Observe(absl::Seconds(5));
  EXPECT_EQ(policy.Delay(), absl::Milliseconds(100));
}

TEST(HedgePolicyTest, HedgesAreBoundedByTheBudget) {
  HedgePolicy policy({absl::Milliseconds(5), absl::Milliseconds(100), 20});
  int hedges = 0;
  while (policy.TakeCredit()) ++hedges;
  EXPECT_EQ(hedges, HedgePolicy::kBurst);
  for (int first_attempts = 0; first_attempts < 10; ++first_attempts) policy.EarnCredit();
  hedges = 0;
  while (policy.TakeCredit()) ++hedges;
  EXPECT_EQ(hedges, 2);  // 20 per 100 first attempts
  for (int first_attempts = 0; first_attempts < 1000; ++first_attempts) policy.EarnCredit();
  hedges = 0;
  while (policy.TakeCredit()) ++hedges;
  EXPECT_EQ(hedges, HedgePolicy::kBurst);  // credit never exceeds the burst
}

// SplitChoice, with times given: apart first, then one call, then the faster way, with the
// slower one tried again at most once per kRetryAfter and per kDecisionsBetweenTries.
TEST(SplitChoiceTest, EachWayIsMeasuredFirstThenTheFasterOneIsTaken) {
  SplitChoice choice;
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  for (int i = 0; i < SplitChoice::kFirstSamples; ++i) {
    ASSERT_TRUE(choice.Apart(t0));
    choice.Observe(true, absl::Milliseconds(2), t0);
  }
  for (int i = 0; i < SplitChoice::kFirstSamples; ++i) {
    ASSERT_FALSE(choice.Apart(t0));
    choice.Observe(false, absl::Milliseconds(1), t0);
  }
  for (int i = 0; i < 1000; ++i) ASSERT_FALSE(choice.Apart(t0)) << i;  // within kRetryAfter
  const SplitChoice::Estimates estimates = choice.Snapshot();
  EXPECT_DOUBLE_EQ(estimates.apart_ms, 2);
  EXPECT_DOUBLE_EQ(estimates.together_ms, 1);
}

TEST(SplitChoiceTest, TheSlowerWayIsTriedAgainAtMostOncePerIntervalAndPerDecisions) {
  SplitChoice choice;
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  for (int i = 0; i < SplitChoice::kFirstSamples; ++i) {
    choice.Observe(true, absl::Milliseconds(2), t0);
    choice.Observe(false, absl::Milliseconds(1), t0);
  }
  // Long after: a try once kDecisionsBetweenTries decisions went the faster way. Tries that are
  // not measured (they failed, say) leave the way as stale as before: the next try comes after
  // another kDecisionsBetweenTries decisions.
  const absl::Time later = t0 + SplitChoice::kRetryAfter;
  std::vector<int> tries;
  for (int i = 0; i < 10 * SplitChoice::kDecisionsBetweenTries; ++i) {
    if (choice.Apart(later)) tries.push_back(i);
  }
  ASSERT_GE(tries.size(), 2u);
  EXPECT_EQ(tries[0], SplitChoice::kDecisionsBetweenTries);
  for (size_t t = 1; t < tries.size(); ++t) {
    EXPECT_EQ(tries[t] - tries[t - 1], SplitChoice::kDecisionsBetweenTries + 1);
  }
  // Measured now: no further try within kRetryAfter, however many decisions.
  choice.Observe(true, absl::Milliseconds(2), later);
  for (int i = 0; i < 10 * SplitChoice::kDecisionsBetweenTries; ++i) {
    ASSERT_FALSE(choice.Apart(later + SplitChoice::kRetryAfter / 2)) << i;
  }
}

TEST(SplitChoiceTest, AWayThatBecameFasterIsTakenAfterAFewTries) {
  SplitChoice choice;
  absl::Time now = absl::FromUnixSeconds(1000);
  for (int i = 0; i < SplitChoice::kFirstSamples; ++i) {
    choice.Observe(true, absl::Milliseconds(2), now);
    choice.Observe(false, absl::Milliseconds(1), now);
  }
  // From now on apart takes 0.1 ms and one call still 1 ms; one search every 10 ms.
  int apart_in_last_hundred = 0;
  const int searches = 3000;  // 30 s
  for (int i = 0; i < searches; ++i) {
    now += absl::Milliseconds(10);
    const bool apart = choice.Apart(now);
    choice.Observe(apart, apart ? absl::Microseconds(100) : absl::Milliseconds(1), now);
    if (i >= searches - 100 && apart) ++apart_in_last_hundred;
  }
  EXPECT_GE(apart_in_last_hundred, 99);
  EXPECT_LT(choice.Snapshot().apart_ms, choice.Snapshot().together_ms);
}

}  // namespace
}  // namespace probity::service::testing
