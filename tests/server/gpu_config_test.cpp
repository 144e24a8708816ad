// The "gpu" section of the server config, and the refusal to start a server whose GPU config
// this build or machine cannot honour (it must not quietly serve from the CPU).
#include <gtest/gtest.h>

#include "probity/index/gpu.h"
#include "probity/service/config.h"
#include "probity/service/server.h"

namespace probity::service {
namespace {

TEST(GpuConfigTest, ParsesEveryKeyAndRoundTrips) {
  auto config = ParseConfig(
      R"({"gpu": {"devices": [0, 1], "float16_lookup_tables": false, "ids": "cpu",
                  "temp_memory_mb": 512}})",
      "/data");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(config->gpu.has_value());
  EXPECT_EQ(config->gpu->devices, (std::vector<int>{0, 1}));
  EXPECT_FALSE(config->gpu->float16_lookup_tables);
  EXPECT_EQ(config->gpu->ids, index::GpuIdPlacement::kCpu);
  EXPECT_EQ(config->gpu->temp_memory_mb, 512);
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
  auto cpu = ParseConfig("{}", "/data");
  ASSERT_TRUE(cpu.ok());
  EXPECT_FALSE(cpu->gpu.has_value());  // CPU-only stays the default
}

TEST(GpuConfigTest, RefusesBadGpuSections) {
  EXPECT_FALSE(ParseConfig(R"({"gpu": {"devices": [0], "ids": "host"}})", "/").ok());
  EXPECT_FALSE(ParseConfig(R"({"gpu": {"float16_lookup_tables": true}})", "/").ok());
  auto duplicate = ParseConfig(R"({"gpu": {"devices": [1, 1]}, "plaintext": true})", "/");
  ASSERT_TRUE(duplicate.ok());
  EXPECT_FALSE(ValidateConfig(*duplicate).ok());
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
