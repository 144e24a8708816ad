// probity plan's arithmetic: what every shard repeats, how many shards fit the GPUs, and how
// the measured rates scale.
#include "probity/index/capacity_plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "probity/index/gpu.h"

namespace probity::index {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

PlanRequest ThreeBillion() {
  PlanRequest request;
  request.vectors = 3'000'000'000;
  request.dim = 512;
  request.factory = "IVF1048576_HNSW32,PQ64";
  request.gpu_memory_gib = 80;
  request.gpus_per_server = 8;
  request.host_ram_gib_per_server = 1024;
  return request;
}

TEST(CapacityPlanTest, EveryShardRepeatsTheCoarseQuantizer) {
  auto plan = PlanCapacity(ThreeBillion());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->nlist, 1048576);
  EXPECT_EQ(plan->hnsw_m, 32);
  EXPECT_EQ(plan->code_size, 64);
  EXPECT_EQ(plan->coarse_quantizer_bytes, int64_t{2} << 30);  // 1048576 x 512 x 4 = 2 GiB
  EXPECT_GT(plan->gpu_fixed_bytes_per_shard, plan->coarse_quantizer_bytes);
  EXPECT_GT(plan->host_fixed_bytes_per_shard, plan->coarse_quantizer_bytes);
  EXPECT_GT(plan->shard_file_bytes -
                static_cast<int64_t>(plan->disk_bytes_per_vector * plan->vectors_per_shard),
            plan->coarse_quantizer_bytes);
  EXPECT_EQ(plan->disk_bytes, plan->shard_file_bytes * plan->shards);
}

TEST(CapacityPlanTest, ShardsAreTheFewestThatFitTheGpus) {
  const PlanRequest request = ThreeBillion();
  auto plan = PlanCapacity(request);
  ASSERT_TRUE(plan.ok());
  EXPECT_DOUBLE_EQ(plan->gpu_bytes_per_vector,
                   64 + 8 + plan_measurements::kGpuOverheadBytesPerVector);
  const double per_shard_capacity = plan->usable_gpu_bytes / plan->gpu_bytes_per_vector;
  EXPECT_LE(plan->vectors_per_shard, per_shard_capacity);
  EXPECT_GE(int64_t{plan->shards} * plan->vectors_per_shard, request.vectors);
  EXPECT_LT((plan->shards - 1) * per_shard_capacity, request.vectors) << "one shard fewer fits";
  EXPECT_EQ(plan->gpus, plan->shards);
  EXPECT_EQ(plan->servers, (plan->gpus + 7) / 8);
  const int64_t gpu_bytes = int64_t{80} << 30;
  const int64_t expected_usable =
      static_cast<int64_t>(
          (gpu_bytes - GpuTempMemoryBytes(GpuOptions{}, gpu_bytes) - kGpuReservePerDevice) * 0.9) -
      plan->gpu_fixed_bytes_per_shard;
  EXPECT_EQ(plan->usable_gpu_bytes, expected_usable);

  PlanRequest smaller = request;
  smaller.gpu_memory_gib = 40;
  auto more = PlanCapacity(smaller);
  ASSERT_TRUE(more.ok());
  EXPECT_GT(more->shards, plan->shards);
}

// As the server's memory check counts it: every copy holds the whole shard and FAISS's scratch
// of its own, the reserve is once per GPU.
TEST(CapacityPlanTest, GpuCopiesOfAShardShareItsGpu) {
  const PlanRequest one_copy = ThreeBillion();
  auto single = PlanCapacity(one_copy);
  ASSERT_TRUE(single.ok()) << single.status();
  PlanRequest request = one_copy;
  request.gpu_copies_per_shard = 2;
  auto plan = PlanCapacity(request);
  ASSERT_TRUE(plan.ok()) << plan.status();
  const int64_t gpu_bytes = int64_t{80} << 30;
  GpuOptions options;
  options.copies_per_shard = 2;
  const int64_t expected_usable =
      static_cast<int64_t>(
          (gpu_bytes - 2 * GpuTempMemoryBytes(options, gpu_bytes) - kGpuReservePerDevice) * 0.9 /
          2) -
      plan->gpu_fixed_bytes_per_shard;
  EXPECT_EQ(plan->usable_gpu_bytes, expected_usable);
  EXPECT_LT(plan->usable_gpu_bytes, single->usable_gpu_bytes / 2);
  EXPECT_LE(plan->vectors_per_shard, plan->usable_gpu_bytes / plan->gpu_bytes_per_vector);
  EXPECT_GE(plan->shards, 2 * single->shards - 1);
  EXPECT_EQ(plan->gpus, plan->shards);

  const std::string text = FormatPlanText(request, *plan);
  EXPECT_THAT(text, HasSubstr("2 GPU copies of each shard"));
  EXPECT_THAT(text, HasSubstr("what more copies add is not measured"));
  EXPECT_EQ(nlohmann::json::parse(FormatPlanJson(request, *plan))
                .at("request")
                .at("gpu_copies_per_shard")
                .get<int>(),
            2);
  EXPECT_THAT(FormatPlanText(one_copy, *single), Not(HasSubstr("copies")));
}

TEST(CapacityPlanTest, HostRamAndDiskFollowTheShards) {
  PlanRequest request = ThreeBillion();
  auto plan = PlanCapacity(request);
  ASSERT_TRUE(plan.ok());
  const int held = std::min(plan->shards, request.gpus_per_server);
  EXPECT_EQ(plan->host_ram_bytes_per_server,
            held * (plan->host_fixed_bytes_per_shard +
                    static_cast<int64_t>((64 + 8) * static_cast<double>(plan->vectors_per_shard))));
  EXPECT_TRUE(plan->host_ram_fits);
  request.host_ram_gib_per_server = 64;
  auto tight = PlanCapacity(request);
  ASSERT_TRUE(tight.ok());
  EXPECT_FALSE(tight->host_ram_fits);
  EXPECT_THAT(FormatPlanText(request, *tight), HasSubstr("DOES NOT FIT"));
  EXPECT_EQ(plan->input_read_bytes, plan->shards * int64_t{3'000'000'000} * 512 * 4);
  EXPECT_EQ(plan->ledger_bytes, request.ledger_searches * (request.ledger_entry_bytes + 73));
}

TEST(CapacityPlanTest, SearchRateScalesWithTheCodesScanned) {
  // A shard with the reference's list length answers at the reference rate.
  PlanRequest request;
  request.vectors = 20'000'000;
  request.dim = 512;
  request.factory = "IVF16384,PQ64";
  request.gpu_memory_gib = 80;
  auto plan = PlanCapacity(request);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->shards, 1);
  ASSERT_EQ(plan->search.size(), 5u);
  for (size_t i = 0; i < plan->search.size(); ++i) {
    EXPECT_EQ(plan->search[i].nprobe, plan_measurements::kReferenceNprobes[i]);
    EXPECT_DOUBLE_EQ(plan->search[i].queries_per_second, plan_measurements::kReferenceQps[i]);
  }
  // Twice the vectors in the same lists: twice the codes per query, half the rate.
  request.vectors = 40'000'000;
  auto doubled = PlanCapacity(request);
  ASSERT_TRUE(doubled.ok());
  ASSERT_EQ(doubled->shards, 1);
  EXPECT_DOUBLE_EQ(doubled->search[0].queries_per_second, plan_measurements::kReferenceQps[0] / 2);
  EXPECT_DOUBLE_EQ(doubled->search[0].codes_per_query_per_shard,
                   2 * plan->search[0].codes_per_query_per_shard);
  // Build time follows vectors per shard, the cores and the dimension.
  EXPECT_DOUBLE_EQ(doubled->cpu_build_seconds, 2 * plan->cpu_build_seconds);
  request.build_cores_per_shard *= 2;
  auto faster = PlanCapacity(request);
  ASSERT_TRUE(faster.ok());
  EXPECT_DOUBLE_EQ(faster->cpu_build_seconds, doubled->cpu_build_seconds / 2);
}

TEST(CapacityPlanTest, BadRequestsAreRefusedWithAReason) {
  PlanRequest request = ThreeBillion();
  request.factory = "HNSW32";
  EXPECT_THAT(PlanCapacity(request).status().message(), HasSubstr("IVF<nlist>"));
  request = ThreeBillion();
  request.factory = "IVF1024,PQ60";  // 512 is not a multiple of 60
  EXPECT_FALSE(PlanCapacity(request).ok());
  request = ThreeBillion();
  request.nprobes = {12};
  EXPECT_THAT(PlanCapacity(request).status().message(), HasSubstr("no reference measurement"));
  request = ThreeBillion();
  request.gpu_memory_gib = 2;
  EXPECT_THAT(PlanCapacity(request).status().message(), HasSubstr("cannot hold one shard"));
  request = ThreeBillion();
  request.vectors = 0;
  EXPECT_FALSE(PlanCapacity(request).ok());
  for (int copies : {0, kMaxGpuCopiesPerShard + 1}) {
    request = ThreeBillion();
    request.gpu_copies_per_shard = copies;
    EXPECT_THAT(PlanCapacity(request).status().message(), HasSubstr("GPU copies per shard"))
        << copies;
  }
  request = ThreeBillion();
  request.gpu_memory_gib = 12;
  request.gpu_copies_per_shard = 16;
  EXPECT_THAT(PlanCapacity(request).status().message(), HasSubstr("16 copies of one shard"));
}

TEST(CapacityPlanTest, TextAndJsonNameTheBasisOfEveryFigure) {
  const PlanRequest request = ThreeBillion();
  auto plan = PlanCapacity(request);
  ASSERT_TRUE(plan.ok());
  for (const PlanFigure& figure : plan->figures) EXPECT_FALSE(figure.basis.empty()) << figure.name;
  const std::string text = FormatPlanText(request, *plan);
  EXPECT_THAT(text, HasSubstr("measured on an H200"));
  EXPECT_THAT(text, HasSubstr("nlist 1048576 x d 512 x 4 bytes"));
  const auto doc = nlohmann::json::parse(FormatPlanJson(request, *plan));
  EXPECT_EQ(doc.at("shards").get<int>(), plan->shards);
  EXPECT_EQ(doc.at("servers").get<int>(), plan->servers);
  EXPECT_EQ(doc.at("figures").size(), plan->figures.size());
  EXPECT_EQ(doc.at("search").size(), 5u);
}

}  // namespace
}  // namespace probity::index
