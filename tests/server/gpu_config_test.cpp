// The "gpu" section of the server config, and the refusal to start a server whose GPU config
// this build or machine cannot honour (it must not quietly serve from the CPU).
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "probity/index/gpu.h"
#include "probity/service/config.h"
#include "probity/service/server.h"

namespace probity::service {
namespace {

TEST(GpuConfigTest, ParsesEveryKeyAndRoundTrips) {
  auto config = ParseConfig(
      R"({"gpu": {"devices": [0, 1], "float16_lookup_tables": false, "ids": "cpu",
                  "temp_memory_mb": 512, "copies_per_shard": 3, "host_wait": "block"}})",
      "/data");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(config->gpu.has_value());
  EXPECT_EQ(config->gpu->devices, (std::vector<int>{0, 1}));
  EXPECT_FALSE(config->gpu->float16_lookup_tables);
  EXPECT_EQ(config->gpu->ids, index::GpuIdPlacement::kCpu);
  EXPECT_EQ(config->gpu->temp_memory_mb, 512);
  EXPECT_EQ(config->gpu->copies_per_shard, 3);
  EXPECT_EQ(config->gpu->host_wait, index::GpuHostWait::kBlock);
  auto again = ParseConfig(ConfigToJson(*config), "/data");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(ConfigToJson(*again), ConfigToJson(*config));
}

TEST(GpuConfigTest, DefaultsAreFloat16TablesIdsOnTheGpuAndFaissTempMemory) {
  auto config = ParseConfig(R"({"gpu": {"devices": [0]}})", "/data");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->gpu->float16_lookup_tables);
  EXPECT_EQ(config->gpu->ids, index::GpuIdPlacement::kGpu);
  EXPECT_EQ(config->gpu->temp_memory_mb, -1);
  EXPECT_EQ(config->gpu->copies_per_shard, 1);
  EXPECT_EQ(config->gpu->host_wait, index::GpuHostWait::kAuto);  // CUDA's own choice
  auto cpu = ParseConfig("{}", "/data");
  ASSERT_TRUE(cpu.ok());
  EXPECT_FALSE(cpu->gpu.has_value());  // CPU-only stays the default
}

// Every copy of a GPU shard can take a call of its own: the batcher lets that many run at once.
TEST(GpuConfigTest, TheBatcherRunsAsManyCallsOfAShardAsItHasGpuCopies) {
  auto config = ParseConfig(
      R"({"batching": {"max_batch_queries": 64, "max_wait_us": 200, "next_call_first": true},
          "gpu": {"devices": [0], "copies_per_shard": 2}})",
      "/data");
  ASSERT_TRUE(config.ok()) << config.status();
  BatchingOptions options = BatchingOptionsFor(*config);
  EXPECT_EQ(options.calls_in_flight, 2);
  EXPECT_EQ(options.max_batch_queries, 64);
  EXPECT_EQ(options.max_wait, absl::Microseconds(200));
  EXPECT_TRUE(options.next_call_first);
  EXPECT_FALSE(options.direct_wakeups);
  config->gpu.reset();  // CPU shards: one call at a time
  EXPECT_EQ(BatchingOptionsFor(*config).calls_in_flight, 1);
}

TEST(GpuConfigTest, RefusesBadGpuSections) {
  EXPECT_FALSE(ParseConfig(R"({"gpu": {"devices": [0], "ids": "host"}})", "/").ok());
  EXPECT_FALSE(ParseConfig(R"({"gpu": {"float16_lookup_tables": true}})", "/").ok());
  auto bad_wait = ParseConfig(R"({"gpu": {"devices": [0], "host_wait": "sleep"}})", "/");
  ASSERT_FALSE(bad_wait.ok());
  EXPECT_NE(bad_wait.status().message().find("gpu.host_wait"), absl::string_view::npos)
      << bad_wait.status();
  auto duplicate = ParseConfig(R"({"gpu": {"devices": [1, 1]}, "plaintext": true})", "/");
  ASSERT_TRUE(duplicate.ok());
  EXPECT_FALSE(ValidateConfig(*duplicate).ok());
  for (const char* copies : {"0", "17", "-1"}) {
    auto bad = ParseConfig(absl::StrCat(R"({"plaintext": true, "gpu": {"devices": [0], )",
                                        R"("copies_per_shard": )", copies, "}}"),
                           "/");
    ASSERT_TRUE(bad.ok()) << bad.status();
    const absl::Status status = ValidateConfig(*bad);
    EXPECT_FALSE(status.ok()) << copies;
    EXPECT_NE(status.message().find("copies_per_shard"), absl::string_view::npos) << status;
  }
}

TEST(GpuConfigTest, AServerConfiguredForGpusItCannotUseRefusesToStart) {
  if (index::GpuBuild() && index::GpuDeviceCount() > 0) {
    GTEST_SKIP() << "this build has GPU support and this machine has a GPU";
  }
  ServerConfig config;
  config.data_dir = ::testing::TempDir();
  config.listen = "127.0.0.1:0";
  config.plaintext = true;
  config.gpu = index::GpuOptions{};
  config.gpu->devices = {0};
  auto server = Server::StartShard(config);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(server.status().message().find("gpu"), absl::string_view::npos) << server.status();
}

}  // namespace
}  // namespace probity::service
