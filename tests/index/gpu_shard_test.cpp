// GPU shards against CPU shards (built only with -DPROBITY_GPU=ON; every test skips with a
// reason on a machine without a GPU). The CPU copy of a collection is the reference: the GPU
// copy of the same shards must return the same top-10.
#include <cuda_runtime.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVFPQ.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <thread>

#include "probity/index/embedding_io.h"
#include "probity/index/evaluation.h"
#include "probity/index/generation.h"
#include "probity/index/gpu.h"
#include "probity/index/sharded_index.h"
#include "probity/index/synthetic.h"
#include "test_data.h"

namespace probity::index {
namespace {

namespace fs = std::filesystem;

#define SKIP_WITHOUT_GPU()                                                 \
  if (GpuDeviceCount() == 0) {                                             \
    GTEST_SKIP() << "no CUDA device on this machine (GPU tests need one)"; \
  }

fs::path SiftDir() {
  const char* source = std::getenv("PROBITY_SOURCE_DIR");
  return fs::path(source != nullptr ? source : ".") / ".." / "shared" / "data" / "siftsmall";
}

std::shared_ptr<GpuRuntime> Runtime(bool float16_lookup_tables,
                                    GpuIdPlacement ids = GpuIdPlacement::kGpu,
                                    int copies_per_shard = 1) {
  GpuOptions options;
  options.devices = {0};
  options.float16_lookup_tables = float16_lookup_tables;
  options.ids = ids;
  options.copies_per_shard = copies_per_shard;
  auto runtime = GpuRuntime::Create(options);
  EXPECT_TRUE(runtime.ok()) << runtime.status();
  return runtime.ok() ? *runtime : nullptr;
}

SearchParams Params(int k, int nprobe) {
  SearchParams params;
  params.k = k;
  params.nprobe = nprobe;
  return params;
}

// Fraction of the CPU's top-k ids that the GPU also returns, over all queries.
double Overlap(const std::vector<HitList>& cpu, const std::vector<HitList>& gpu) {
  int64_t same = 0, total = 0;
  for (size_t q = 0; q < cpu.size(); ++q) {
    std::set<int64_t> gpu_ids;
    for (const Hit& hit : gpu[q]) gpu_ids.insert(hit.id);
    for (const Hit& hit : cpu[q]) same += gpu_ids.count(hit.id);
    total += static_cast<int64_t>(cpu[q].size());
  }
  return total == 0 ? 0 : static_cast<double>(same) / static_cast<double>(total);
}

struct Collection {
  std::unique_ptr<ShardedIndex> index;
  std::vector<float> queries;
};

Collection SiftSmall(const std::string& spec, int shards) {
  Collection c;
  auto base = ReadFloatMatrix(SiftDir() / "siftsmall_base.fvecs");
  auto queries = ReadFloatMatrix(SiftDir() / "siftsmall_query.fvecs");
  EXPECT_TRUE(base.ok() && queries.ok());
  if (!base.ok() || !queries.ok()) return c;
  auto index = ShardedIndex::Train({spec, Metric::kL2, base->dim}, base->data, shards);
  EXPECT_TRUE(index.ok()) << index.status();
  if (!index.ok()) return c;
  EXPECT_TRUE((*index)->Add(base->data, testing::SequentialIds(base->rows)).ok());
  c.index = *std::move(index);
  c.queries = queries->data;
  return c;
}

TEST(GpuShardTest, SameTop10AsTheCpuShardsOnSiftSmall) {
  SKIP_WITHOUT_GPU();
  if (!fs::exists(SiftDir() / "siftsmall_base.fvecs")) {
    GTEST_SKIP() << "siftsmall is not in ../shared/data/siftsmall";
  }
  // float32 lookup tables: the GPU computes the same distances as the CPU up to rounding.
  Collection c = SiftSmall("IVF64,PQ16", 3);
  ASSERT_NE(c.index, nullptr);
  const SearchParams params = Params(10, 8);
  auto cpu = c.index->Search(c.queries, params);
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  ASSERT_TRUE(c.index->PlaceOnGpus(Runtime(/*float16_lookup_tables=*/false)).ok());
  for (int s = 0; s < 3; ++s) EXPECT_EQ(c.index->ShardDevice(s), 0);
  auto gpu = c.index->Search(c.queries, params);
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  EXPECT_GE(Overlap(*cpu, *gpu), 0.99);
  for (size_t q = 0; q < cpu->size(); ++q) {
    ASSERT_FALSE((*gpu)[q].empty());
    // The best hit's squared distance agrees to float rounding.
    EXPECT_NEAR((*gpu)[q][0].score, (*cpu)[q][0].score, 1e-3 * (*cpu)[q][0].score + 1e-3);
  }
  // One shard at a time, through the entry point shard servers and batching use.
  for (int s = 0; s < 3; ++s) {
    auto one = c.index->SearchShard(s, c.queries, params);
    ASSERT_TRUE(one.ok()) << one.status();
    for (const HitList& hits : *one) {
      for (const Hit& hit : hits) EXPECT_EQ(c.index->ShardOf(hit.id), s);
    }
  }
}

TEST(GpuShardTest, SameTop10AsTheCpuShardsOnASyntheticGalleryWithFloat16Tables) {
  SKIP_WITHOUT_GPU();
  SyntheticOptions options;
  options.identities = 2000;
  options.images_per_identity = 5;
  options.num_queries = 200;
  options.dim = 128;
  options.ground_truth_k = 10;
  auto gallery = GenerateSyntheticGallery(options);
  ASSERT_TRUE(gallery.ok()) << gallery.status();
  auto index =
      ShardedIndex::Train({"IVF64,PQ64", Metric::kInnerProduct, options.dim}, gallery->gallery, 4);
  ASSERT_TRUE(index.ok()) << index.status();
  const int64_t n = static_cast<int64_t>(gallery->gallery.size() / options.dim);
  ASSERT_TRUE((*index)->Add(gallery->gallery, testing::SequentialIds(n)).ok());
  const SearchParams params = Params(10, 16);
  auto cpu = (*index)->Search(gallery->queries, params);
  ASSERT_TRUE(cpu.ok());
  // PQ64 needs float16 lookup tables on the GPU (float32 ones do not fit in shared memory).
  ASSERT_TRUE((*index)->PlaceOnGpus(Runtime(/*float16_lookup_tables=*/true)).ok());
  auto gpu = (*index)->Search(gallery->queries, params);
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  EXPECT_GE(Overlap(*cpu, *gpu), 0.98);
  const double cpu_recall = RecallAtK(*cpu, gallery->ground_truth, options.ground_truth_k, 10);
  const double gpu_recall = RecallAtK(*gpu, gallery->ground_truth, options.ground_truth_k, 10);
  EXPECT_NEAR(gpu_recall, cpu_recall, 0.01);
}

// The small collection most GPU tests start from: 5,000 random 64-d rows (`seed`) trained into
// `spec` (L2) with `shards` shards and added with sequential ids from `first_id`; null (and a
// test failure) if that fails.
std::unique_ptr<ShardedIndex> RandomCollection(const std::string& spec, int shards, int seed,
                                               int64_t first_id = 0) {
  constexpr int kDim = 64;
  const std::vector<float> rows = testing::RandomRows(5000, kDim, seed, false);
  auto index = ShardedIndex::Train({spec, Metric::kL2, kDim}, rows, shards);
  EXPECT_TRUE(index.ok()) << index.status();
  if (!index.ok()) return nullptr;
  const absl::Status added = (*index)->Add(rows, testing::SequentialIds(5000, first_id));
  EXPECT_TRUE(added.ok()) << added;
  return added.ok() ? *std::move(index) : nullptr;
}

TEST(GpuShardTest, IdsKeptOnTheCpuGiveTheSameAnswers) {
  SKIP_WITHOUT_GPU();
  std::unique_ptr<ShardedIndex> index = RandomCollection("IVF32,PQ16", 2, 1, 1000);
  ASSERT_NE(index, nullptr);
  const int dim = 64;
  const std::vector<float> queries = testing::RandomRows(50, dim, 2, false);
  const SearchParams params = Params(10, 8);
  auto cpu = index->Search(queries, params);
  ASSERT_TRUE(cpu.ok());
  ASSERT_TRUE(index->PlaceOnGpus(Runtime(false, GpuIdPlacement::kCpu)).ok());
  auto gpu = index->Search(queries, params);
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  EXPECT_GE(Overlap(*cpu, *gpu), 0.99);
}

// gpu.host_wait sets CUDA's scheduling flags of the device, and searches answer alike however
// their threads wait. Spin last: the flags stay with the process.
TEST(GpuShardTest, HostWaitSetsHowThreadsWaitForTheGpu) {
  SKIP_WITHOUT_GPU();
  const int dim = 64;
  const std::vector<float> queries = testing::RandomRows(50, dim, 2, false);
  const SearchParams params = Params(10, 8);
  const std::pair<GpuHostWait, unsigned> waits[] = {
      {GpuHostWait::kBlock, cudaDeviceScheduleBlockingSync},
      {GpuHostWait::kYield, cudaDeviceScheduleYield},
      {GpuHostWait::kSpin, cudaDeviceScheduleSpin}};
  for (const auto& [wait, flag] : waits) {
    std::unique_ptr<ShardedIndex> index = RandomCollection("IVF32,PQ16", 2, 1);
    ASSERT_NE(index, nullptr);
    auto cpu = index->Search(queries, params);
    ASSERT_TRUE(cpu.ok()) << cpu.status();
    GpuOptions options;
    options.devices = {0};
    options.float16_lookup_tables = false;
    options.host_wait = wait;
    auto runtime = GpuRuntime::Create(options);
    ASSERT_TRUE(runtime.ok()) << GpuHostWaitName(wait) << ": " << runtime.status();
    unsigned flags = 0;
    ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
    ASSERT_EQ(cudaGetDeviceFlags(&flags), cudaSuccess);
    EXPECT_EQ(flags & cudaDeviceScheduleMask, flag) << GpuHostWaitName(wait);
    ASSERT_TRUE(index->PlaceOnGpus(*runtime).ok()) << GpuHostWaitName(wait);
    auto gpu = index->Search(queries, params);
    ASSERT_TRUE(gpu.ok()) << GpuHostWaitName(wait) << ": " << gpu.status();
    EXPECT_GE(Overlap(*cpu, *gpu), 0.99) << GpuHostWaitName(wait);
  }
}

TEST(GpuShardTest, SearchShardsAnswersEachGpuShardAsSearchShardDoes) {
  SKIP_WITHOUT_GPU();
  std::unique_ptr<ShardedIndex> index = RandomCollection("IVF32,PQ16", 3, 1);
  ASSERT_NE(index, nullptr);
  const int dim = 64;
  ASSERT_TRUE(index->PlaceOnGpus(Runtime(false)).ok());
  const std::vector<float> queries = testing::RandomRows(20, dim, 2, false);
  const std::vector<int> listed = {2, 0};
  auto together = index->SearchShards(listed, queries, Params(10, 8));
  ASSERT_TRUE(together.ok()) << together.status();
  ASSERT_EQ(together->size(), listed.size());
  for (size_t i = 0; i < listed.size(); ++i) {
    auto alone = index->SearchShard(listed[i], queries, Params(10, 8));
    ASSERT_TRUE(alone.ok()) << alone.status();
    ASSERT_EQ((*together)[i].size(), alone->size());
    for (size_t q = 0; q < alone->size(); ++q) {
      ASSERT_EQ((*together)[i][q].size(), (*alone)[q].size()) << "shard " << listed[i];
      for (size_t r = 0; r < (*alone)[q].size(); ++r) {
        EXPECT_EQ((*together)[i][q][r].id, (*alone)[q][r].id) << "shard " << listed[i];
      }
    }
  }
}

TEST(GpuShardTest, EraseAndAddKeepWorkingOnGpuShards) {
  SKIP_WITHOUT_GPU();
  const int dim = 64;
  const std::vector<float> base = testing::RandomRows(4000, dim, 3);
  auto index = ShardedIndex::Train({"IVF32,PQ16", Metric::kInnerProduct, dim}, base, 3);
  ASSERT_TRUE(index.ok());
  ASSERT_TRUE((*index)->Add(base, testing::SequentialIds(4000)).ok());
  ASSERT_TRUE((*index)->PlaceOnGpus(Runtime(false)).ok());
  const SearchParams params = Params(10, 32);
  // Every vector finds itself first while stored...
  const std::vector<float> probes(base.begin(), base.begin() + 20 * dim);
  auto before = (*index)->Search(probes, params);
  ASSERT_TRUE(before.ok());
  for (int q = 0; q < 20; ++q) EXPECT_EQ((*before)[q][0].id, q);
  // ...and never again once erased (removed on the CPU copy, shard re-cloned).
  const std::vector<int64_t> erased = testing::SequentialIds(20);
  auto removed = (*index)->Remove(erased);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 20);
  auto after = (*index)->Search(probes, params);
  ASSERT_TRUE(after.ok()) << after.status();
  for (const HitList& hits : *after) {
    for (const Hit& hit : hits) EXPECT_GE(hit.id, 20);
  }
  for (int s = 0; s < 3; ++s) EXPECT_EQ((*index)->ShardDevice(s), 0);
  // Added vectors are found on the GPU copy and written from the CPU copy.
  const std::vector<float> added = testing::RandomRows(10, dim, 4);
  ASSERT_TRUE((*index)->Add(added, testing::SequentialIds(10, 100000)).ok());
  auto found = (*index)->Search(added, params);
  ASSERT_TRUE(found.ok());
  for (int q = 0; q < 10; ++q) EXPECT_EQ((*found)[q][0].id, 100000 + q);
  EXPECT_EQ((*index)->TotalSize(), 4000 - 20 + 10);
  testing::ScratchDir dir;
  ASSERT_TRUE(WriteGeneration(**index, 2, dir.path() / "gen-2").ok());
  auto reloaded = LoadGeneration(dir.path() / "gen-2");
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_EQ((*reloaded)->TotalSize(), 4000 - 20 + 10);
}

TEST(GpuShardTest, ConcurrentSearchesWithDifferentNprobeMatchSerialOnes) {
  SKIP_WITHOUT_GPU();
  std::unique_ptr<ShardedIndex> index = RandomCollection("IVF64,PQ16", 2, 5);
  ASSERT_NE(index, nullptr);
  ASSERT_TRUE(index->PlaceOnGpus(Runtime(false)).ok());
  const int dim = 64;
  const std::vector<float> queries = testing::RandomRows(30, dim, 6, false);
  const std::vector<int> nprobes = {1, 4, 16, 64};
  std::vector<std::vector<HitList>> serial;
  for (int nprobe : nprobes) {
    auto hits = index->Search(queries, Params(10, nprobe));
    ASSERT_TRUE(hits.ok());
    serial.push_back(*hits);
  }
  std::vector<std::thread> threads;
  std::vector<int> mismatches(nprobes.size(), 0);
  for (size_t i = 0; i < nprobes.size(); ++i) {
    threads.emplace_back([&, i] {
      for (int round = 0; round < 20; ++round) {
        auto hits = index->Search(queries, Params(10, nprobes[i]));
        if (!hits.ok() || Overlap(serial[i], *hits) != 1.0) ++mismatches[i];
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

// gpu.copies_per_shard: searches take whichever copy is free (a rotating start, so that even
// serial searches go through every copy), and every copy gives the same answer.
TEST(GpuShardTest, SeveralCopiesOfAShardAnswerConcurrentSearchesAlike) {
  SKIP_WITHOUT_GPU();
  std::unique_ptr<ShardedIndex> index = RandomCollection("IVF64,PQ16", 2, 5);
  ASSERT_NE(index, nullptr);
  ASSERT_TRUE(index->PlaceOnGpus(Runtime(false, GpuIdPlacement::kGpu, 3)).ok());
  const int dim = 64;
  const std::vector<float> queries = testing::RandomRows(30, dim, 6, false);
  auto first = index->Search(queries, Params(10, 16));
  ASSERT_TRUE(first.ok()) << first.status();
  for (int round = 0; round < 6; ++round) {  // through each copy of each shard, twice
    auto again = index->Search(queries, Params(10, 16));
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(Overlap(*first, *again), 1.0) << "round " << round;
  }
  std::vector<std::thread> threads;
  std::vector<int> mismatches(6, 0);
  for (size_t i = 0; i < mismatches.size(); ++i) {
    threads.emplace_back([&, i] {
      for (int round = 0; round < 20; ++round) {
        auto hits = index->Search(queries, Params(10, 16));
        if (!hits.ok() || Overlap(*first, *hits) != 1.0) ++mismatches[i];
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

TEST(GpuShardTest, AddAndEraseReachEveryCopyOfAShard) {
  SKIP_WITHOUT_GPU();
  const int dim = 64;
  const std::vector<float> base = testing::RandomRows(4000, dim, 3);
  auto index = ShardedIndex::Train({"IVF32,PQ16", Metric::kInnerProduct, dim}, base, 1);
  ASSERT_TRUE(index.ok());
  ASSERT_TRUE((*index)->Add(base, testing::SequentialIds(4000)).ok());
  ASSERT_TRUE((*index)->PlaceOnGpus(Runtime(false, GpuIdPlacement::kGpu, 2)).ok());
  const SearchParams params = Params(10, 32);
  const std::vector<float> added = testing::RandomRows(10, dim, 4);
  ASSERT_TRUE((*index)->Add(added, testing::SequentialIds(10, 100000)).ok());
  // Serial searches alternate between the two copies: both hold the added vectors.
  for (int round = 0; round < 4; ++round) {
    auto found = (*index)->Search(added, params);
    ASSERT_TRUE(found.ok()) << found.status();
    for (int q = 0; q < 10; ++q) EXPECT_EQ((*found)[q][0].id, 100000 + q) << "round " << round;
  }
  auto removed = (*index)->Remove(testing::SequentialIds(10, 100000));
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 10);
  for (int round = 0; round < 4; ++round) {
    auto after = (*index)->Search(added, params);
    ASSERT_TRUE(after.ok()) << after.status();
    for (const HitList& hits : *after) {
      for (const Hit& hit : hits) EXPECT_LT(hit.id, 100000) << "round " << round;
    }
  }
}

TEST(GpuShardTest, RefusesToLoadWhenAGpuLacksMemoryAndSaysNeededVersusFree) {
  SKIP_WITHOUT_GPU();
  const int dim = 64;
  auto index = ShardedIndex::Train({"IVF32,PQ16", Metric::kL2, dim},
                                   testing::RandomRows(3000, dim, 7, false), 2);
  ASSERT_TRUE(index.ok());
  // Leave less free than FAISS's temporary memory plus the reserve of a fresh runtime.
  size_t free_bytes = 0, total_bytes = 0;
  ASSERT_EQ(cudaMemGetInfo(&free_bytes, &total_bytes), cudaSuccess);
  const size_t keep_free = 512ull << 20;
  ASSERT_GT(free_bytes, keep_free);
  void* ballast = nullptr;
  ASSERT_EQ(cudaMalloc(&ballast, free_bytes - keep_free), cudaSuccess);
  auto runtime = Runtime(false);
  absl::Status refused = (*index)->PlaceOnGpus(runtime);
  cudaFree(ballast);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_NE(refused.message().find("GPU 0 (short): needs"), absl::string_view::npos) << refused;
  EXPECT_NE(refused.message().find("free"), absl::string_view::npos) << refused;
  EXPECT_EQ((*index)->ShardDevice(0), -1);  // nothing was placed
  // With the memory back, the same placement succeeds.
  EXPECT_TRUE((*index)->PlaceOnGpus(runtime).ok());
  EXPECT_EQ((*index)->ShardDevice(0), 0);
}

TEST(GpuShardTest, KAboveTheGpuLimitIsRefusedBeforeSearching) {
  SKIP_WITHOUT_GPU();
  const int dim = 32;
  auto index = ShardedIndex::Train({"IVF8,PQ8", Metric::kL2, dim},
                                   testing::RandomRows(2000, dim, 8, false), 1);
  ASSERT_TRUE(index.ok());
  ASSERT_TRUE((*index)->PlaceOnGpus(Runtime(false)).ok());
  auto hits = (*index)->Search(testing::RandomRows(1, dim, 9, false), Params(4096, 1));
  EXPECT_EQ(hits.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(GpuTrainingTest, GpuTrainedShardsAreOrdinaryCpuIndexesWithComparableRecall) {
  SKIP_WITHOUT_GPU();
  if (!fs::exists(SiftDir() / "siftsmall_base.fvecs")) {
    GTEST_SKIP() << "siftsmall is not in ../shared/data/siftsmall";
  }
  auto base = ReadFloatMatrix(SiftDir() / "siftsmall_base.fvecs");
  auto queries = ReadFloatMatrix(SiftDir() / "siftsmall_query.fvecs");
  auto truth = ReadIntMatrix(SiftDir() / "siftsmall_groundtruth.ivecs");
  ASSERT_TRUE(base.ok() && queries.ok() && truth.ok());
  const CollectionSpec spec{"IVF128,PQ16", Metric::kL2, base->dim};
  auto cpu_trained = ShardedIndex::Train(spec, base->data, 2);
  auto gpu_trained =
      ShardedIndex::Train(spec, base->data, 2, TrainOptions{.gpu_device = 0, .gpu_train_pq = true});
  ASSERT_TRUE(cpu_trained.ok() && gpu_trained.ok()) << gpu_trained.status();
  // A plain CPU IndexIVFPQ, with nothing of the GPU left in it.
  auto* ivfpq = dynamic_cast<const faiss::IndexIVFPQ*>(&(*gpu_trained)->shard_index(0));
  ASSERT_NE(ivfpq, nullptr);
  EXPECT_EQ(ivfpq->clustering_index, nullptr);
  EXPECT_EQ(ivfpq->pq.assign_index, nullptr);
  EXPECT_EQ((*gpu_trained)->ShardDevice(0), -1);
  const std::vector<int64_t> ids = testing::SequentialIds(base->rows);
  ASSERT_TRUE((*cpu_trained)->Add(base->data, ids).ok());
  ASSERT_TRUE((*gpu_trained)->Add(base->data, ids).ok());
  const SearchParams params = Params(10, 16);
  auto cpu_hits = (*cpu_trained)->Search(queries->data, params);
  auto gpu_hits = (*gpu_trained)->Search(queries->data, params);
  ASSERT_TRUE(cpu_hits.ok() && gpu_hits.ok());
  const double cpu_recall = RecallAtK(*cpu_hits, truth->data, truth->dim, 10);
  const double gpu_recall = RecallAtK(*gpu_hits, truth->data, truth->dim, 10);
  EXPECT_GE(gpu_recall, cpu_recall - 0.05) << "CPU-trained " << cpu_recall;
  // It is written and read back like any generation.
  testing::ScratchDir dir;
  ASSERT_TRUE(WriteGeneration(**gpu_trained, 1, dir.path() / "gen-1").ok());
  EXPECT_TRUE(LoadGeneration(dir.path() / "gen-1").ok());
}

// The gallery and spec of the HNSW tests below (39 x 256 training vectors at least; the HNSW
// graph is built on the CPU from the k-means centroids), and a small gallery for other tests.
SyntheticGallery HnswGallery() {
  SyntheticOptions options;
  options.identities = 2000;
  options.images_per_identity = 10;
  options.num_queries = 200;
  options.dim = 64;
  options.intrinsic_dim = 48;
  options.ground_truth_k = 10;
  auto gallery = GenerateSyntheticGallery(options);
  EXPECT_TRUE(gallery.ok()) << gallery.status();
  return gallery.ok() ? *std::move(gallery) : SyntheticGallery{};
}
const CollectionSpec kHnswSpec{"IVF256_HNSW32,PQ16", Metric::kInnerProduct, 64};

// Runs with and without a GPU: a device CUDA does not have (device 0 on a machine without a GPU
// or driver) is a clear error, where FAISS's GPU module would end the process.
TEST(GpuTrainingTest, ADeviceCudaDoesNotHaveIsRefusedWithTheReason) {
  const SyntheticGallery gallery = HnswGallery();
  ASSERT_FALSE(gallery.gallery.empty());
  const int missing = GpuDeviceCount();  // one past the last device
  auto trained = ShardedIndex::Train({"IVF64,PQ16", Metric::kInnerProduct, 64}, gallery.gallery, 1,
                                     TrainOptions{.gpu_device = missing});
  ASSERT_FALSE(trained.ok());
  EXPECT_EQ(trained.status().code(), absl::StatusCode::kFailedPrecondition) << trained.status();
  EXPECT_NE(trained.status().message().find("CUDA finds"), std::string::npos) << trained.status();
}

// Training only: the GPU's k-means centroids go into a CPU HNSW graph, and the result is an
// ordinary CPU index. (Serving HNSW shards from a GPU is the next test, so that a failure on a
// GPU machine says which of the two broke: on an H100 the combined test once ended the process
// with std::terminate.)
TEST(GpuTrainingTest, HnswCoarseQuantizerTrainsOnGpu) {
  SKIP_WITHOUT_GPU();
  const SyntheticGallery gallery = HnswGallery();
  ASSERT_FALSE(gallery.gallery.empty());
  auto cpu_trained = ShardedIndex::Train(kHnswSpec, gallery.gallery, 2);
  auto gpu_trained = ShardedIndex::Train(kHnswSpec, gallery.gallery, 2,
                                         TrainOptions{.gpu_device = 0, .gpu_train_pq = true});
  ASSERT_TRUE(cpu_trained.ok()) << cpu_trained.status();
  ASSERT_TRUE(gpu_trained.ok()) << gpu_trained.status();
  auto* ivfpq = dynamic_cast<const faiss::IndexIVFPQ*>(&(*gpu_trained)->shard_index(0));
  ASSERT_NE(ivfpq, nullptr);
  EXPECT_NE(dynamic_cast<const faiss::IndexHNSWFlat*>(ivfpq->quantizer), nullptr);
  EXPECT_EQ(ivfpq->quantizer->ntotal, 256);
  EXPECT_EQ(ivfpq->clustering_index, nullptr);
  EXPECT_TRUE((*gpu_trained)->SharesCoarseAssignment());
  const std::vector<int64_t> ids = testing::SequentialIds(gallery.gallery_labels.size());
  ASSERT_TRUE((*cpu_trained)->Add(gallery.gallery, ids).ok());
  ASSERT_TRUE((*gpu_trained)->Add(gallery.gallery, ids).ok());
  const SearchParams params = Params(10, 16);
  auto cpu_hits = (*cpu_trained)->Search(gallery.queries, params);
  auto gpu_trained_hits = (*gpu_trained)->Search(gallery.queries, params);
  ASSERT_TRUE(cpu_hits.ok() && gpu_trained_hits.ok());
  const double cpu_recall = RecallAtK(*cpu_hits, gallery.ground_truth, 10, 10);
  const double gpu_recall = RecallAtK(*gpu_trained_hits, gallery.ground_truth, 10, 10);
  EXPECT_GE(gpu_recall, cpu_recall - 0.05) << "CPU-trained " << cpu_recall;
  testing::ScratchDir dir;
  ASSERT_TRUE(WriteGeneration(**gpu_trained, 1, dir.path() / "gen-1").ok());
  EXPECT_TRUE(LoadGeneration(dir.path() / "gen-1").ok());
}

// GPU shards keep the HNSW quantizer, its flat storage included, on the host (FAISS's GPU IVF
// searches a CPU coarse quantizer through host copies) and scan the lists on the GPU: same
// answers as the CPU, also at an nprobe where the CPU's efSearch (2 x nprobe) is above the
// stored one. FAISS 1.7.3's GPU cloner once put the storage on the GPU, and the first search
// ended the process.
TEST(GpuShardTest, HnswCoarseQuantizerShardsServeFromTheGpu) {
  SKIP_WITHOUT_GPU();
  const SyntheticGallery gallery = HnswGallery();
  ASSERT_FALSE(gallery.gallery.empty());
  auto trained = ShardedIndex::Train(kHnswSpec, gallery.gallery, 2);
  ASSERT_TRUE(trained.ok()) << trained.status();
  ASSERT_TRUE(
      (*trained)->Add(gallery.gallery, testing::SequentialIds(gallery.gallery_labels.size())).ok());
  testing::ScratchDir dir;
  ASSERT_TRUE(WriteGeneration(**trained, 1, dir.path() / "gen-1").ok());
  auto loaded = LoadGeneration(dir.path() / "gen-1");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE((*loaded)->PlaceOnGpus(Runtime(true)).ok());
  EXPECT_FALSE((*loaded)->SharesCoarseAssignment());
  for (int nprobe : {16, 96}) {
    const SearchParams params = Params(10, nprobe);
    auto cpu_hits = (*trained)->Search(gallery.queries, params);
    ASSERT_TRUE(cpu_hits.ok()) << cpu_hits.status();
    auto on_gpu = (*loaded)->Search(gallery.queries, params);
    ASSERT_TRUE(on_gpu.ok()) << on_gpu.status();
    EXPECT_GE(Overlap(*cpu_hits, *on_gpu), 0.98) << "nprobe " << nprobe;
  }
}

}  // namespace
}  // namespace probity::index
