// Admin actions are recorded before they act: with a ledger that cannot append, no Admin call
// changes anything (also after a restart), in the embedded server and in router mode; a normal
// action leaves a REQUESTED entry followed by its outcome.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "failing_ledger.h"
#include "probity/client/search_client.h"
#include "probity/common/file_read.h"
#include "probity/service/server.h"
#include "probity/v1/admin.grpc.pb.h"
#include "probity/warrant/issue.h"
#include "test_support.h"

namespace probity::service::testing {
namespace {

class AdminRecordTest : public SharedWorldTest<AdminRecordTest, 3> {
 protected:
  void SetUp() override {
    const int counter = UseOwnLedgerAndState("admin-");
    config_.key_reload_seconds = 3600;  // only Admin.ReloadKeys reloads keys in these tests
    // Each test gets its own JWKS, so that adding a key to it changes no other test.
    config_.jwks_file = "admin-jwks-" + std::to_string(counter) + ".json";
    std::filesystem::copy_file(world_->dir->path() / "jwks.json",
                               world_->dir->path() / config_.jwks_file);
    StartServer();
  }

  // Starts (or restarts) the server on its own ledger; with `failing` its appends can fail.
  void StartServer(bool failing = true) {
    server_.reset();
    ledger_ = nullptr;
    Server::Overrides overrides;
    if (failing) {
      ledger::Options options;
      options.dir = Resolve(config_, config_.ledger.dir);
      options.origin = config_.ledger.origin;
      options.signing_key = Resolve(config_, config_.ledger.signing_key);
      options.fsync = false;
      auto inner = ledger::Ledger::Open(options);
      ASSERT_TRUE(inner.ok()) << inner.status();
      auto ledger = std::make_unique<FailingLedger>(std::move(*inner));
      ledger_ = ledger.get();
      overrides.ledger = std::move(ledger);
    }
    auto server = Server::StartRouter(config_, std::move(overrides));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                       grpc::InsecureChannelCredentials());
    search_ = std::make_unique<client::SearchClient>(channel);
    admin_ = v1::Admin::NewStub(channel);
  }

  std::unique_ptr<grpc::ClientContext> OperatorContext() {
    auto context = std::make_unique<grpc::ClientContext>();
    context->AddMetadata("authorization", std::string("Bearer ") + kOperatorToken);
    return context;
  }

  // The best candidate of query `q` (ids in the generation and their index generation).
  std::pair<int64_t, std::string> Best(int q, const std::string& token = "") {
    v1::SearchRequest request;
    request.set_collection(kCollection);
    request.set_k(10);
    request.set_nprobe(16);
    const int dim = world_->gallery.dim;
    const float* begin = world_->gallery.queries.data() + q * dim;
    request.add_queries()->mutable_values()->Add(begin, begin + dim);
    const absl::StatusOr<v1::SearchResponse> response =
        search_->Search(request, token.empty() ? Issue(*world_, GoodClaims()) : token);
    EXPECT_TRUE(response.ok()) << response.status();
    if (!response.ok() || response->results(0).candidates_size() == 0) return {-1, ""};
    return {response->results(0).candidates(0).id(), response->index_generation()};
  }

  grpc::Status Erase(int64_t id, v1::EraseResponse* response) {
    v1::EraseRequest request;
    request.set_collection(kCollection);
    request.add_ids(id);
    request.set_reason("court order 2026/99");
    return admin_->Erase(OperatorContext().get(), request, response);
  }

  grpc::Status AddQueriesAsVectors(v1::AddVectorsResponse* response) {
    auto context = OperatorContext();
    auto writer = admin_->AddVectors(context.get(), response);
    for (int q = 0; q < 2; ++q) {
      v1::AddVectorsRequest message;
      message.set_collection(kCollection);
      message.set_dim(world_->gallery.dim);
      message.set_reason("new enrolments");
      const float* begin = world_->gallery.queries.data() + q * world_->gallery.dim;
      message.mutable_vectors()->Add(begin, begin + world_->gallery.dim);
      message.add_ids(900000 + q);
      writer->Write(message);
    }
    writer->WritesDone();
    return writer->Finish();
  }

  std::filesystem::path StateDir() const { return Resolve(config_, config_.state_dir); }

  std::unique_ptr<Server> server_;
  FailingLedger* ledger_ = nullptr;
  std::unique_ptr<client::SearchClient> search_;
  std::unique_ptr<v1::Admin::Stub> admin_;
};

TEST_F(AdminRecordTest, EachActionIsARequestEntryFollowedByItsOutcome) {
  const int64_t victim = Best(3).first;
  const uint64_t size_before = ledger_->Size();
  v1::EraseResponse erased;
  grpc::Status status = Erase(victim, &erased);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(ledger_->Size(), size_before + 2);
  const v1::LedgerEntry request = ledger_->Entry(size_before);
  EXPECT_EQ(request.kind(), v1::ENTRY_KIND_ADMIN);
  EXPECT_EQ(request.outcome(), v1::OUTCOME_REQUESTED);
  EXPECT_EQ(request.admin().action(), "erase");
  EXPECT_EQ(request.admin().operator_(), "test-operator");
  EXPECT_EQ(request.admin().reason(), "court order 2026/99");
  ASSERT_EQ(request.admin().ids_size(), 1);
  EXPECT_EQ(request.admin().ids(0), victim);
  EXPECT_EQ(erased.ledger_index(), size_before + 1);
  const v1::LedgerEntry outcome = ledger_->Entry(erased.ledger_index());
  EXPECT_EQ(outcome.outcome(), v1::OUTCOME_APPLIED);
  EXPECT_EQ(outcome.admin().action(), "erase");
  ASSERT_EQ(outcome.admin().ids_size(), 1);
  EXPECT_EQ(outcome.admin().ids(0), victim);
  const auto detail = nlohmann::json::parse(outcome.admin().detail());
  EXPECT_EQ(detail.at("request_entry").get<uint64_t>(), size_before);
  EXPECT_EQ(detail.at("removed").get<int64_t>(), 1);
}

TEST_F(AdminRecordTest, EraseIsNotAppliedWhenTheLedgerCannotRecordIt) {
  const int64_t victim = Best(3).first;
  ASSERT_GE(victim, 0);
  ledger_->fail = true;
  const uint64_t size_before = ledger_->Size();
  v1::EraseResponse erased;
  grpc::Status status = Erase(victim, &erased);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_NE(status.error_message().find("nothing was changed"), std::string::npos);
  EXPECT_EQ(ledger_->Size(), size_before);
  EXPECT_FALSE(std::filesystem::exists(StateDir() / (std::string(kCollection) + ".erased")));
  ledger_->fail = false;
  EXPECT_EQ(Best(3).first, victim);
  StartServer(/*failing=*/false);
  EXPECT_EQ(Best(3).first, victim);
}

TEST_F(AdminRecordTest, AddVectorsIsNotAppliedWhenTheLedgerCannotRecordIt) {
  ledger_->fail = true;
  const uint64_t size_before = ledger_->Size();
  v1::AddVectorsResponse added;
  grpc::Status status = AddQueriesAsVectors(&added);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_EQ(ledger_->Size(), size_before);
  EXPECT_FALSE(std::filesystem::exists(StateDir() / kCollection / "gen-2"));
  ledger_->fail = false;
  EXPECT_NE(Best(0).first, 900000);
  EXPECT_EQ(Best(0).second, "1");
  StartServer(/*failing=*/false);
  EXPECT_NE(Best(0).first, 900000);
  EXPECT_EQ(Best(0).second, "1");
}

// The addition fails after its request entry (the new generation cannot be written): the
// outcome is FAILED and, true to it, the added vectors are not served.
TEST_F(AdminRecordTest, AFailedAdditionIsRecordedAsFailedAndNotServed) {
  // A file where the new generation's directory must go: even root cannot write it.
  std::filesystem::create_directories(StateDir());
  std::ofstream(StateDir() / kCollection) << "not a directory";
  const uint64_t size_before = ledger_->Size();
  v1::AddVectorsResponse added;
  grpc::Status status = AddQueriesAsVectors(&added);
  EXPECT_FALSE(status.ok());
  ASSERT_EQ(ledger_->Size(), size_before + 2);
  EXPECT_EQ(ledger_->Entry(size_before).outcome(), v1::OUTCOME_REQUESTED);
  const v1::LedgerEntry outcome = ledger_->Entry(size_before + 1);
  EXPECT_EQ(outcome.outcome(), v1::OUTCOME_FAILED);
  EXPECT_TRUE(nlohmann::json::parse(outcome.admin().detail()).contains("error"));
  EXPECT_NE(Best(0).first, 900000);
  EXPECT_EQ(Best(0).second, "1");
}

TEST_F(AdminRecordTest, LoadGenerationIsNotAppliedWhenTheLedgerCannotRecordIt) {
  v1::AddVectorsResponse added;
  grpc::Status status = AddQueriesAsVectors(&added);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(Best(0), std::make_pair(int64_t{900000}, std::string("2")));

  ledger_->fail = true;
  v1::LoadGenerationRequest swap;
  swap.set_collection(kCollection);
  swap.set_generation_dir(world_->generation_dir.string());
  swap.set_reason("rollback");
  v1::LoadGenerationResponse swapped;
  status = admin_->LoadGeneration(OperatorContext().get(), swap, &swapped);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  ledger_->fail = false;
  EXPECT_EQ(Best(0), std::make_pair(int64_t{900000}, std::string("2")));
  StartServer(/*failing=*/false);
  EXPECT_EQ(Best(0), std::make_pair(int64_t{900000}, std::string("2")));
}

TEST_F(AdminRecordTest, ReloadKeysLoadsNoKeyWhenTheLedgerCannotRecordIt) {
  // A new issuer key appears in the JWKS; only a reload makes warrants it signs valid.
  auto key = warrant::Ed25519PrivateKey::Generate();
  ASSERT_TRUE(key.ok());
  auto jwk = warrant::PublicJwk(*key, "new-key", kIssuer);
  ASSERT_TRUE(jwk.ok());
  const auto jwks_file = Resolve(config_, config_.jwks_file);
  absl::StatusOr<std::string> jwks = common::ReadFileToString(jwks_file);
  ASSERT_TRUE(jwks.ok()) << jwks.status();
  auto appended = warrant::AppendToJwks(*jwks, *jwk);
  ASSERT_TRUE(appended.ok()) << appended.status();
  std::ofstream(jwks_file, std::ios::trunc) << *appended;
  auto token = warrant::IssueToken(GoodClaims(), *key, "new-key");
  ASSERT_TRUE(token.ok());

  auto reload = [&] {
    v1::ReloadKeysRequest request;
    request.set_reason("new issuer key");
    v1::ReloadKeysResponse response;
    return admin_->ReloadKeys(OperatorContext().get(), request, &response);
  };
  auto search_with_new_key = [&] {
    v1::SearchRequest request;
    request.set_collection(kCollection);
    request.set_k(5);
    request.add_queries()->mutable_values()->Add(
        world_->gallery.queries.begin(), world_->gallery.queries.begin() + world_->gallery.dim);
    return search_->Search(request, *token).status();
  };
  ledger_->fail = true;
  grpc::Status status = reload();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  ledger_->fail = false;
  absl::Status searched = search_with_new_key();
  EXPECT_EQ(searched.code(), absl::StatusCode::kUnauthenticated) << searched;
  EXPECT_TRUE(absl::StartsWith(searched.message(), "unknown_key:")) << searched;
  ASSERT_TRUE(reload().ok());
  searched = search_with_new_key();
  EXPECT_TRUE(searched.ok()) << searched;
}

TEST_F(AdminRecordTest, AnOutcomeThatCannotBeRecordedLeavesTheRequestEntry) {
  const int64_t victim = Best(3).first;
  const uint64_t size_before = ledger_->Size();
  ledger_->appends_left = 1;  // the request entry, not the outcome
  v1::EraseResponse erased;
  grpc::Status status = Erase(victim, &erased);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_NE(status.error_message().find("was applied"), std::string::npos)
      << status.error_message();
  ASSERT_EQ(ledger_->Size(), size_before + 1);
  const v1::LedgerEntry request = ledger_->Entry(size_before);
  EXPECT_EQ(request.outcome(), v1::OUTCOME_REQUESTED);
  EXPECT_EQ(request.admin().ids(0), victim);
  ledger_->fail = false;
  ledger_->appends_left = -1;
  EXPECT_NE(Best(3).first, victim);
}

// Router mode: Erase goes to the shard servers only once its request is in the ledger.
TEST_F(AdminRecordTest, RouterForwardsNoErasureTheLedgerCannotRecord) {
  ServerConfig shard_config = config_;
  shard_config.state_dir = config_.state_dir.string() + "-shard";
  auto shard = Server::StartShard(shard_config);
  ASSERT_TRUE(shard.ok()) << shard.status();
  config_.collections.clear();
  config_.shard_servers = {"127.0.0.1:" + std::to_string((*shard)->port())};
  StartServer();

  const int64_t victim = Best(3).first;
  ASSERT_GE(victim, 0);
  ledger_->fail = true;
  const uint64_t size_before = ledger_->Size();
  v1::EraseResponse erased;
  grpc::Status status = Erase(victim, &erased);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_EQ(ledger_->Size(), size_before);
  EXPECT_FALSE(std::filesystem::exists(Resolve(shard_config, shard_config.state_dir) /
                                       (std::string(kCollection) + ".erased")));
  ledger_->fail = false;
  EXPECT_EQ(Best(3).first, victim);

  // Recorded, it is forwarded and applied: a request entry, then the outcome.
  status = Erase(victim, &erased);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(ledger_->Entry(erased.ledger_index() - 1).outcome(), v1::OUTCOME_REQUESTED);
  EXPECT_EQ(ledger_->Entry(erased.ledger_index()).outcome(), v1::OUTCOME_APPLIED);
  EXPECT_NE(Best(3).first, victim);
}

}  // namespace
}  // namespace probity::service::testing
