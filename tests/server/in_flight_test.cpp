// The Search service's bound on searches in flight, over real gRPC, with shards that block
// until the test lets them answer.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "common/connected_channel.h"
#include "common/held_calls.h"
#include "common/loopback_grpc_server.h"
#include "fake_ledger.h"
#include "probity/client/search_client.h"
#include "probity/service/search_service.h"
#include "probity/warrant/issue.h"
#include "test_support.h"

namespace probity::service::testing {
namespace {

class GatedShard : public ShardBackend {
 public:
  absl::StatusOr<ShardAnswer> Search(const ShardQuery& query, absl::Time) override {
    held_.EnterAndWait();
    ShardAnswer answer;
    answer.generation = "1";
    answer.hits.assign(query.queries.size() / query.dim, index::HitList{{42, 0.9f, 0}});
    return answer;
  }
  std::string Describe() const override { return "gated"; }

  void WaitForEntered(int n) { held_.WaitForEntered(n); }
  void Open() { held_.Open(); }

 private:
  test_support::HeldCalls held_;
};

TEST(InFlightTest, SearchesOverTheBoundGetResourceExhaustedAndTheOthersFinish) {
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
  const std::string token = *warrant::IssueToken(GoodClaims(), *key, kKid);

  auto gate = std::make_shared<GatedShard>();
  Router router(absl::Seconds(30), 4);
  CollectionRoute route;
  route.name = kCollection;
  route.dim = 2;
  route.replicas = {{gate}};
  router.SetRoute(route);
  FakeLedger ledger;
  AuditLog audit(ledger, 100);
  warrant::BudgetTracker budgets;
  ServiceCounters counters;
  SearchServiceImpl service(**verifier, budgets, audit, router, counters,
                            SearchServiceImpl::Options{/*max_in_flight=*/2, 4});
  const test_support::LoopbackGrpcServer server = test_support::StartLoopbackGrpcServer(&service);
  ASSERT_NE(server.server, nullptr);
  const client::SearchClient client(test_support::Connected(
      grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials())));

  v1::SearchRequest request;
  request.set_collection(kCollection);
  request.set_k(1);
  auto* values = request.add_queries()->mutable_values();
  values->Add(1.0f);
  values->Add(0.0f);
  auto search = [&] { return client.Search(request, token); };

  absl::StatusOr<v1::SearchResponse> first, second;
  std::thread a([&] { first = search(); });
  std::thread b([&] { second = search(); });
  gate->WaitForEntered(2);

  const absl::StatusOr<v1::SearchResponse> over = search();
  EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted) << over.status();
  EXPECT_EQ(counters.searches_refused_busy.load(), 1u);  // counted for Admin.Stats

  gate->Open();
  a.join();
  b.join();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(first->results(0).candidates(0).id(), 42);
  EXPECT_EQ(ledger.Size(), 2u);  // the two searches that ran, each recorded
  EXPECT_TRUE(search().ok());    // capacity is back
  server.server->Shutdown();
}

}  // namespace
}  // namespace probity::service::testing
