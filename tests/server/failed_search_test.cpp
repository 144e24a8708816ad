// A search that fails (a shard with every replica down) over real gRPC with an in-memory
// ledger: it charges nothing, its entry says so, the budget rebuilt from the entries is the one
// the server holds, and the client gets the coverage as data in the status details.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "fake_ledger.h"
#include "probity/service/search_service.h"
#include "probity/v1/search.grpc.pb.h"
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
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  auto stub = v1::Search::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  auto search = [&](bool allow_partial, v1::SearchResponse* response) {
    v1::SearchRequest request;
    request.set_collection(kCollection);
    request.set_k(1);
    request.set_allow_partial(allow_partial);
    auto* values = request.add_queries()->mutable_values();
    values->Add(1.0f);
    values->Add(0.0f);
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + token);
    return stub->Search(&context, request, response);
  };

  // Three failed searches with a budget of two: none is refused, none is charged.
  for (int n = 0; n < 3; ++n) {
    v1::SearchResponse response;
    const grpc::Status status = search(false, &response);
    ASSERT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
    EXPECT_EQ(response.results_size(), 0);
    v1::SearchStatus details;
    ASSERT_TRUE(details.ParseFromString(status.error_details()));
    EXPECT_EQ(details.code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_EQ(details.message(), status.error_message());
    ASSERT_EQ(details.details_size(), 1);
    v1::SearchFailure failure;
    ASSERT_TRUE(details.details(0).UnpackTo(&failure));
    EXPECT_EQ(failure.queries_charged(), 0u);
    EXPECT_EQ(failure.ledger_entry_index(), ledger.Size() - 1);
    EXPECT_EQ(failure.coverage().shards_answered(), 1u);
    EXPECT_EQ(failure.coverage().shards_total(), 2u);
    EXPECT_TRUE(failure.coverage().partial());
    ASSERT_EQ(failure.coverage().failures_size(), 1);
    const v1::ShardFailure& shard = failure.coverage().failures(0);
    EXPECT_EQ(shard.shard(), 1u);
    EXPECT_EQ(shard.code(), "UNAVAILABLE");
    EXPECT_EQ(std::set<std::string>(shard.servers().begin(), shard.servers().end()),
              (std::set<std::string>{"down-a", "down-b"}));
    EXPECT_NE(shard.message().find("is down"), std::string::npos) << shard.message();

    const v1::LedgerEntry entry = ledger.Entry(failure.ledger_entry_index());
    EXPECT_EQ(entry.kind(), v1::ENTRY_KIND_SEARCH);
    EXPECT_EQ(entry.outcome(), v1::OUTCOME_FAILED);
    EXPECT_EQ(entry.query_count(), 0u);
    EXPECT_EQ(entry.queries_received(), 1u);
    EXPECT_EQ(budgets.Used(warrant_id), 0);
  }
  EXPECT_EQ(counters.searches_failed.load(), 3u);

  // Partial answers are charged, and say which shard is missing.
  for (int n = 0; n < 2; ++n) {
    v1::SearchResponse response;
    const grpc::Status status = search(true, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_TRUE(response.coverage().partial());
    ASSERT_EQ(response.coverage().failures_size(), 1);
    EXPECT_EQ(response.coverage().failures(0).shard(), 1u);
    EXPECT_EQ(ledger.Entry(response.receipt().entry_index()).query_count(), 1u);
  }
  EXPECT_EQ(budgets.Used(warrant_id), 2);
  v1::SearchResponse refused;
  const grpc::Status over = search(true, &refused);
  EXPECT_EQ(over.error_code(), grpc::StatusCode::PERMISSION_DENIED) << over.error_message();

  // A restart rebuilds exactly the budget the server holds from the entries.
  warrant::BudgetTracker rebuilt;
  ASSERT_TRUE(audit.RestoreBudgets(rebuilt).ok());
  EXPECT_EQ(rebuilt.Used(warrant_id), budgets.Used(warrant_id));
  server->Shutdown();
}

}  // namespace
}  // namespace probity::service::testing
