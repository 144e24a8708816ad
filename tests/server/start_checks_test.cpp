// A server refuses to start while another local user could read its gallery, its state or
// its private keys, and names the path to fix.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "probity/service/server.h"
#include "test_support.h"

namespace probity::service::testing {
namespace {

namespace fs = std::filesystem;

class StartChecksTest : public SharedWorldTest<StartChecksTest, 2> {
 protected:
  void SetUp() override { UseOwnLedgerAndState("checks-"); }

  // Starts a router and a shard server: both must refuse while `path` has `mode`, naming it,
  // and both start once it is owner-only again.
  void ExpectRefusedWhile(const fs::path& path, mode_t mode, bool shard_reads_it = true) {
    struct stat info {};
    ASSERT_EQ(::stat(path.c_str(), &info), 0) << path;
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    {
      auto router = Server::StartRouter(config_);
      EXPECT_EQ(router.status().code(), absl::StatusCode::kFailedPrecondition) << path;
      EXPECT_NE(router.status().message().find(path.string()), std::string::npos)
          << router.status();
    }
    if (shard_reads_it) {
      auto shard = Server::StartShard(config_);
      EXPECT_EQ(shard.status().code(), absl::StatusCode::kFailedPrecondition) << path;
    }
    ASSERT_EQ(::chmod(path.c_str(), info.st_mode & 07777), 0);
    auto started = Server::StartRouter(config_);
    EXPECT_TRUE(started.ok()) << started.status();
  }
};

TEST_F(StartChecksTest, StartsWithOwnerOnlyFilesAndCreatesTheStateDirOwnerOnly) {
  auto server = Server::StartRouter(config_);
  ASSERT_TRUE(server.ok()) << server.status();
  struct stat info {};
  ASSERT_EQ(::stat(Resolve(config_, config_.state_dir).c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0700u);
}

TEST_F(StartChecksTest, RefusesAGenerationDirOthersCanEnter) {
  ExpectRefusedWhile(world_->generation_dir, 0755);
}

TEST_F(StartChecksTest, RefusesAShardFileOthersCanRead) {
  ExpectRefusedWhile(world_->generation_dir / "shard-0001.faissindex", 0644);
}

TEST_F(StartChecksTest, RefusesAStateDirOthersCanEnter) {
  const fs::path state = Resolve(config_, config_.state_dir);
  ASSERT_TRUE(Server::StartRouter(config_).ok());  // creates it
  ExpectRefusedWhile(state, 0750);
}

TEST_F(StartChecksTest, RefusesALedgerKeyOthersCanRead) {
  ExpectRefusedWhile(Resolve(config_, config_.ledger.signing_key), 0640,
                     /*shard_reads_it=*/false);
}

}  // namespace
}  // namespace probity::service::testing
