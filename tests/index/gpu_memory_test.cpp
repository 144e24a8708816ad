// The GPU memory estimator, placement plan and option checks are pure functions: they run in
// every build and in CI, without a GPU. So does the refusal of a GPU configuration by a build
// or a machine that cannot honour it.
#include <faiss/IndexIVF.h>
#include <gtest/gtest.h>

#include <numeric>

#include "faiss_search.h"
#include "probity/index/gpu.h"
#include "probity/index/sharded_index.h"
#include "test_data.h"

namespace probity::index {
namespace {

const bool kSingleThreaded = testing::UseOneThread();

constexpr int64_t kMiB = int64_t{1} << 20;
constexpr int64_t kGiB = int64_t{1} << 30;

int64_t RoundUp(int64_t bytes) {
  return (bytes + kGpuAllocationGranularity - 1) / kGpuAllocationGranularity *
         kGpuAllocationGranularity;
}

GpuShardShape IvfPq(int dim, int64_t nlist, int64_t m, std::vector<int64_t> list_sizes) {
  GpuShardShape shape;
  shape.kind = GpuShardShape::Kind::kIvf;
  shape.dim = dim;
  shape.nlist = nlist;
  shape.code_size = m;
  shape.pq_ksub = 256;
  shape.num_vectors = std::accumulate(list_sizes.begin(), list_sizes.end(), int64_t{0});
  shape.list_sizes = std::move(list_sizes);
  return shape;
}

TEST(GpuMemoryEstimateTest, IvfPqCountsEveryPartByFaissAllocationRules) {
  // Two lists: three PQ64 vectors and none. An empty list allocates nothing; a non-empty one
  // allocates its codes and its ids separately, each rounded up to the granularity.
  const GpuShardShape shape = IvfPq(128, 2, 64, {3, 0});
  GpuOptions options;
  options.devices = {0};
  const GpuMemoryEstimate estimate = EstimateShardGpuMemory(shape, options);
  EXPECT_EQ(estimate.codes, 3 * 64);
  EXPECT_EQ(estimate.ids, 3 * 8);
  EXPECT_EQ(estimate.list_overhead,
            (RoundUp(3 * 64) - 3 * 64) + (RoundUp(3 * 8) - 3 * 8) + RoundUp(2 * (8 + 8 + 4)));
  EXPECT_EQ(estimate.coarse_centroids, RoundUp(2 * 128 * 4) + RoundUp(2 * 4));
  EXPECT_EQ(estimate.pq_tables, 2 * RoundUp(256 * 128 * 4));
  EXPECT_EQ(estimate.total(), estimate.codes + estimate.ids + estimate.list_overhead +
                                  estimate.coarse_centroids + estimate.pq_tables);
}

TEST(GpuMemoryEstimateTest, InterleavedListsArePaddedToWholeBlocks) {
  // IVF-Flat on the GPU: 40 vectors of 64 float32 dimensions fill two blocks of 32.
  GpuShardShape shape;
  shape.kind = GpuShardShape::Kind::kIvf;
  shape.dim = 64;
  shape.nlist = 1;
  shape.code_size = 64 * 4;
  shape.interleave = 32;
  shape.num_vectors = 40;
  shape.list_sizes = {40};
  GpuOptions options;
  options.devices = {0};
  options.ids = GpuIdPlacement::kCpu;
  const GpuMemoryEstimate estimate = EstimateShardGpuMemory(shape, options);
  EXPECT_EQ(estimate.codes, 40 * 256);
  EXPECT_EQ(estimate.list_overhead, RoundUp(64 * 256) - 40 * 256 + RoundUp(1 * (8 + 8 + 4)));
}

TEST(GpuMemoryEstimateTest, IdsOnTheCpuTakeNoGpuMemory) {
  const GpuShardShape shape = IvfPq(128, 4, 64, {1000, 1000, 1000, 1000});
  GpuOptions on_gpu;
  on_gpu.devices = {0};
  GpuOptions on_cpu = on_gpu;
  on_cpu.ids = GpuIdPlacement::kCpu;
  const GpuMemoryEstimate gpu_ids = EstimateShardGpuMemory(shape, on_gpu);
  const GpuMemoryEstimate cpu_ids = EstimateShardGpuMemory(shape, on_cpu);
  EXPECT_EQ(gpu_ids.ids, 4000 * 8);
  EXPECT_EQ(cpu_ids.ids, 0);
  EXPECT_EQ(gpu_ids.codes, cpu_ids.codes);
  EXPECT_LT(cpu_ids.list_overhead, gpu_ids.list_overhead);
}

TEST(GpuMemoryEstimateTest, LongListsCostCodePlusIdPerVector) {
  // 1M PQ64 vectors in 1024 lists: the per-list rounding is negligible, so the cost per vector
  // approaches 64 (code) + 8 (id) bytes; with 65,536 short lists the rounding shows.
  const int64_t n = 1 << 20;
  GpuOptions options;
  options.devices = {0};
  const GpuMemoryEstimate long_lists =
      EstimateShardGpuMemory(IvfPq(256, 1024, 64, std::vector<int64_t>(1024, n / 1024)), options);
  const double per_vector_long =
      static_cast<double>(long_lists.codes + long_lists.ids + long_lists.list_overhead) / n;
  EXPECT_GE(per_vector_long, 72.0);
  EXPECT_LT(per_vector_long, 72.1);
  const GpuMemoryEstimate short_lists = EstimateShardGpuMemory(
      IvfPq(256, 65536, 64, std::vector<int64_t>(65536, n / 65536)), options);
  const double per_vector_short =
      static_cast<double>(short_lists.codes + short_lists.ids + short_lists.list_overhead) / n;
  EXPECT_GT(per_vector_short, per_vector_long);
}

TEST(GpuMemoryEstimateTest, UnknownListSizesAssumeTheWorstRounding) {
  GpuShardShape shape = IvfPq(64, 100, 16, std::vector<int64_t>(100, 10));
  GpuOptions options;
  options.devices = {0};
  const GpuMemoryEstimate known = EstimateShardGpuMemory(shape, options);
  shape.list_sizes.clear();
  const GpuMemoryEstimate unknown = EstimateShardGpuMemory(shape, options);
  EXPECT_GE(unknown.total(), known.total());
}

TEST(GpuMemoryEstimateTest, FlatShardsHoldFloatVectorsAndNorms) {
  GpuShardShape shape;
  shape.kind = GpuShardShape::Kind::kFlat;
  shape.dim = 64;
  shape.num_vectors = 1000;
  GpuOptions options;
  options.devices = {0};
  const GpuMemoryEstimate estimate = EstimateShardGpuMemory(shape, options);
  EXPECT_EQ(estimate.codes, 1000 * 64 * 4);
  EXPECT_EQ(estimate.ids, 0);  // the id map stays on the host
  EXPECT_EQ(estimate.list_overhead, RoundUp(1000 * 64 * 4) - 1000 * 64 * 4 + RoundUp(1000 * 4));
}

TEST(GpuShardShapeTest, ReadsTheShapeOfATrainedIvfPqShard) {
  const int dim = 32;
  auto index = ShardedIndex::Train({"IVF16,PQ8", Metric::kInnerProduct, dim},
                                   testing::RandomRows(2000, dim, 1), 2);
  ASSERT_TRUE(index.ok()) << index.status();
  ASSERT_TRUE((*index)->Add(testing::RandomRows(500, dim, 2), testing::SequentialIds(500)).ok());
  auto shape = GpuShardShapeOf((*index)->shard_index(0));
  ASSERT_TRUE(shape.ok()) << shape.status();
  EXPECT_EQ(shape->kind, GpuShardShape::Kind::kIvf);
  EXPECT_EQ(shape->dim, dim);
  EXPECT_EQ(shape->nlist, 16);
  EXPECT_EQ(shape->code_size, 8);
  EXPECT_EQ(shape->pq_ksub, 256);
  EXPECT_EQ(shape->interleave, 1);
  EXPECT_EQ(shape->num_vectors, (*index)->ShardSize(0));
  ASSERT_EQ(shape->list_sizes.size(), 16u);
  EXPECT_EQ(std::accumulate(shape->list_sizes.begin(), shape->list_sizes.end(), int64_t{0}),
            (*index)->ShardSize(0));
}

TEST(GpuShardShapeTest, SeesThroughAPreTransformAndTakesFlatShards) {
  const int dim = 32;
  auto opq = ShardedIndex::Train({"OPQ8,IVF8,PQ8", Metric::kL2, dim},
                                 testing::RandomRows(2000, dim, 3, false), 1);
  ASSERT_TRUE(opq.ok()) << opq.status();
  auto opq_shape = GpuShardShapeOf((*opq)->shard_index(0));
  ASSERT_TRUE(opq_shape.ok()) << opq_shape.status();
  EXPECT_EQ(opq_shape->nlist, 8);

  auto flat = ShardedIndex::Train({"Flat", Metric::kL2, dim}, {}, 1);
  ASSERT_TRUE(flat.ok());
  ASSERT_TRUE((*flat)->Add(testing::RandomRows(10, dim, 4), testing::SequentialIds(10)).ok());
  auto flat_shape = GpuShardShapeOf((*flat)->shard_index(0));
  ASSERT_TRUE(flat_shape.ok()) << flat_shape.status();
  EXPECT_EQ(flat_shape->kind, GpuShardShape::Kind::kFlat);
  EXPECT_EQ(flat_shape->num_vectors, 10);
}

TEST(GpuShardShapeTest, RefusesShardsTheGpuClonerCannotTake) {
  const int dim = 32;
  auto fast_scan = ShardedIndex::Train({"IVF8,PQ8x4fs", Metric::kL2, dim},
                                       testing::RandomRows(2000, dim, 5, false), 1);
  ASSERT_TRUE(fast_scan.ok()) << fast_scan.status();
  EXPECT_EQ(GpuShardShapeOf((*fast_scan)->shard_index(0)).status().code(),
            absl::StatusCode::kUnimplemented);
}

TEST(GpuTempMemoryTest, FollowsFaissDefaultsAndCaps) {
  GpuOptions options;
  options.devices = {0};
  EXPECT_EQ(GpuTempMemoryBytes(options, 4 * kGiB), 512 * kMiB);
  EXPECT_EQ(GpuTempMemoryBytes(options, 8 * kGiB), 1024 * kMiB);
  EXPECT_EQ(GpuTempMemoryBytes(options, 80 * kGiB), 1536 * kMiB);
  options.temp_memory_mb = 256;
  EXPECT_EQ(GpuTempMemoryBytes(options, 80 * kGiB), 256 * kMiB);
  options.temp_memory_mb = 4096;  // FAISS caps what it is asked for
  EXPECT_EQ(GpuTempMemoryBytes(options, 80 * kGiB), 1536 * kMiB);
  options.temp_memory_mb = 0;
  EXPECT_EQ(GpuTempMemoryBytes(options, 80 * kGiB), 0);
}

TEST(GpuPlacementTest, RoundRobinOverTheConfiguredDevices) {
  EXPECT_EQ(PlanGpuPlacement({0, 1, 2, 3, 4}, {0, 1}), (std::vector<int>{0, 1, 0, 1, 0}));
  EXPECT_EQ(PlanGpuPlacement({2, 5, 7}, {3}), (std::vector<int>{3, 3, 3}));
  EXPECT_EQ(PlanGpuPlacement({0, 1}, {1, 0, 2}), (std::vector<int>{1, 0}));
  EXPECT_TRUE(PlanGpuPlacement({0, 1}, {}).empty());
}

TEST(GpuMemoryCheckTest, NamesNeededAndFreeForEveryGpuWhenOneIsShort) {
  GpuDeviceNeed fits{.device = 0,
                     .num_shards = 2,
                     .shard_bytes = 10 * kGiB,
                     .temp_bytes = 1536 * kMiB,
                     .reserve_bytes = kGpuReservePerDevice,
                     .free_bytes = 70 * kGiB};
  EXPECT_TRUE(CheckGpuMemory({fits}).ok());
  GpuDeviceNeed short_of_memory = fits;
  short_of_memory.device = 1;
  short_of_memory.free_bytes = 11 * kGiB;
  const absl::Status status = CheckGpuMemory({fits, short_of_memory});
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  const std::string message(status.message());
  EXPECT_NE(message.find("GPU 1 (short): needs 11.75 GiB"), std::string::npos) << message;
  EXPECT_NE(message.find("11.00 GiB free"), std::string::npos) << message;
  EXPECT_NE(message.find("GPU 0: needs"), std::string::npos) << message;
  EXPECT_NE(message.find("nothing was loaded"), std::string::npos) << message;
}

TEST(GpuMemoryCheckTest, EveryCopyOfAShardNeedsItsMemoryAndItsOwnScratch) {
  GpuMemoryEstimate a;
  a.codes = 3 * kGiB;
  a.ids = kGiB;
  GpuMemoryEstimate b;
  b.codes = kGiB;
  GpuOptions options;
  options.devices = {0};
  const GpuDeviceNeed one = NeedOnDevice(0, {a, b}, options, 70 * kGiB, 80 * kGiB, false);
  EXPECT_EQ(one.num_shards, 2);
  EXPECT_EQ(one.shard_bytes, 5 * kGiB);
  EXPECT_EQ(one.temp_bytes, 1536 * kMiB);
  EXPECT_EQ(one.reserve_bytes, kGpuReservePerDevice);
  EXPECT_EQ(one.free_bytes, 70 * kGiB);

  options.copies_per_shard = 3;
  const GpuDeviceNeed three = NeedOnDevice(0, {a, b}, options, 70 * kGiB, 80 * kGiB, false);
  EXPECT_EQ(three.shard_bytes, 15 * kGiB);
  EXPECT_EQ(three.temp_bytes, 3 * 1536 * kMiB);
  EXPECT_EQ(three.reserve_bytes, kGpuReservePerDevice);

  // A device already in use has its scratch and reserve: only the shards are new.
  const GpuDeviceNeed in_use = NeedOnDevice(0, {a, b}, options, 70 * kGiB, 80 * kGiB, true);
  EXPECT_EQ(in_use.shard_bytes, 15 * kGiB);
  EXPECT_EQ(in_use.temp_bytes, 0);
  EXPECT_EQ(in_use.reserve_bytes, 0);

  // The refusal says how many copies the shards were counted with.
  const GpuDeviceNeed short_of_memory =
      NeedOnDevice(0, {a, b}, options, 16 * kGiB, 80 * kGiB, false);
  const absl::Status status = CheckGpuMemory({short_of_memory});
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(status.message().find("2 shard(s) x 3 copies 15.00 GiB"), absl::string_view::npos)
      << status;
}

TEST(GpuOptionsTest, RefusesBadDeviceListsAndTempMemory) {
  GpuOptions options;
  EXPECT_FALSE(ValidateGpuOptions(options).ok());  // no devices
  options.devices = {0, 1};
  EXPECT_TRUE(ValidateGpuOptions(options).ok());
  options.devices = {0, 0};
  EXPECT_FALSE(ValidateGpuOptions(options).ok());
  options.devices = {-1};
  EXPECT_FALSE(ValidateGpuOptions(options).ok());
  options.devices = {0};
  options.temp_memory_mb = -2;
  EXPECT_FALSE(ValidateGpuOptions(options).ok());
  options.temp_memory_mb = -1;
  for (int copies : {1, 2, kMaxGpuCopiesPerShard}) {
    options.copies_per_shard = copies;
    EXPECT_TRUE(ValidateGpuOptions(options).ok()) << copies;
  }
  for (int copies : {0, -1, kMaxGpuCopiesPerShard + 1}) {
    options.copies_per_shard = copies;
    const absl::Status status = ValidateGpuOptions(options);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << copies;
    EXPECT_NE(status.message().find("copies_per_shard"), absl::string_view::npos) << status;
  }
  EXPECT_EQ(*ParseGpuIdPlacement("gpu"), GpuIdPlacement::kGpu);
  EXPECT_EQ(*ParseGpuIdPlacement("cpu"), GpuIdPlacement::kCpu);
  EXPECT_FALSE(ParseGpuIdPlacement("host").ok());
  for (GpuHostWait wait : kGpuHostWaits) {
    auto parsed = ParseGpuHostWait(GpuHostWaitName(wait));
    ASSERT_TRUE(parsed.ok()) << GpuHostWaitName(wait);
    EXPECT_EQ(*parsed, wait);
  }
  EXPECT_EQ(GpuHostWaitName(GpuHostWait::kBlock), "block");
  EXPECT_FALSE(ParseGpuHostWait("blocking").ok());
  EXPECT_FALSE(ParseGpuHostWait("").ok());
}

TEST(GpuRefusalTest, ConfiguredGpusAreRefusedByABuildOrMachineWithoutThem) {
  if (GpuBuild() && GpuDeviceCount() > 0) {
    GTEST_SKIP() << "this build has GPU support and this machine has a GPU";
  }
  GpuOptions options;
  options.devices = {0};
  auto runtime = GpuRuntime::Create(options);
  ASSERT_FALSE(runtime.ok());
  EXPECT_EQ(runtime.status().code(), absl::StatusCode::kFailedPrecondition);
  if (!GpuBuild()) {
    EXPECT_NE(runtime.status().message().find("-DPROBITY_GPU=ON"), absl::string_view::npos)
        << runtime.status();
  }
}

TEST(GpuRefusalTest, GpuTrainingIsRefusedWithoutAGpuInsteadOfTrainingOnTheCpu) {
  if (GpuBuild() && GpuDeviceCount() > 0) {
    GTEST_SKIP() << "this build has GPU support and this machine has a GPU";
  }
  const int dim = 16;
  auto index =
      ShardedIndex::Train({"IVF8,PQ4", Metric::kL2, dim}, testing::RandomRows(1000, dim, 6, false),
                          1, TrainOptions{.gpu_device = 0});
  EXPECT_FALSE(index.ok());
}

TEST(GpuRefusalTest, ACpuCollectionReportsNoDevice) {
  auto index = ShardedIndex::Train({"Flat", Metric::kL2, 8}, {}, 2);
  ASSERT_TRUE(index.ok());
  EXPECT_EQ((*index)->ShardDevice(0), -1);
  EXPECT_EQ((*index)->ShardDevice(1), -1);
  EXPECT_FALSE((*index)->PlaceOnGpus(nullptr).ok());
}

}  // namespace
}  // namespace probity::index
