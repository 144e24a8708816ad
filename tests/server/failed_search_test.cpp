// A search that fails (a shard with every replica down) over real gRPC with an in-memory
// ledger: it charges nothing, its entry says so, the budget rebuilt from the entries is the one
// the server holds, and the client gets the coverage as data in the status details.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "common/loopback_grpc_server.h"
#include "fake_ledger.h"
#include "probity/client/call_status.h"
#include "probity/client/search_client.h"
#include "probity/service/search_service.h"
#include "probity/warrant/issue.h"
#include "test_support.h"

namespace probity::service::testing {
namespace {

class FixedShard : public ShardBackend {
 public:
  FixedShard(std::string name, bool up) : name_(std::move(name)), up_(up) {}
  absl::StatusOr<ShardAnswer> Search(const ShardQuery& query, absl::Time) override {
    if (!up_) return absl::UnavailableError(name_ + " is down");
    ShardAnswer answer;
    answer.generation = "1";
    answer.hits.assign(
        query.queries.size() / query.dim,
        index::HitList{{query.shard * 10 + 1, 0.9f, static_cast<uint32_t>(query.shard)}});
    return answer;
  }
  std::string Describe() const override { return name_; }

 private:
  const std::string name_;
  const bool up_;
};

TEST(FailedSearchTest, ChargesNothingSaysSoInTheLedgerAndReportsCoverageAsData) {
  TempDir dir;
  auto key = warrant::Ed25519PrivateKey::Generate();
  ASSERT_TRUE(key.ok());
  std::ofstream(dir.path() / "jwks.json")
      << *warrant::AppendToJwks("", *warrant::PublicJwk(*key, kKid, kIssuer));
  warrant::Verifier::Options options;
  options.policy.audience = kDeployment;
  options.jwks_file = dir.path() / "jwks.json";
  auto verifier = warrant::Verifier::Create(options);
  ASSERT_TRUE(verifier.ok()) << verifier.status();
  warrant::Claims claims = GoodClaims();
  claims.max_queries = 2;
  const std::string token = *warrant::IssueToken(claims, *key, kKid);
  const warrant::WarrantId warrant_id{claims.iss, claims.jti};

  // Shard 0 answers; shard 1's two replicas are down.
  Router router(absl::Seconds(30), 4);
  CollectionRoute route;
  route.name = kCollection;
  route.dim = 2;
  route.replicas = {{std::make_shared<FixedShard>("up", true)},
                    {std::make_shared<FixedShard>("down-a", false),
                     std::make_shared<FixedShard>("down-b", false)}};
  router.SetRoute(route);
  FakeLedger ledger;
  AuditLog audit(ledger, 100);
  warrant::BudgetTracker budgets;
  ServiceCounters counters;
  SearchServiceImpl service(**verifier, budgets, audit, router, counters,
                            SearchServiceImpl::Options{8, 4});
  const test_support::LoopbackGrpcServer server = test_support::StartLoopbackGrpcServer(&service);
  ASSERT_NE(server.server, nullptr);
  const client::SearchClient client(
      grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials()));
  auto search = [&](bool allow_partial) {
    v1::SearchRequest request;
    request.set_collection(kCollection);
    request.set_k(1);
    request.set_allow_partial(allow_partial);
    auto* values = request.add_queries()->mutable_values();
    values->Add(1.0f);
    values->Add(0.0f);
    return client.Search(request, token);
  };

  // Three failed searches with a budget of two: none is refused, none is charged.
  for (int n = 0; n < 3; ++n) {
    const absl::StatusOr<v1::SearchResponse> response = search(false);
    ASSERT_EQ(response.status().code(), absl::StatusCode::kUnavailable) << response.status();
    const absl::StatusOr<v1::SearchFailure> failure = client::FailureOf(response.status());
    ASSERT_TRUE(failure.ok()) << failure.status();
    EXPECT_EQ(failure->queries_charged(), 0u);
    EXPECT_EQ(failure->ledger_entry_index(), ledger.Size() - 1);
    EXPECT_EQ(client::LedgerEntryOf(response.status()), failure->ledger_entry_index());
    EXPECT_EQ(failure->coverage().shards_answered(), 1u);
    EXPECT_EQ(failure->coverage().shards_total(), 2u);
    EXPECT_TRUE(failure->coverage().partial());
    ASSERT_EQ(failure->coverage().failures_size(), 1);
    const v1::ShardFailure& shard = failure->coverage().failures(0);
    EXPECT_EQ(shard.shard(), 1u);
    EXPECT_EQ(shard.code(), "UNAVAILABLE");
    EXPECT_EQ(std::set<std::string>(shard.servers().begin(), shard.servers().end()),
              (std::set<std::string>{"down-a", "down-b"}));
    EXPECT_NE(shard.message().find("is down"), std::string::npos) << shard.message();

    const v1::LedgerEntry entry = ledger.Entry(failure->ledger_entry_index());
    EXPECT_EQ(entry.kind(), v1::ENTRY_KIND_SEARCH);
    EXPECT_EQ(entry.outcome(), v1::OUTCOME_FAILED);
    EXPECT_EQ(entry.query_count(), 0u);
    EXPECT_EQ(entry.queries_received(), 1u);
    EXPECT_EQ(budgets.Used(warrant_id), 0);
  }
  EXPECT_EQ(counters.searches_failed.load(), 3u);

  // Partial answers are charged, and say which shard is missing.
  for (int n = 0; n < 2; ++n) {
    const absl::StatusOr<v1::SearchResponse> response = search(true);
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_TRUE(response->coverage().partial());
    ASSERT_EQ(response->coverage().failures_size(), 1);
    EXPECT_EQ(response->coverage().failures(0).shard(), 1u);
    EXPECT_EQ(ledger.Entry(response->receipt().entry_index()).query_count(), 1u);
  }
  EXPECT_EQ(budgets.Used(warrant_id), 2);
  const absl::StatusOr<v1::SearchResponse> over = search(true);
  EXPECT_EQ(over.status().code(), absl::StatusCode::kPermissionDenied) << over.status();

  // A restart rebuilds exactly the budget the server holds from the entries.
  warrant::BudgetTracker rebuilt;
  ASSERT_TRUE(audit.RestoreBudgets(rebuilt).ok());
  EXPECT_EQ(rebuilt.Used(warrant_id), budgets.Used(warrant_id));
  server.server->Shutdown();
}

}  // namespace
}  // namespace probity::service::testing
