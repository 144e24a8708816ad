// ReviewClient against a fake ReviewService on loopback: the warrant travels as bearer
// metadata, a recorded review comes back with its receipt, and a refusal with its code and the
// ledger entry that recorded it.
#include "probity/client/review_client.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <string>

#include "common/loopback_grpc_server.h"
#include "probity/client/call_status.h"

namespace probity::client {
namespace {

// Records a review made under "Bearer good", refuses any other (ledger entry 9).
class FakeReview final : public v1::ReviewService::Service {
 public:
  grpc::Status RecordReview(grpc::ServerContext* context, const v1::RecordReviewRequest* request,
                            v1::RecordReviewResponse* response) override {
    auto it = context->client_metadata().find("authorization");
    if (it == context->client_metadata().end() ||
        std::string(it->second.data(), it->second.size()) != "Bearer good") {
      context->AddTrailingMetadata("probity-ledger-index", "9");
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "bad warrant");
    }
    response->mutable_receipt()->set_entry_index(request->search_entry_index() + 1);
    return grpc::Status::OK;
  }
};

TEST(ReviewClientTest, RecordsUnderTheWarrantAndReportsARefusalsLedgerEntry) {
  FakeReview service;
  const test_support::LoopbackGrpcServer server = test_support::StartLoopbackGrpcServer(&service);
  ASSERT_NE(server.server, nullptr);
  auto client = ReviewClient::Connect(server.address(), TlsFiles{});
  ASSERT_TRUE(client.ok()) << client.status();

  v1::RecordReviewRequest request;
  request.set_search_entry_index(4);
  auto recorded = client->RecordReview(request, "good", absl::Seconds(30));
  ASSERT_TRUE(recorded.ok()) << recorded.status();
  EXPECT_EQ(recorded->receipt().entry_index(), 5u);

  auto refused = client->RecordReview(request, "bad", absl::Seconds(30));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(refused.status().message(), "bad warrant");
  EXPECT_EQ(LedgerEntryOf(refused.status()), 9u);
  server.server->Shutdown();
}

}  // namespace
}  // namespace probity::client
