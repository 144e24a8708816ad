// SearchClient against a fake Search service on loopback: the warrant travels as bearer
// metadata with the deadline asked for, an answer comes back as the response, and a failure as
// an absl::Status with the server's code, message, SearchFailure and ledger entry.
#include "probity/client/search_client.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "absl/synchronization/mutex.h"
#include "probity/client/call_status.h"

namespace probity::client {
namespace {

// Answers collection "answer", fails collection "fail" the way the service fails a search
// whose shards are down (SearchStatus details, ledger trailer), refuses anything else without
// details; remembers what the last call carried.
class FakeSearch final : public v1::Search::Service {
 public:
  grpc::Status Search(grpc::ServerContext* context, const v1::SearchRequest* request,
                      v1::SearchResponse* response) override {
    {
      absl::MutexLock lock(&mutex_);
      const auto& metadata = context->client_metadata();
      auto it = metadata.find("authorization");
      authorization_ =
          it == metadata.end()
              ? std::nullopt
              : std::optional<std::string>(std::string(it->second.data(), it->second.size()));
      deadline_set_ = context->deadline() != std::chrono::system_clock::time_point::max();
    }
    if (request->collection() == "answer") {
      response->set_index_generation("7");
      response->mutable_receipt()->set_entry_index(41);
      return grpc::Status::OK;
    }
    context->AddTrailingMetadata("probity-ledger-index", "42");
    if (request->collection() != "fail") {
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "warrant does not cover it");
    }
    v1::SearchFailure failure;
    failure.mutable_coverage()->set_shards_answered(1);
    failure.mutable_coverage()->set_shards_total(2);
    failure.mutable_coverage()->set_partial(true);
    v1::ShardFailure* shard = failure.mutable_coverage()->add_failures();
    shard->set_shard(1);
    shard->set_code("UNAVAILABLE");
    shard->add_servers("down-a");
    failure.set_ledger_entry_index(42);
    v1::SearchStatus details;
    details.set_code(grpc::StatusCode::UNAVAILABLE);
    details.set_message("shard 1 did not answer");
    details.add_details()->PackFrom(failure);
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "shard 1 did not answer",
                        details.SerializeAsString());
  }

  std::optional<std::string> authorization() {
    absl::MutexLock lock(&mutex_);
    return authorization_;
  }
  bool deadline_set() {
    absl::MutexLock lock(&mutex_);
    return deadline_set_;
  }

 private:
  absl::Mutex mutex_;
  std::optional<std::string> authorization_ ABSL_GUARDED_BY(mutex_);
  bool deadline_set_ ABSL_GUARDED_BY(mutex_) = false;
};

class SearchClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  SearchClient Client() {
    auto client = SearchClient::Connect("127.0.0.1:" + std::to_string(port_), TlsFiles{});
    EXPECT_TRUE(client.ok()) << client.status();
    return *client;
  }

  static v1::SearchRequest Request(const std::string& collection) {
    v1::SearchRequest request;
    request.set_collection(collection);
    request.set_k(1);
    request.add_queries()->add_values(1.0f);
    return request;
  }

  FakeSearch service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(SearchClientTest, SendsTheWarrantAsBearerAndReturnsTheAnswer) {
  auto response = Client().Search(Request("answer"), "header.claims.signature", absl::Seconds(30));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->index_generation(), "7");
  EXPECT_EQ(response->receipt().entry_index(), 41u);
  EXPECT_EQ(service_.authorization(), "Bearer header.claims.signature");
  EXPECT_TRUE(service_.deadline_set());
}

TEST_F(SearchClientTest, NoTimeoutMeansNoDeadline) {
  ASSERT_TRUE(Client().Search(Request("answer"), "token").ok());
  EXPECT_FALSE(service_.deadline_set());
}

TEST_F(SearchClientTest, AnEmptyWarrantSendsNoAuthorization) {
  ASSERT_TRUE(Client().Search(Request("answer"), "").ok());
  EXPECT_EQ(service_.authorization(), std::nullopt);
}

TEST_F(SearchClientTest, AFailedSearchCarriesItsCodeMessageFailureAndLedgerEntry) {
  auto response = Client().Search(Request("fail"), "token", absl::Seconds(30));
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(response.status().message(), "shard 1 did not answer");
  EXPECT_EQ(LedgerEntryOf(response.status()), 42u);
  auto failure = FailureOf(response.status());
  ASSERT_TRUE(failure.ok()) << failure.status();
  EXPECT_EQ(failure->ledger_entry_index(), 42u);
  EXPECT_EQ(failure->coverage().shards_answered(), 1u);
  EXPECT_EQ(failure->coverage().shards_total(), 2u);
  ASSERT_EQ(failure->coverage().failures_size(), 1);
  EXPECT_EQ(failure->coverage().failures(0).shard(), 1u);
  EXPECT_EQ(failure->coverage().failures(0).servers(0), "down-a");
}

TEST_F(SearchClientTest, ARefusalHasALedgerEntryButNoSearchFailure) {
  auto response = Client().Search(Request("other"), "token");
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(LedgerEntryOf(response.status()), 42u);
  EXPECT_EQ(FailureOf(response.status()).status().code(), absl::StatusCode::kNotFound);
}

TEST(SearchClientUnreachableTest, AnUnreachableServerIsUnavailableWithoutDetails) {
  // Port 1 on loopback: nothing listens there. Connect waits its kConnectWait for a connection
  // that never comes, and the call then fails at once with gRPC's reason.
  auto client = SearchClient::Connect("127.0.0.1:1", TlsFiles{});
  ASSERT_TRUE(client.ok()) << client.status();
  auto response = client->Search(v1::SearchRequest(), "token", absl::Seconds(30));
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(FailureOf(response.status()).ok());
  EXPECT_EQ(LedgerEntryOf(response.status()), std::nullopt);
}

}  // namespace
}  // namespace probity::client
