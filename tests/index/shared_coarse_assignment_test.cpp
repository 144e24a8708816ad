// ShardedIndex runs the coarse search once per batch for shards with identical quantizers, and
// per shard otherwise; both must give the same ids and scores.
#include <faiss/Index.h>
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <span>
#include <string>

#include "faiss_search.h"
#include "probity/index/generation.h"
#include "probity/index/sharded_index.h"
#include "test_data.h"

namespace probity::index {
namespace {

using testing::RandomRows;
using testing::SequentialIds;

const bool kSingleThreaded = testing::UseOneThread();

constexpr int kDim = 16;
constexpr int64_t kBase = 2000;
constexpr int64_t kQueries = 40;

std::unique_ptr<ShardedIndex> Build(const std::string& factory, int shards, uint64_t seed = 1) {
  const std::vector<float> base = RandomRows(kBase, kDim, seed);
  auto index = ShardedIndex::Train({factory, Metric::kInnerProduct, kDim}, base, shards);
  EXPECT_TRUE(index.ok()) << index.status();
  EXPECT_TRUE((*index)->Add(base, SequentialIds(kBase)).ok());
  return *std::move(index);
}

SearchParams Params(int k, int nprobe) {
  SearchParams params;
  params.k = k;
  params.nprobe = nprobe;
  return params;
}

std::vector<HitList> SearchAll(const ShardedIndex& index, int nprobe = 4) {
  const std::vector<float> queries = RandomRows(kQueries, kDim, 2);
  auto hits = index.Search(queries, Params(10, nprobe));
  EXPECT_TRUE(hits.ok()) << hits.status();
  return hits.ok() ? *hits : std::vector<HitList>{};
}

// What a router would get from these shards one by one (SearchShard, then MergeTopK), in
// batches of 10 queries: FAISS computes a flat quantizer's scores with BLAS from 20 queries per
// call and directly below, which differ in the last bit, and Search splits these 40 queries
// into blocks of at most 10 (with one thread; fewer with more), so both stay below 20.
std::vector<HitList> MergeOfShardSearches(const ShardedIndex& index, int nprobe = 4) {
  constexpr int64_t kBatch = 10;
  const std::vector<float> queries = RandomRows(kQueries, kDim, 2);
  std::vector<HitList> merged;
  for (int64_t first = 0; first < kQueries; first += kBatch) {
    const auto batch = std::span<const float>(queries).subspan(first * kDim, kBatch * kDim);
    std::vector<std::vector<HitList>> per_shard;
    for (int s = 0; s < index.num_shards(); ++s) {
      if (!index.HasShard(s)) continue;
      auto hits = index.SearchShard(s, batch, Params(10, nprobe));
      EXPECT_TRUE(hits.ok()) << hits.status();
      if (hits.ok()) per_shard.push_back(*hits);
    }
    for (HitList& hits : MergeTopK(per_shard, 10, index.spec().metric)) {
      merged.push_back(std::move(hits));
    }
  }
  return merged;
}

void ExpectIdentical(const std::vector<HitList>& actual, const std::vector<HitList>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t q = 0; q < expected.size(); ++q) {
    ASSERT_EQ(actual[q].size(), expected[q].size()) << "query " << q;
    for (size_t r = 0; r < expected[q].size(); ++r) {
      EXPECT_EQ(actual[q][r].id, expected[q][r].id) << "query " << q << " rank " << r;
      EXPECT_EQ(actual[q][r].score, expected[q][r].score) << "query " << q << " rank " << r;
      EXPECT_EQ(actual[q][r].shard, expected[q][r].shard) << "query " << q << " rank " << r;
    }
  }
}

class SharedAssignmentTest : public ::testing::TestWithParam<std::string> {};

TEST_P(SharedAssignmentTest, EqualsPerShardSearchExactlyWithOneAndSeveralThreads) {
  const auto index = Build(GetParam(), 8);
  ASSERT_TRUE(index->SharesCoarseAssignment()) << "8 shards of one training";
  for (int threads : {1, 3}) {
    omp_set_num_threads(threads);
    for (int nprobe : {1, 4, 16, 40}) {  // 40: more than the 16 lists
      index->SetShareCoarseAssignment(true);
      const std::vector<HitList> shared = SearchAll(*index, nprobe);
      index->SetShareCoarseAssignment(false);
      EXPECT_FALSE(index->SharesCoarseAssignment());
      const std::vector<HitList> per_shard = SearchAll(*index, nprobe);
      ASSERT_EQ(shared.size(), static_cast<size_t>(kQueries));
      ASSERT_FALSE(shared[0].empty());
      SCOPED_TRACE(::testing::Message() << threads << " threads, nprobe " << nprobe);
      {
        SCOPED_TRACE("against Search without the shared assignment");
        ExpectIdentical(shared, per_shard);
      }
      {
        SCOPED_TRACE("against SearchShard on each shard, merged");
        ExpectIdentical(shared, MergeOfShardSearches(*index, nprobe));
      }
    }
  }
  omp_set_num_threads(1);
}

INSTANTIATE_TEST_SUITE_P(Specs, SharedAssignmentTest,
                         ::testing::Values("IVF16,Flat", "IVF16,PQ4x4", "IVF16_HNSW32,PQ4x4",
                                           "OPQ4,IVF16,PQ4x4", "IVF16,SQ8"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace_if(
                               name.begin(), name.end(), [](char c) { return !isalnum(c); }, '_');
                           return name;
                         });

TEST(SharedAssignmentTest, ShardsOfDifferentTrainingsAreSearchedOneByOne) {
  const auto first = Build("IVF16,PQ4x4", 2, 1);
  const auto second = Build("IVF16,PQ4x4", 2, 3);  // other data: other centroids
  std::vector<std::unique_ptr<faiss::Index>> shards;
  shards.push_back(internal::CopyIndex(first->shard_index(0)));
  shards.push_back(internal::CopyIndex(second->shard_index(1)));
  auto mixed = ShardedIndex::FromShards(first->spec(), std::move(shards), {});
  ASSERT_TRUE(mixed.ok()) << mixed.status();
  EXPECT_FALSE((*mixed)->SharesCoarseAssignment());
  const std::vector<HitList> hits = SearchAll(**mixed);
  ASSERT_FALSE(hits[0].empty());
  ExpectIdentical(hits, MergeOfShardSearches(**mixed));

  // The same shards twice: identical quantizers again.
  std::vector<std::unique_ptr<faiss::Index>> same;
  same.push_back(internal::CopyIndex(first->shard_index(0)));
  same.push_back(internal::CopyIndex(first->shard_index(1)));
  auto rebuilt = ShardedIndex::FromShards(first->spec(), std::move(same), {});
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status();
  EXPECT_TRUE((*rebuilt)->SharesCoarseAssignment());
}

TEST(SharedAssignmentTest, OnlyForTwoOrMoreIvfShardsThatTakeAPreassignedSearch) {
  EXPECT_FALSE(Build("IVF16,PQ4x4", 1)->SharesCoarseAssignment()) << "one shard: nothing to share";
  EXPECT_FALSE(Build("Flat", 3)->SharesCoarseAssignment()) << "no coarse quantizer";
  // Fast-scan lists have no search_preassigned in FAISS 1.7.3.
  const auto fast_scan = Build("IVF16,PQ4x4fs", 3);
  EXPECT_FALSE(fast_scan->SharesCoarseAssignment());
  ExpectIdentical(SearchAll(*fast_scan), MergeOfShardSearches(*fast_scan));
}

TEST(SharedAssignmentTest, SearchShardsAnswersEachListedShardAsSearchShardDoes) {
  const auto index = Build("IVF16,PQ4x4", 6);
  // 10 queries: below the 20 from which FAISS scores a flat quantizer with BLAS (see above).
  const std::vector<float> queries = RandomRows(10, kDim, 2);
  const std::vector<int> listed = {4, 0, 5};  // a subset, out of order
  for (bool share : {true, false}) {
    index->SetShareCoarseAssignment(share);
    SCOPED_TRACE(share ? "shared assignment" : "each shard on its own");
    auto together = index->SearchShards(listed, queries, Params(10, 4));
    ASSERT_TRUE(together.ok()) << together.status();
    ASSERT_EQ(together->size(), listed.size());
    for (size_t i = 0; i < listed.size(); ++i) {
      SCOPED_TRACE(::testing::Message() << "shard " << listed[i]);
      auto alone = index->SearchShard(listed[i], queries, Params(10, 4));
      ASSERT_TRUE(alone.ok()) << alone.status();
      ASSERT_FALSE((*alone)[0].empty());
      ExpectIdentical((*together)[i], *alone);
    }
  }
  const std::vector<int> none;
  EXPECT_EQ(index->SearchShards(none, queries, Params(10, 4)).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::vector<int> beyond = {0, 6};
  EXPECT_EQ(index->SearchShards(beyond, queries, Params(10, 4)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(index->SearchShards(listed, queries, Params(0, 4)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SharedAssignmentTest, SurvivesEraseAddAndGenerationReload) {
  const std::vector<float> base = RandomRows(kBase, kDim, 1);
  auto built = ShardedIndex::Train({"IVF16_HNSW32,PQ4x4", Metric::kInnerProduct, kDim}, base, 4);
  ASSERT_TRUE(built.ok()) << built.status();
  auto& index = **built;
  const int64_t first_part = 1500;
  ASSERT_TRUE(
      index.Add(std::span<const float>(base).first(first_part * kDim), SequentialIds(first_part))
          .ok());
  // Erase the best hit of every query, then add the rest of the gallery.
  std::vector<int64_t> erased;
  for (const HitList& hits : SearchAll(index)) erased.push_back(hits.front().id);
  ASSERT_TRUE(index.Remove(erased).ok());
  ASSERT_TRUE(index
                  .Add(std::span<const float>(base).subspan(first_part * kDim),
                       SequentialIds(kBase - first_part, first_part))
                  .ok());
  EXPECT_TRUE(index.SharesCoarseAssignment());
  const std::vector<HitList> after = SearchAll(index);
  for (const HitList& hits : after) {
    for (const Hit& hit : hits) {
      EXPECT_FALSE(std::count(erased.begin(), erased.end(), hit.id)) << "erased id " << hit.id;
    }
  }
  ExpectIdentical(after, MergeOfShardSearches(index));

  testing::ScratchDir dir;
  ASSERT_TRUE(WriteGeneration(index, 2, dir.path() / "gen-2").ok());
  auto loaded = LoadGeneration(dir.path() / "gen-2");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE((*loaded)->SharesCoarseAssignment());
  ExpectIdentical(SearchAll(**loaded), after);

  // A shard server's share: the loaded shards still share, placeholders are skipped.
  auto share = LoadGenerationShards(dir.path() / "gen-2", {0, 2});
  ASSERT_TRUE(share.ok()) << share.status();
  EXPECT_TRUE((*share)->SharesCoarseAssignment());
  ExpectIdentical(SearchAll(**share), MergeOfShardSearches(**share));
  const std::vector<int> held = {0, 2}, not_held = {0, 1};
  const std::vector<float> queries = RandomRows(10, kDim, 2);
  EXPECT_TRUE((*share)->SearchShards(held, queries, Params(10, 4)).ok());
  EXPECT_EQ((*share)->SearchShards(not_held, queries, Params(10, 4)).status().code(),
            absl::StatusCode::kFailedPrecondition)
      << "shard 1 is another server's";
  auto single = LoadGenerationShards(dir.path() / "gen-2", {1});
  ASSERT_TRUE(single.ok()) << single.status();
  EXPECT_FALSE((*single)->SharesCoarseAssignment());
}

}  // namespace
}  // namespace probity::index
