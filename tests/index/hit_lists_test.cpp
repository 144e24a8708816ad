// FAISS's result arrays as hit lists (index/src/hit_lists.h): what a single shard's search and
// a single GPU shard's Search return without a merge, so the order must already be final.
#include "hit_lists.h"

#include <gtest/gtest.h>

#include <vector>

namespace probity::index::internal {
namespace {

std::vector<int64_t> Ids(const HitList& hits) {
  std::vector<int64_t> ids;
  for (const Hit& hit : hits) ids.push_back(hit.id);
  return ids;
}

TEST(HitListsTest, PaddingIsDroppedAndEqualScoresAreOrderedById) {
  SearchParams params;
  params.k = 4;
  // Query 0: FAISS's order leaves a tie (ids 9 and 3) unsorted and pads with -1.
  // Query 1: nothing found.
  const std::vector<float> distances = {0.9f, 0.5f, 0.5f, -1e30f, 0, 0, 0, 0};
  const std::vector<int64_t> labels = {7, 9, 3, -1, -1, -1, -1, -1};
  const std::vector<HitList> hits =
      ToHitLists(2, 2, params, Metric::kInnerProduct, distances, labels);
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(Ids(hits[0]), (std::vector<int64_t>{7, 3, 9}));
  EXPECT_EQ(hits[0][0].shard, 2u);
  EXPECT_TRUE(hits[1].empty());
}

TEST(HitListsTest, MinScoreKeepsOnlyQualifyingHitsForEitherMetric) {
  SearchParams params;
  params.k = 3;
  params.min_score = 0.5f;
  const std::vector<int64_t> labels = {1, 2, 3};
  // Inner product: at least min_score; L2: at most min_score.
  EXPECT_EQ(Ids(ToHitLists(0, 1, params, Metric::kInnerProduct, {0.9f, 0.5f, 0.1f}, labels)[0]),
            (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(Ids(ToHitLists(0, 1, params, Metric::kL2, {0.1f, 0.5f, 0.9f}, labels)[0]),
            (std::vector<int64_t>{1, 2}));
}

}  // namespace
}  // namespace probity::index::internal
