// Dynamic batching in the embedded server over real gRPC: many concurrent clients with
// different queries, k, min_score and nprobe get exactly the answers of a server without
// batching, every request keeps its own ledger entry and budget charge, and concurrent
// searches of a shard really share FAISS calls (Admin.Stats), in the embedded server and on a
// shard server behind a router.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <barrier>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "common/connected_channel.h"
#include "probity/client/search_client.h"
#include "probity/service/server.h"
#include "probity/v1/admin.grpc.pb.h"
#include "probity/v1/ledger_service.grpc.pb.h"
#include "probity/v1/search.grpc.pb.h"
#include "test_support.h"

namespace probity::service::testing {
namespace {

// A connection of its own per client, connected before the first call: clients released
// together then start searching together, not connecting.
std::shared_ptr<grpc::Channel> NewChannel(int port, int client) {
  grpc::ChannelArguments args;
  args.SetInt("probity_test_client", client);
  return test_support::Connected(grpc::CreateCustomChannel(
      "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials(), args));
}

struct Outcome {
  absl::Status status;
  v1::SearchResponse response;  // empty unless the search was answered
};

Outcome Search(const client::SearchClient& search, const std::string& token,
               const v1::SearchRequest& request) {
  absl::StatusOr<v1::SearchResponse> answer = search.Search(request, token);
  if (!answer.ok()) return {answer.status(), {}};
  return {absl::OkStatus(), *std::move(answer)};
}

Outcome Search(int port, int client, const std::string& token, const v1::SearchRequest& request) {
  return Search(client::SearchClient(NewChannel(port, client)), token, request);
}

v1::StatsResponse Stats(int port) {
  auto stub = v1::Admin::NewStub(NewChannel(port, -1));
  grpc::ClientContext context;
  context.AddMetadata("authorization", std::string("Bearer ") + kOperatorToken);
  v1::StatsResponse stats;
  grpc::Status status = stub->Stats(&context, v1::StatsRequest(), &stats);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return stats;
}

v1::LedgerEntry Entry(int port, uint64_t index) {
  auto stub = v1::Ledger::NewStub(NewChannel(port, -1));
  grpc::ClientContext context;
  context.AddMetadata("authorization", std::string("Bearer ") + kAuditorToken);
  v1::GetEntriesRequest request;
  request.set_start(index);
  request.set_count(1);
  v1::GetEntriesResponse response;
  grpc::Status status = stub->GetEntries(&context, request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  v1::LedgerEntry entry;
  if (response.entries_size() == 1) {
    EXPECT_TRUE(entry.ParseFromString(response.entries(0).entry()));
  }
  return entry;
}

void ExpectSameAnswer(const v1::SearchResponse& got, const v1::SearchResponse& expected,
                      const std::string& what) {
  ASSERT_EQ(got.results_size(), expected.results_size()) << what;
  for (int q = 0; q < got.results_size(); ++q) {
    const auto& g = got.results(q).candidates();
    const auto& e = expected.results(q).candidates();
    ASSERT_EQ(g.size(), e.size()) << what << " query " << q;
    for (int r = 0; r < g.size(); ++r) {
      EXPECT_EQ(g[r].id(), e[r].id()) << what << " query " << q << " rank " << r + 1;
      EXPECT_EQ(g[r].score(), e[r].score()) << what << " query " << q << " rank " << r + 1;
      EXPECT_EQ(g[r].shard(), e[r].shard()) << what << " query " << q << " rank " << r + 1;
      EXPECT_EQ(g[r].rank(), e[r].rank()) << what << " query " << q << " rank " << r + 1;
    }
  }
  EXPECT_EQ(got.coverage().shards_answered(), expected.coverage().shards_answered()) << what;
}

class BatchingServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { world_ = MakeWorld(3).release(); }
  static void TearDownTestSuite() {
    delete world_;
    world_ = nullptr;
  }

  std::unique_ptr<Server> Start(bool batching, int max_batch_queries, int max_wait_us) {
    static int counter = 0;
    ServerConfig config = world_->config;
    config.ledger.dir = "batching-ledger-" + std::to_string(++counter);
    config.state_dir = "batching-state-" + std::to_string(counter);
    config.batching.enabled = batching;
    config.batching.max_batch_queries = max_batch_queries;
    config.batching.max_wait_us = max_wait_us;
    auto server = Server::StartRouter(config);
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? std::move(*server) : nullptr;
  }

  // Gallery rows as queries (the world has few held-out queries): `count` from row `first`.
  v1::SearchRequest Request(int first, int count, uint32_t k, uint32_t nprobe,
                            std::optional<float> min_score) const {
    v1::SearchRequest request;
    request.set_collection(kCollection);
    request.set_k(k);
    request.set_nprobe(nprobe);
    if (min_score) request.set_min_score(*min_score);
    request.set_justification("batching test");
    const int dim = world_->gallery.dim;
    for (int row = first; row < first + count; ++row) {
      const float* begin = world_->gallery.gallery.data() + row * dim;
      request.add_queries()->mutable_values()->Add(begin, begin + dim);
    }
    return request;
  }

  static TestWorld* world_;
};

TestWorld* BatchingServiceTest::world_ = nullptr;

TEST_F(BatchingServiceTest, ConcurrentClientsGetTheUnbatchedAnswerTheirOwnEntryAndCharge) {
  auto plain = Start(false, 256, 0);
  auto batched = Start(true, 256, 0);
  ASSERT_TRUE(plain && batched);

  std::vector<v1::SearchRequest> requests;
  int64_t total_queries = 0;
  for (int i = 0; i < 96; ++i) {
    std::optional<float> min_score;
    if (i % 4 == 1) min_score = 0.8f;
    const int count = 1 + i % 2;
    requests.push_back(Request((i * 37) % 1100, count, 1 + i % 20, i % 3 == 0 ? 2 : 4, min_score));
    total_queries += count;
  }
  // The warrant's budget is exactly what the requests need: every request must be charged once.
  warrant::Claims claims = GoodClaims();
  claims.max_queries = total_queries;
  const std::string token = Issue(*world_, claims);

  constexpr int kClients = 16;
  std::vector<Outcome> outcomes(requests.size());
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (size_t i = c; i < requests.size(); i += kClients) {
        outcomes[i] = Search(batched->port(), c, token, requests[i]);
      }
    });
  }
  for (std::thread& t : clients) t.join();

  std::set<uint64_t> entries;
  for (size_t i = 0; i < requests.size(); ++i) {
    const std::string what = "request " + std::to_string(i);
    ASSERT_TRUE(outcomes[i].status.ok()) << what << ": " << outcomes[i].status;
    const Outcome expected = Search(plain->port(), 0, token, requests[i]);
    ASSERT_TRUE(expected.status.ok()) << expected.status;
    ExpectSameAnswer(outcomes[i].response, expected.response, what);

    const uint64_t index = outcomes[i].response.receipt().entry_index();
    EXPECT_TRUE(entries.insert(index).second) << what << " shares ledger entry " << index;
    const v1::LedgerEntry entry = Entry(batched->port(), index);
    EXPECT_EQ(entry.kind(), v1::ENTRY_KIND_SEARCH) << what;
    EXPECT_EQ(entry.outcome(), v1::OUTCOME_ANSWERED) << what;
    EXPECT_EQ(entry.query_count(), static_cast<uint32_t>(requests[i].queries_size())) << what;
    ASSERT_EQ(entry.queries_size(), outcomes[i].response.results_size()) << what;
    for (int q = 0; q < entry.queries_size(); ++q) {
      ASSERT_EQ(entry.queries(q).candidates_size(),
                outcomes[i].response.results(q).candidates_size())
          << what;
      for (int r = 0; r < entry.queries(q).candidates_size(); ++r) {
        EXPECT_EQ(entry.queries(q).candidates(r).id(),
                  outcomes[i].response.results(q).candidates(r).id())
            << what;
      }
    }
  }

  // Every request was charged: the budget is spent to the last query.
  const Outcome over = Search(batched->port(), 0, token, Request(0, 1, 5, 4, std::nullopt));
  EXPECT_EQ(over.status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(absl::StartsWith(over.status.message(), "budget_exhausted:")) << over.status;

  const v1::StatsResponse stats = Stats(batched->port());
  EXPECT_EQ(stats.searches_answered(), requests.size());
  // FAISS calls plus requests answered from shared calls cover every shard search; a shared
  // call counts once in the first and once per request in the second.
  EXPECT_GE(stats.shard_searches_run() + stats.shard_searches_coalesced(), 3 * requests.size());
  // Without batching, one FAISS call per request and shard, none shared.
  const v1::StatsResponse plain_stats = Stats(plain->port());
  EXPECT_EQ(plain_stats.shard_searches_run(), 3 * requests.size());
  EXPECT_EQ(plain_stats.shard_searches_coalesced(), 0u);
}

// kFillClients single-query clients released together against `server`; each answer must
// equal `plain`'s.
constexpr int kFillClients = 8;

void ReleaseClientsTogether(TestWorld& world, Server& server, Server& plain,
                            const std::vector<v1::SearchRequest>& requests) {
  const std::string token = Issue(world, GoodClaims());
  std::vector<Outcome> outcomes(requests.size());
  std::barrier start(static_cast<std::ptrdiff_t>(requests.size()));
  std::vector<std::thread> clients;
  for (size_t c = 0; c < requests.size(); ++c) {
    clients.emplace_back([&, c] {
      const client::SearchClient search(NewChannel(server.port(), static_cast<int>(c)));
      start.arrive_and_wait();
      outcomes[c] = Search(search, token, requests[c]);
    });
  }
  for (std::thread& t : clients) t.join();
  for (size_t c = 0; c < requests.size(); ++c) {
    ASSERT_TRUE(outcomes[c].status.ok()) << outcomes[c].status;
    const Outcome expected = Search(plain.port(), 0, token, requests[c]);
    ASSERT_TRUE(expected.status.ok()) << expected.status;
    ExpectSameAnswer(outcomes[c].response, expected.response, "client " + std::to_string(c));
  }
}

TEST_F(BatchingServiceTest, ConcurrentSearchesOfAShardShareFaissCalls) {
  // A batch waits (up to a second) until 8 queries are there: the 8 clients released together
  // fill it, so each shard answers them with fewer calls than requests.
  auto plain = Start(false, 256, 0);
  auto batched = Start(true, kFillClients, 1'000'000);
  ASSERT_TRUE(plain && batched);
  std::vector<v1::SearchRequest> requests;
  for (int c = 0; c < kFillClients; ++c) {
    requests.push_back(Request(c * 50, 1, 3 + c, 4, std::nullopt));
  }
  const absl::Time started = absl::Now();
  ReleaseClientsTogether(*world_, *batched, *plain, requests);
  const absl::Duration elapsed = absl::Now() - started;
  const v1::StatsResponse stats = Stats(batched->port());
  EXPECT_GT(stats.shard_searches_coalesced(), 0u);
  EXPECT_LT(stats.shard_searches_run(), 3u * kFillClients);
  EXPECT_EQ(batched->counters().shards.searches_run.load(), stats.shard_searches_run());
  // The time inside those FAISS calls: some, and in microseconds, at most the 3 shards
  // searching side by side for the whole run.
  EXPECT_GT(stats.shard_search_micros(), 0u);
  EXPECT_LE(stats.shard_search_micros(), 3 * absl::ToInt64Microseconds(elapsed));
  EXPECT_EQ(batched->counters().shards.search_micros.load(), stats.shard_search_micros());
  // Each request's wait in the shard phase (it waited for its batch to fill) and its ledger
  // append: some, and at most every client waiting for the whole run.
  const int64_t most = kFillClients * absl::ToInt64Microseconds(elapsed);
  EXPECT_GT(stats.search_shard_phase_micros(), 0u);
  EXPECT_LE(stats.search_shard_phase_micros(), most);
  EXPECT_GT(stats.search_ledger_append_micros(), 0u);
  EXPECT_LE(stats.search_ledger_append_micros(), most);
}

TEST_F(BatchingServiceTest, ShutdownLeavesNoSearchWaitingInABatch) {
  // Every shard's first search waits up to a second for a batch to fill; the server shuts
  // down (no drain) while all of them wait. Every client must get a status and Wait() return:
  // the searches run on their own handler threads, nothing waits for a thread that is gone.
  auto batched = Start(true, 256, 1'000'000);
  ASSERT_TRUE(batched);
  const std::string token = Issue(*world_, GoodClaims());
  constexpr int kClients = 4;
  std::vector<Outcome> outcomes(kClients);
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      outcomes[c] = Search(batched->port(), c, token, Request(c * 10, 1, 5, 4, std::nullopt));
    });
  }
  while (batched->counters().in_flight.load() < kClients) std::this_thread::yield();
  batched->Shutdown(absl::ZeroDuration());
  batched->Wait();
  for (std::thread& t : clients) t.join();
  for (const Outcome& outcome : outcomes) {
    EXPECT_TRUE(outcome.status.ok() || outcome.status.code() == absl::StatusCode::kCancelled ||
                outcome.status.code() == absl::StatusCode::kUnavailable)
        << outcome.status;
  }
  EXPECT_EQ(batched->counters().in_flight.load(), 0);
}

TEST_F(BatchingServiceTest, AShardServerBatchesTheRoutersSearches) {
  auto plain = Start(false, 256, 0);
  ASSERT_TRUE(plain);
  ServerConfig shard_config = world_->config;
  shard_config.state_dir = "batching-shard-state";
  shard_config.batching = BatchingConfig{true, kFillClients, 1'000'000};
  auto shard = Server::StartShard(shard_config);
  ASSERT_TRUE(shard.ok()) << shard.status();
  ServerConfig router_config = world_->config;
  router_config.collections.clear();
  router_config.shard_servers = {"127.0.0.1:" + std::to_string((*shard)->port())};
  router_config.ledger.dir = "batching-router-ledger";
  router_config.state_dir = "batching-router-state";
  auto router = Server::StartRouter(router_config);
  ASSERT_TRUE(router.ok()) << router.status();

  std::vector<v1::SearchRequest> requests;
  for (int c = 0; c < kFillClients; ++c) {
    std::optional<float> min_score;
    if (c % 2) min_score = 0.8f;
    requests.push_back(Request(c * 60 + 7, 1, 2 + 2 * c, 4, min_score));
  }
  ReleaseClientsTogether(*world_, **router, *plain, requests);
  const ShardCounters& shards = (*shard)->counters().shards;
  EXPECT_GT(shards.searches_coalesced.load(), 0u);
  EXPECT_LT(shards.searches_run.load(), 3u * kFillClients);
}

}  // namespace
}  // namespace probity::service::testing
