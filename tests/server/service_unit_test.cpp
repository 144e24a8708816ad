// The service's own logic without a network: fan-out and merge, replica retry, coverage and
// partial results; refusal rate limiting and budget restoration; configuration rules.
#include <gtest/gtest.h>

#include <functional>

#include "fake_ledger.h"
#include "probity/service/audit_log.h"
#include "probity/service/config.h"
#include "probity/service/router.h"

namespace probity::service::testing {
namespace {

// Answers query q with ids shard*100 + q*10 + i and scores that interleave across shards.
class FakeShard : public ShardBackend {
 public:
  FakeShard(int shard, bool fails) : shard_(shard), fails_(fails) {}
  absl::StatusOr<ShardAnswer> Search(const ShardQuery& query, absl::Time) override {
    ++calls;
    if (fails_) return absl::UnavailableError("down");
    EXPECT_EQ(query.shard, shard_);
    ShardAnswer answer;
    answer.generation = "7";
    const int nq = static_cast<int>(query.queries.size()) / query.dim;
    for (int q = 0; q < nq; ++q) {
      index::HitList hits;
      for (int i = 0; i < query.params.k; ++i) {
        hits.push_back({shard_ * 100 + q * 10 + i, 1.0f - 0.1f * i - 0.01f * shard_,
                        static_cast<uint32_t>(shard_)});
      }
      answer.hits.push_back(hits);
    }
    return answer;
  }
  std::string Describe() const override { return "fake"; }
  int calls = 0;

 private:
  int shard_;
  bool fails_;
};

struct Fleet {
  std::vector<std::shared_ptr<FakeShard>> backends;
  CollectionRoute route;
};

// shards[s] lists whether each replica of shard s fails.
Fleet MakeFleet(const std::vector<std::vector<bool>>& shards) {
  Fleet fleet;
  fleet.route.name = "c";
  fleet.route.dim = 2;
  fleet.route.replicas.resize(shards.size());
  for (size_t s = 0; s < shards.size(); ++s) {
    for (bool fails : shards[s]) {
      auto backend = std::make_shared<FakeShard>(static_cast<int>(s), fails);
      fleet.backends.push_back(backend);
      fleet.route.replicas[s].push_back(backend);
    }
  }
  return fleet;
}

const std::vector<float> kTwoQueries = {1, 0, 0, 1};

index::SearchParams K(int k) {
  index::SearchParams params;
  params.k = k;
  return params;
}

TEST(RouterTest, MergesAllShardsIntoOneTopK) {
  Fleet fleet = MakeFleet({{false}, {false}, {false}});
  Router router(absl::Seconds(1), 4);
  RoutedSearch result = router.Search(fleet.route, kTwoQueries, K(4), false);
  ASSERT_TRUE(result.status.ok()) << result.status;
  EXPECT_EQ(result.shards_answered, 3u);
  EXPECT_EQ(result.shards_total, 3u);
  EXPECT_EQ(result.generation, "7");
  ASSERT_EQ(result.hits.size(), 2u);
  // Score 1.0 - 0.1 i - 0.01 s: rank by i first, then by shard.
  std::vector<int64_t> ids;
  for (const index::Hit& hit : result.hits[1]) ids.push_back(hit.id);
  EXPECT_EQ(ids, (std::vector<int64_t>{10, 110, 210, 11}));
}

TEST(RouterTest, RetriesAFailedShardOnItsReplica) {
  Fleet fleet = MakeFleet({{true, false}, {false}});
  Router router(absl::Seconds(1), 4);
  // Replicas share the load, so the failing one is asked first only in some searches; none of
  // them fails.
  for (int search = 0; search < 20 && fleet.backends[0]->calls == 0; ++search) {
    RoutedSearch result = router.Search(fleet.route, kTwoQueries, K(2), false);
    ASSERT_TRUE(result.status.ok()) << result.status;
    EXPECT_EQ(result.shards_answered, 2u);
  }
  EXPECT_EQ(fleet.backends[0]->calls, 1);
  EXPECT_GE(fleet.backends[1]->calls, 1);
}

TEST(RouterTest, MissingShardFailsUnlessPartialIsAllowed) {
  Fleet fleet = MakeFleet({{false}, {true, true}, {false}});
  Router router(absl::Seconds(1), 4);
  RoutedSearch strict = router.Search(fleet.route, kTwoQueries, K(3), false);
  EXPECT_EQ(strict.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(strict.hits.empty());
  EXPECT_EQ(strict.shards_answered, 2u);
  ASSERT_EQ(strict.failures.size(), 1u);
  EXPECT_NE(strict.failures[0].find("shard 1"), std::string::npos);

  RoutedSearch partial = router.Search(fleet.route, kTwoQueries, K(3), true);
  ASSERT_TRUE(partial.status.ok());
  EXPECT_EQ(partial.shards_answered, 2u);
  EXPECT_EQ(partial.shards_total, 3u);
  for (const auto& hits : partial.hits) {
    for (const index::Hit& hit : hits) EXPECT_NE(hit.shard, 1u);
  }
}

TEST(RouterTest, NoShardAnsweringIsAFailureEvenWithPartialAllowed) {
  Fleet fleet = MakeFleet({{true}, {true}});
  Router router(absl::Seconds(1), 4);
  EXPECT_FALSE(router.Search(fleet.route, kTwoQueries, K(3), true).status.ok());
  CollectionRoute unreachable = fleet.route;
  unreachable.replicas[0].clear();
  unreachable.replicas[1].clear();
  EXPECT_FALSE(router.Search(unreachable, kTwoQueries, K(3), true).status.ok());
}

TEST(RouterTest, NoShardIsAskedAfterTheCallersDeadline) {
  Fleet fleet = MakeFleet({{false}, {false}});
  Router router(absl::Seconds(1), 4);
  RoutedSearch late =
      router.Search(fleet.route, kTwoQueries, K(3), true, absl::Now() - absl::Seconds(1));
  EXPECT_FALSE(late.status.ok());
  EXPECT_EQ(late.shards_answered, 0u);
  EXPECT_EQ(fleet.backends[0]->calls + fleet.backends[1]->calls, 0);
}

v1::LedgerEntry Refusal(const std::string& code) {
  v1::LedgerEntry entry;
  entry.set_kind(v1::ENTRY_KIND_REFUSAL);
  entry.mutable_refusal()->set_code(code);
  entry.mutable_refusal()->set_message("refused");
  return entry;
}

const RefusalSource kAnonymous{"ip:192.0.2.1", false};

TEST(AuditLogTest, RefusalsBeyondTheRateLimitAreCountedNotRecorded) {
  FakeLedger ledger;
  AuditLog audit(ledger, /*refusals_per_second=*/0.2);  // burst of 1, then one per 5 s
  auto first = audit.AppendRefusal(Refusal("bad_signature"), kAnonymous);
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->has_value());
  for (int i = 0; i < 3; ++i) {
    auto dropped = audit.AppendRefusal(Refusal("bad_signature"), kAnonymous);
    ASSERT_TRUE(dropped.ok());
    EXPECT_FALSE(dropped->has_value());
  }
  EXPECT_EQ(audit.refusals_not_recorded(), 3u);
  EXPECT_EQ(ledger.Size(), 1u);
  // Searches are never rate-limited.
  v1::LedgerEntry search;
  search.set_kind(v1::ENTRY_KIND_SEARCH);
  EXPECT_TRUE(audit.Append(search).ok());
  EXPECT_EQ(ledger.Size(), 2u);
}

TEST(AuditLogTest, RefusalsOfAVerifiedWarrantAreNeverDropped) {
  FakeLedger ledger;
  AuditLog audit(ledger, /*refusals_per_second=*/0.2);
  ASSERT_TRUE(audit.AppendRefusal(Refusal("bad_signature"), kAnonymous).ok());
  ASSERT_FALSE(audit.AppendRefusal(Refusal("bad_signature"), kAnonymous)->has_value());
  // The same caller, now with a warrant that verified: recorded every time.
  for (int i = 0; i < 20; ++i) {
    auto recorded =
        audit.AppendRefusal(Refusal("collection_out_of_scope"), {kAnonymous.caller, true});
    ASSERT_TRUE(recorded.ok());
    EXPECT_TRUE(recorded->has_value());
  }
  EXPECT_EQ(ledger.Size(), 21u);
  EXPECT_EQ(audit.refusals_not_recorded(), 1u);
}

// Appends fail while `fail` is set, standing in for a full disk or an entry over the cap.
class FlakyLedger : public FakeLedger {
 public:
  bool fail = false;
  absl::StatusOr<ledger::Receipt> Append(const v1::LedgerEntry& entry) override {
    if (fail) return absl::InvalidArgumentError("record over the cap (injected)");
    return FakeLedger::Append(entry);
  }
};

TEST(AuditLogTest, ARefusalLostToAFailedAppendIsNotBlamedOnTheRateLimit) {
  FlakyLedger ledger;
  AuditLog audit(ledger, /*refusals_per_second=*/100);
  ledger.fail = true;
  EXPECT_FALSE(audit.AppendRefusal(Refusal("collection_out_of_scope"), {"tls:x", true}).ok());
  ledger.fail = false;
  ASSERT_TRUE(audit.AppendRefusal(Refusal("budget_exhausted"), {"tls:x", true}).ok());
  const std::string message = ledger.Entry(0).refusal().message();
  EXPECT_NE(message.find("1 earlier refusals not recorded: the ledger could not append"),
            std::string::npos)
      << message;
  EXPECT_EQ(message.find("rate limit"), std::string::npos) << message;
  EXPECT_EQ(audit.refusals_not_recorded(), 0u);  // the Stats counter of the rate limit
}

TEST(AuditLogTest, BudgetsAreRebuiltFromSearchEntriesPerIssuerAndWarrant) {
  FakeLedger ledger;
  auto search = [&](const std::string& issuer, const std::string& jti, uint32_t count,
                    v1::EntryKind kind) {
    v1::LedgerEntry entry;
    entry.set_kind(kind);
    entry.set_issuer(issuer);
    entry.set_warrant_id(jti);
    entry.set_query_count(count);
    ASSERT_TRUE(ledger.Append(entry).ok());
  };
  search("a", "w1", 3, v1::ENTRY_KIND_SEARCH);
  search("a", "w2", 1, v1::ENTRY_KIND_SEARCH);
  search("a", "w1", 2, v1::ENTRY_KIND_SEARCH);
  search("a", "w1", 0, v1::ENTRY_KIND_REFUSAL);
  search("b", "w1", 4, v1::ENTRY_KIND_SEARCH);  // another issuer's warrant with the same jti
  AuditLog audit(ledger, 10);
  warrant::BudgetTracker budgets;
  ASSERT_TRUE(audit.RestoreBudgets(budgets).ok());
  EXPECT_EQ(budgets.Used({"a", "w1"}), 5);
  EXPECT_EQ(budgets.Used({"a", "w2"}), 1);
  EXPECT_EQ(budgets.Used({"b", "w1"}), 4);
  EXPECT_FALSE(budgets.TryReserve({"a", "w1"}, 1, 5));
  EXPECT_TRUE(budgets.TryReserve({"a", "w2"}, 4, 5));
  EXPECT_TRUE(budgets.TryReserve({"b", "w1"}, 1, 5));
}

// Counts the entries read, to show that a start does not read the whole log.
class CountingLedger : public FakeLedger {
 public:
  absl::StatusOr<std::string> ReadEntry(uint64_t index) const override {
    ++reads;
    return FakeLedger::ReadEntry(index);
  }
  mutable int reads = 0;
};

TEST(AuditLogTest, BudgetsAreRebuiltFromTheEntriesSinceTheGivenTimeOnly) {
  CountingLedger ledger;
  const absl::Time start = absl::FromUnixSeconds(1'700'000'000);
  auto search = [&](const std::string& jti, absl::Time when) {
    v1::LedgerEntry entry;
    entry.set_time_unix_micros(absl::ToUnixMicros(when));
    entry.set_kind(v1::ENTRY_KIND_SEARCH);
    entry.set_issuer("a");
    entry.set_warrant_id(jti);
    entry.set_query_count(2);
    ASSERT_TRUE(ledger.Append(entry).ok());
  };
  for (int i = 0; i < 4000; ++i) search("old", start + absl::Seconds(i));
  const absl::Time since = start + absl::Seconds(4000);
  search("new", since);
  search("new", since + absl::Seconds(1));
  search("new", since + absl::Seconds(2));
  AuditLog audit(ledger, 10);
  warrant::BudgetTracker budgets;
  ASSERT_TRUE(audit.RestoreBudgets(budgets, since).ok());
  EXPECT_EQ(budgets.Used({"a", "new"}), 6);
  EXPECT_EQ(budgets.Used({"a", "old"}), 0);
  // Bisection over 4003 entries (13 reads) and the three recent ones.
  EXPECT_LE(ledger.reads, 3 + 13);

  warrant::BudgetTracker everything;
  ledger.reads = 0;
  ASSERT_TRUE(audit.RestoreBudgets(everything).ok());
  EXPECT_EQ(everything.Used({"a", "old"}), 8000);
  EXPECT_EQ(everything.Used({"a", "new"}), 6);
}

TEST(ConfigTest, RoundTripsThroughJson) {
  ServerConfig config;
  config.data_dir = "/data";
  config.listen = "0.0.0.0:9000";
  config.deployment = "prod";
  config.collections.push_back({"faces", "collections/faces/gen-3", {0, 2}});
  config.shard_servers = {"a:1", "b:2"};
  config.tls = TlsConfig{"s.pem", "s.key", "ca.pem", true};
  config.operators.push_back({"op", "ab12", ""});
  config.auditors.push_back({"au", "", "auditor.example"});
  config.max_in_flight = 9;
  auto parsed = ParseConfig(ConfigToJson(config), "/elsewhere");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(ConfigToJson(*parsed), ConfigToJson(config));
  EXPECT_EQ(parsed->collections[0].shards, (std::vector<int>{0, 2}));
  EXPECT_TRUE(parsed->tls->require_client_cert);
  EXPECT_EQ(Resolve(*parsed, "ledger"), std::filesystem::path("/data/ledger"));
  EXPECT_FALSE(ParseConfig("{not json", "/").ok());
  EXPECT_FALSE(ParseConfig(R"({"collections":[{"name":"x"}]})", "/").ok());
}

TEST(ConfigTest, SearchBoundsRoundTripAndAreValidated) {
  ServerConfig config;
  config.plaintext = true;
  config.max_queries_per_request = 77;
  config.max_justification_bytes = 512;
  config.refusal_rate_per_caller_per_second = 0.5;
  config.refusal_callers_tracked = 9;
  auto parsed = ParseConfig(ConfigToJson(config), "/");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->max_queries_per_request, 77);
  EXPECT_EQ(parsed->max_justification_bytes, 512);
  EXPECT_EQ(parsed->refusal_rate_per_caller_per_second, 0.5);
  EXPECT_EQ(parsed->refusal_callers_tracked, 9);
  EXPECT_TRUE(ValidateConfig(*parsed).ok());
  for (auto edit : std::vector<std::function<void(ServerConfig&)>>{
           [](ServerConfig& c) { c.max_queries_per_request = 0; },
           [](ServerConfig& c) { c.max_justification_bytes = -1; },
           [](ServerConfig& c) { c.refusal_rate_per_caller_per_second = 0; },
           [](ServerConfig& c) { c.refusal_callers_tracked = 0; }}) {
    ServerConfig bad = *parsed;
    edit(bad);
    EXPECT_EQ(ValidateConfig(bad).code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(ConfigTest, LedgerWithoutFsyncIsRefusedOffLoopback) {
  ServerConfig config;
  config.tls = TlsConfig{"s.pem", "s.key", "", false};
  config.ledger.fsync = false;
  config.listen = "0.0.0.0:9000";
  const absl::Status status = ValidateConfig(config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("fsync"), std::string::npos) << status;

  config.ledger.fsync = true;
  EXPECT_TRUE(ValidateConfig(config).ok());
  config.ledger.fsync = false;
  config.listen = "127.0.0.1:9000";
  EXPECT_TRUE(ValidateConfig(config).ok());
}

}  // namespace
}  // namespace probity::service::testing
