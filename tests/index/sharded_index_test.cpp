#include "probity/index/sharded_index.h"

#include <faiss/Index.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexPreTransform.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

#include "probity/index/generation.h"
#include "test_data.h"

namespace probity::index {
namespace {

using ::testing::HasSubstr;
using testing::RandomRows;
using testing::SequentialIds;

const bool kSingleThreaded = testing::UseOneThread();

constexpr int kDim = 16;
constexpr int64_t kBase = 2000;
constexpr int64_t kQueries = 40;

SearchParams Params(int k, int nprobe, std::optional<float> min_score = std::nullopt) {
  SearchParams params;
  params.k = k;
  params.nprobe = nprobe;
  params.min_score = min_score;
  return params;
}

std::unique_ptr<ShardedIndex> Build(const std::string& factory, int shards,
                                    Metric metric = Metric::kInnerProduct) {
  const std::vector<float> base = RandomRows(kBase, kDim, 1);
  auto index = ShardedIndex::Train({factory, metric, kDim}, base, shards);
  EXPECT_TRUE(index.ok()) << index.status();
  EXPECT_TRUE((*index)->Add(base, SequentialIds(kBase)).ok());
  return *std::move(index);
}

std::vector<HitList> SearchAll(const ShardedIndex& index, int k, int nprobe) {
  const std::vector<float> queries = RandomRows(kQueries, kDim, 2);
  auto hits = index.Search(queries, Params(k, nprobe));
  EXPECT_TRUE(hits.ok()) << hits.status();
  return *hits;
}

std::vector<std::vector<int64_t>> Ids(const std::vector<HitList>& hits) {
  std::vector<std::vector<int64_t>> ids;
  for (const HitList& list : hits) {
    ids.emplace_back();
    for (const Hit& hit : list) ids.back().push_back(hit.id);
  }
  return ids;
}

class ShardingTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ShardingTest, MergedShardsEqualOneUnshardedIndexIdForId) {
  const auto unsharded = Build(GetParam(), 1);
  const std::vector<HitList> expected = SearchAll(*unsharded, 10, 4);
  ASSERT_EQ(expected.size(), static_cast<size_t>(kQueries));
  ASSERT_EQ(expected[0].size(), 10u);
  for (int shards : {2, 3, 8}) {
    const auto sharded = Build(GetParam(), shards);
    EXPECT_EQ(sharded->TotalSize(), kBase);
    const std::vector<HitList> actual = SearchAll(*sharded, 10, 4);
    // Fast-scan scores are 16-bit quantized, so equal scores are common and FAISS keeps an
    // arbitrary member of a tie at the cut; there the ranks must agree on scores, and on ids
    // wherever the score is unique.
    if (GetParam().find("fs") == std::string::npos) {
      EXPECT_EQ(Ids(actual), Ids(expected)) << shards << " shards";
    }
    for (size_t q = 0; q < actual.size(); ++q) {
      ASSERT_EQ(actual[q].size(), expected[q].size());
      for (size_t r = 0; r < actual[q].size(); ++r) {
        EXPECT_EQ(actual[q][r].score, expected[q][r].score);
        const bool tied =
            (r > 0 && expected[q][r - 1].score == expected[q][r].score) ||
            (r + 1 < expected[q].size() && expected[q][r + 1].score == expected[q][r].score) ||
            r + 1 == expected[q].size();
        if (!tied) {
          EXPECT_EQ(actual[q][r].id, expected[q][r].id);
        }
        EXPECT_EQ(actual[q][r].shard, static_cast<uint32_t>(sharded->ShardOf(actual[q][r].id)));
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Specs, ShardingTest,
                         ::testing::Values("Flat", "IVF16,Flat", "IVF16,PQ4x4", "OPQ4,IVF16,PQ4x4",
                                           "IVF16,PQ4x4fs", "IVF16_HNSW32,PQ4x4"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace_if(
                               name.begin(), name.end(), [](char c) { return !isalnum(c); }, '_');
                           return name;
                         });

TEST(ShardedIndexTest, ParallelBlockSearchEqualsSerialSearch) {
  const auto index = Build("IVF16,PQ4x4", 3);
  const auto serial = SearchAll(*index, 10, 4);
  omp_set_num_threads(3);
  const auto parallel = SearchAll(*index, 10, 4);
  omp_set_num_threads(1);
  ASSERT_EQ(parallel.size(), serial.size());
  for (size_t q = 0; q < serial.size(); ++q) {
    ASSERT_EQ(parallel[q].size(), serial[q].size());
    for (size_t r = 0; r < serial[q].size(); ++r) {
      EXPECT_EQ(parallel[q][r].id, serial[q][r].id);
      EXPECT_EQ(parallel[q][r].score, serial[q][r].score);
    }
  }
}

TEST(ShardedIndexTest, ShardsAreSpreadAndShareTheTrainedQuantizer) {
  const auto index = Build("IVF16,PQ4x4", 3);
  for (int s = 0; s < 3; ++s) {
    EXPECT_GT(index->ShardSize(s), kBase / 5) << "shard " << s;
  }
  const auto* first = dynamic_cast<const faiss::IndexIVF*>(&index->shard_index(0));
  const auto* last = dynamic_cast<const faiss::IndexIVF*>(&index->shard_index(2));
  ASSERT_NE(first, nullptr);
  ASSERT_NE(last, nullptr);
  std::vector<float> a(kDim), b(kDim);
  for (int list = 0; list < 16; ++list) {
    first->quantizer->reconstruct(list, a.data());
    last->quantizer->reconstruct(list, b.data());
    EXPECT_EQ(a, b);
  }
}

TEST(ShardedIndexTest, NprobeChangesIvfResultsAndRecallGrows) {
  const auto index = Build("IVF16,Flat", 2);
  const auto narrow = Ids(SearchAll(*index, 10, 1));
  const auto wide = Ids(SearchAll(*index, 10, 16));
  EXPECT_NE(narrow, wide);
  const auto exact = Ids(SearchAll(*Build("Flat", 1), 10, 1));
  EXPECT_EQ(wide, exact);  // all 16 lists probed: exhaustive
}

TEST(ShardedIndexTest, ConcurrentSearchesWithDifferentNprobeDoNotInterfere) {
  for (const std::string spec : {"IVF16,PQ4x4", "OPQ4,IVF16,PQ4x4", "IVF16,PQ4x4fs"}) {
    const auto index = Build(spec, 2);
    const std::vector<int> nprobes = {1, 2, 4, 16};
    std::vector<std::vector<std::vector<int64_t>>> expected;
    for (int nprobe : nprobes) expected.push_back(Ids(SearchAll(*index, 5, nprobe)));
    std::vector<int> mismatches(nprobes.size(), 0);
    std::vector<std::thread> threads;
    for (size_t t = 0; t < nprobes.size(); ++t) {
      threads.emplace_back([&, t] {
        for (int round = 0; round < 10; ++round) {
          if (Ids(SearchAll(*index, 5, nprobes[t])) != expected[t]) ++mismatches[t];
        }
      });
    }
    for (auto& thread : threads) thread.join();
    EXPECT_THAT(mismatches, ::testing::Each(0)) << spec;
  }
}

TEST(ShardedIndexTest, MinScoreDropsWeakHits) {
  const auto index = Build("Flat", 2);
  const std::vector<float> queries = RandomRows(kQueries, kDim, 2);
  auto hits = index->Search(queries, Params(50, 1, 0.6f));
  ASSERT_TRUE(hits.ok());
  size_t total = 0;
  for (const HitList& list : *hits) {
    total += list.size();
    for (const Hit& hit : list) EXPECT_GE(hit.score, 0.6f);
  }
  EXPECT_GT(total, 0u);
  EXPECT_LT(total, static_cast<size_t>(50 * kQueries));
}

TEST(ShardedIndexTest, L2RanksSmallestDistanceFirst) {
  const auto index = Build("Flat", 3, Metric::kL2);
  for (const HitList& list : SearchAll(*index, 10, 1)) {
    ASSERT_EQ(list.size(), 10u);
    for (size_t r = 1; r < list.size(); ++r) EXPECT_LE(list[r - 1].score, list[r].score);
  }
}

TEST(ShardedIndexTest, RejectsBadArguments) {
  const auto index = Build("Flat", 2);
  const std::vector<float> query = RandomRows(1, kDim, 3);
  EXPECT_EQ(index->Search(query, Params(0, 1)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(index->Search(query, Params(5, 0)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(index->Search(std::span(query).first(kDim - 1), Params(5, 1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(index->SearchShard(2, query, Params(5, 1)).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(index->Add(query, SequentialIds(2)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ShardedIndex::Train({"NoSuchIndex", Metric::kL2, kDim}, query, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ShardedIndex::Train({"Flat", Metric::kL2, kDim}, query, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

std::set<int64_t> AllIdsFound(const ShardedIndex& index) {
  std::set<int64_t> found;
  const std::vector<float> queries = RandomRows(kQueries, kDim, 2);
  auto hits = index.Search(queries, Params(static_cast<int>(kBase), 16));
  EXPECT_TRUE(hits.ok());
  for (const HitList& list : *hits) {
    for (const Hit& hit : list) found.insert(hit.id);
  }
  return found;
}

TEST(ErasureTest, RemovedIdsNeverComeBackIncludingAfterSaveAndLoad) {
  testing::ScratchDir scratch;
  for (const std::string spec : {"Flat", "IVF16,PQ4x4", "OPQ4,IVF16,PQ4x4"}) {
    const auto index = Build(spec, 3);
    ASSERT_EQ(AllIdsFound(*index).size(), static_cast<size_t>(kBase)) << spec;
    const std::vector<int64_t> erased = {0, 7, 1234, 1999, 5000000};
    auto removed = index->Remove(erased);
    ASSERT_TRUE(removed.ok()) << removed.status();
    EXPECT_EQ(*removed, 4);  // 5000000 was never stored but stays barred
    EXPECT_EQ(index->TotalSize(), kBase - 4);
    std::set<int64_t> found = AllIdsFound(*index);
    EXPECT_EQ(found.size(), static_cast<size_t>(kBase - 4));
    for (int64_t id : erased) EXPECT_FALSE(found.contains(id)) << spec << " id " << id;

    const std::vector<float> vector = RandomRows(1, kDim, 9);
    const std::vector<int64_t> again = {1234};
    EXPECT_EQ(index->Add(vector, again).code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(index->Add(vector, std::vector<int64_t>{5000000}).code(),
              absl::StatusCode::kFailedPrecondition);

    const auto dir = scratch.path() / "gen";
    ASSERT_TRUE(WriteGeneration(*index, 2, dir).ok());
    auto loaded = LoadGeneration(dir);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_THAT((*loaded)->erased_ids(), ::testing::ElementsAre(0, 7, 1234, 1999, 5000000));
    found = AllIdsFound(**loaded);
    EXPECT_EQ(found.size(), static_cast<size_t>(kBase - 4));
    for (int64_t id : erased) EXPECT_FALSE(found.contains(id)) << spec << " id " << id;
    EXPECT_EQ((*loaded)->Add(vector, again).code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_TRUE((*loaded)->Add(vector, std::vector<int64_t>{6000000}).ok());
  }
}

TEST(ErasureTest, FastScanSpecsRefuseRemovalInsteadOfCrashing) {
  const auto index = Build("IVF16,PQ4x4fs", 2);
  const std::vector<int64_t> ids = {1, 2};
  EXPECT_EQ(index->Remove(ids).status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(index->TotalSize(), kBase);
  EXPECT_TRUE(index->erased_ids().empty());
}

}  // namespace
}  // namespace probity::index
