// Every RPC passes the CallGate: each method of each probity.v1 service is in the access
// policy, a caller of the wrong role is refused before the handler runs, a method the policy
// does not name is refused, and refused operator/auditor calls are REFUSAL entries (bounded per
// caller).
#include "probity/service/call_gate.h"

#include <google/protobuf/descriptor.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>

#include "probity/common/sha256.h"
#include "probity/service/access_policy.h"
#include "probity/service/auth.h"
#include "probity/service/server.h"
#include "probity/v1/admin.grpc.pb.h"
#include "probity/v1/ledger_entry.pb.h"
#include "probity/v1/ledger_service.grpc.pb.h"
#include "test_support.h"

namespace probity::service::testing {
namespace {

constexpr char kRouterToken[] = "router-secret-token";

// Every method ("/probity.v1.Admin/Erase") of every service in proto/probity/v1, as the
// descriptor pool of this binary knows them.
std::vector<std::string> ProbityMethods() {
  std::vector<std::string> methods;
  const auto proto_dir = SourceDir() / "proto" / "probity" / "v1";
  EXPECT_TRUE(std::filesystem::is_directory(proto_dir)) << proto_dir;
  for (const auto& file : std::filesystem::directory_iterator(proto_dir)) {
    if (file.path().extension() != ".proto") continue;
    const std::string name = "probity/v1/" + file.path().filename().string();
    const google::protobuf::FileDescriptor* descriptor =
        google::protobuf::DescriptorPool::generated_pool()->FindFileByName(name);
    EXPECT_NE(descriptor, nullptr) << name << " is not linked into the service";
    if (descriptor == nullptr) continue;
    for (int s = 0; s < descriptor->service_count(); ++s) {
      const google::protobuf::ServiceDescriptor* service = descriptor->service(s);
      for (int m = 0; m < service->method_count(); ++m) {
        methods.push_back("/" + std::string(service->full_name()) + "/" +
                          std::string(service->method(m)->name()));
      }
    }
  }
  return methods;
}

struct CallResult {
  grpc::StatusCode code;
  std::string message;
  std::optional<uint64_t> ledger_index;
};

// Calls `method` with one empty message (a default request) and `token`, through gRPC's
// generic API so that every method is called the same way.
CallResult CallWithEmptyRequest(const std::string& address, const std::string& method,
                                const std::string& token) {
  grpc::GenericStub stub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  grpc::CompletionQueue queue;
  grpc::Slice empty("");
  const grpc::ByteBuffer request(&empty, 1);
  auto call = stub.PrepareUnaryCall(&context, method, request, &queue);
  call->StartCall();
  grpc::ByteBuffer response;
  grpc::Status status;
  call->Finish(&response, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  EXPECT_TRUE(queue.Next(&tag, &ok));
  CallResult result{status.error_code(), status.error_message(), std::nullopt};
  const auto& trailers = context.GetServerTrailingMetadata();
  if (auto it = trailers.find(kLedgerIndexTrailer); it != trailers.end()) {
    result.ledger_index = std::stoull(std::string(it->second.data(), it->second.size()));
  }
  queue.Shutdown();
  while (queue.Next(&tag, &ok)) {
  }
  return result;
}

TEST(AccessPolicyTest, NamesARoleForEveryMethodOfEveryProbityService) {
  const std::vector<std::string> methods = ProbityMethods();
  EXPECT_GE(methods.size(), 14u);
  for (const std::string& method : methods) {
    EXPECT_TRUE(RequiredRole(method).has_value()) << method << " is not in the access policy";
  }
  EXPECT_EQ(RequiredRole("/probity.v1.Admin/Erase"), CallerRole::kOperator);
  EXPECT_EQ(RequiredRole("/probity.v1.Ledger/GetEntries"), CallerRole::kAuditor);
  EXPECT_EQ(RequiredRole("/probity.v1.Shard/SearchShard"), CallerRole::kRouter);
  EXPECT_EQ(RequiredRole("/probity.v1.Search/Search"), CallerRole::kWarrant);
  EXPECT_EQ(RequiredRole("/grpc.health.v1.Health/Check"), CallerRole::kOpen);
}

TEST(CallGateTest, RefusesAMethodThePolicyDoesNotName) {
  CallGate gate({{{"op", common::Sha256Hex(kOperatorToken), ""}}, {}, std::nullopt}, nullptr);
  grpc::ServerContext context;
  const auto admitted = gate.Admit("/probity.v1.Admin/DropEverything", context);
  EXPECT_EQ(admitted.status().code(), absl::StatusCode::kPermissionDenied);
  // Open methods need nothing.
  EXPECT_TRUE(gate.Admit("/grpc.health.v1.Health/Check", context).ok());
}

class CallGateServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    world_ = MakeWorld(2);
    auto router = Server::StartRouter(world_->config);
    ASSERT_TRUE(router.ok()) << router.status();
    router_ = std::move(*router);
    ServerConfig shard_config = world_->config;
    shard_config.state_dir = "shard-state";
    shard_config.routers = {{"test-router", common::Sha256Hex(kRouterToken), ""}};
    auto shard = Server::StartShard(shard_config);
    ASSERT_TRUE(shard.ok()) << shard.status();
    shard_ = std::move(*shard);
  }

  std::string RouterAddress() const { return "127.0.0.1:" + std::to_string(router_->port()); }
  std::string ShardAddress() const { return "127.0.0.1:" + std::to_string(shard_->port()); }

  uint64_t LedgerSize() {
    auto admin = v1::Admin::NewStub(
        grpc::CreateChannel(RouterAddress(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.AddMetadata("authorization", std::string("Bearer ") + kOperatorToken);
    v1::StatsResponse stats;
    EXPECT_TRUE(admin->Stats(&context, v1::StatsRequest(), &stats).ok());
    return stats.ledger_size();
  }

  v1::LedgerEntry Entry(uint64_t index) {
    auto ledger = v1::Ledger::NewStub(
        grpc::CreateChannel(RouterAddress(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.AddMetadata("authorization", std::string("Bearer ") + kAuditorToken);
    v1::GetEntriesRequest request;
    request.set_start(index);
    request.set_count(1);
    v1::GetEntriesResponse response;
    EXPECT_TRUE(ledger->GetEntries(&context, request, &response).ok());
    v1::LedgerEntry entry;
    if (response.entries_size() == 1) entry.ParseFromString(response.entries(0).entry());
    return entry;
  }

  std::unique_ptr<TestWorld> world_;
  std::unique_ptr<Server> router_;
  std::unique_ptr<Server> shard_;
};

TEST_F(CallGateServerTest, EveryMethodRefusesTheWrongRoleAndAdmitsTheRightOne) {
  const std::string warrant = Issue(*world_, GoodClaims());
  auto refused = [](grpc::StatusCode code) {
    return code == grpc::StatusCode::PERMISSION_DENIED || code == grpc::StatusCode::UNAUTHENTICATED;
  };
  for (const std::string& method : ProbityMethods()) {
    SCOPED_TRACE(method);
    const std::optional<CallerRole> role = RequiredRole(method);
    ASSERT_TRUE(role.has_value());
    std::vector<std::string> wrong, right;
    std::string address = RouterAddress();
    switch (*role) {
      case CallerRole::kOperator:
        wrong = {"", kAuditorToken, warrant, kRouterToken};
        right = {kOperatorToken};
        break;
      case CallerRole::kAuditor:
        wrong = {"", kOperatorToken, warrant, kRouterToken};
        right = {kAuditorToken};
        break;
      case CallerRole::kRouter:
        address = ShardAddress();
        wrong = {"", kOperatorToken, kAuditorToken, warrant};
        right = {kRouterToken};
        break;
      case CallerRole::kWarrant:
        // The Search service refuses anything but a warrant itself (and records it).
        wrong = {"", kOperatorToken, kAuditorToken, kRouterToken};
        right = {warrant};
        break;
      case CallerRole::kOpen:
        ADD_FAILURE() << "a probity.v1 method open to anyone";
        continue;
    }
    for (const std::string& token : wrong) {
      const CallResult result = CallWithEmptyRequest(address, method, token);
      EXPECT_TRUE(refused(result.code))
          << "credential '" << token.substr(0, 12) << "': " << result.code << " " << result.message;
    }
    for (const std::string& token : right) {
      const CallResult result = CallWithEmptyRequest(address, method, token);
      EXPECT_FALSE(refused(result.code)) << result.code << " " << result.message;
    }
  }
}

TEST_F(CallGateServerTest, RefusedCallsAreRecordedAndBoundedPerCaller) {
  const CallResult first =
      CallWithEmptyRequest(RouterAddress(), "/probity.v1.Ledger/GetCheckpoint", kOperatorToken);
  ASSERT_EQ(first.code, grpc::StatusCode::PERMISSION_DENIED) << first.message;
  ASSERT_TRUE(first.ledger_index.has_value());
  const v1::LedgerEntry entry = Entry(*first.ledger_index);
  EXPECT_EQ(entry.kind(), v1::ENTRY_KIND_REFUSAL);
  EXPECT_EQ(entry.outcome(), v1::OUTCOME_REFUSED);
  EXPECT_EQ(entry.refusal().code(), "caller_not_permitted");
  EXPECT_NE(entry.refusal().message().find("/probity.v1.Ledger/GetCheckpoint"), std::string::npos)
      << entry.refusal().message();

  // One caller cannot grow the ledger without bound: past its limit, refusals are not entries.
  const uint64_t size_before = LedgerSize();
  for (int i = 0; i < 2 * CallGate::kRefusalsPerCallerPerWindow; ++i) {
    const CallResult result = CallWithEmptyRequest(RouterAddress(), "/probity.v1.Admin/Erase", "");
    EXPECT_EQ(result.code, grpc::StatusCode::UNAUTHENTICATED) << result.message;
  }
  EXPECT_EQ(LedgerSize(), size_before + CallGate::kRefusalsPerCallerPerWindow - 1);
}

}  // namespace
}  // namespace probity::service::testing
