// `probity query` against a fake Search service whose search fails with a SearchFailure: the
// command exits non-zero and prints the code, the ledger entry and which shard did not answer,
// read from the structured detail the client library keeps.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/loopback_grpc_server.h"
#include "common/scoped_temp_dir.h"
#include "probity/common/file_read.h"
#include "probity/v1/search.grpc.pb.h"

namespace probity::client {
namespace {

class ShardDownSearch final : public v1::Search::Service {
 public:
  grpc::Status Search(grpc::ServerContext* context, const v1::SearchRequest*,
                      v1::SearchResponse*) override {
    v1::SearchFailure failure;
    failure.mutable_coverage()->set_shards_answered(1);
    failure.mutable_coverage()->set_shards_total(2);
    failure.mutable_coverage()->set_partial(true);
    v1::ShardFailure* shard = failure.mutable_coverage()->add_failures();
    shard->set_shard(1);
    shard->set_code("UNAVAILABLE");
    shard->add_servers("shard-b:7444");
    shard->set_message("connection refused");
    failure.set_ledger_entry_index(17);
    v1::SearchStatus details;
    details.set_code(grpc::StatusCode::UNAVAILABLE);
    details.set_message("1 of 2 shards did not answer");
    details.add_details()->PackFrom(failure);
    context->AddTrailingMetadata("probity-ledger-index", "17");
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "1 of 2 shards did not answer",
                        details.SerializeAsString());
  }
};

TEST(QueryCliTest, AFailedSearchPrintsItsLedgerEntryAndTheShardsThatDidNotAnswer) {
  ShardDownSearch service;
  const test_support::LoopbackGrpcServer server = test_support::StartLoopbackGrpcServer(&service);
  ASSERT_NE(server.server, nullptr);

  test_support::ScopedTempDir dir;
  std::ofstream(dir.path() / "warrant.jwt") << "a.b.c\n";
  {
    // One 2-dimensional query in .fvecs: the dimension as int32, then the floats.
    std::ofstream fvecs(dir.path() / "probe.fvecs", std::ios::binary);
    const int32_t dim = 2;
    const float values[2] = {1.0f, 0.0f};
    fvecs.write(reinterpret_cast<const char*>(&dim), sizeof dim);
    fvecs.write(reinterpret_cast<const char*>(values), sizeof values);
  }
  const std::filesystem::path probity =
      std::filesystem::path(PROBITY_TEST_BINARY_DIR) / "server" / "cli" / "probity";
  const std::string command = probity.string() + " query --server " + server.address() +
                              " --warrant " + (dir.path() / "warrant.jwt").string() +
                              " --embedding " + (dir.path() / "probe.fvecs").string() + " > " +
                              (dir.path() / "query.out").string() + " 2>&1";
  EXPECT_NE(std::system(command.c_str()), 0);
  const std::string printed = common::ReadFileToString(dir.path() / "query.out").value_or("");
  EXPECT_NE(printed.find("search refused or failed (14): 1 of 2 shards did not answer "
                         "[ledger entry 17]"),
            std::string::npos)
      << printed;
  EXPECT_NE(printed.find("coverage: 1/2 shards answered"), std::string::npos) << printed;
  EXPECT_NE(printed.find("shard 1: UNAVAILABLE (shard-b:7444): connection refused"),
            std::string::npos)
      << printed;
  server.server->Shutdown();
}

}  // namespace
}  // namespace probity::client
