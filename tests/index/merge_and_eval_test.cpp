#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "probity/index/evaluation.h"
#include "probity/index/progress.h"
#include "probity/index/types.h"

namespace probity::index {
namespace {

using ::testing::HasSubstr;

std::vector<int64_t> Ids(const HitList& hits) {
  std::vector<int64_t> ids;
  for (const Hit& hit : hits) ids.push_back(hit.id);
  return ids;
}

TEST(MergeTopKTest, OrdersByScoreThenIdForInnerProduct) {
  const std::vector<std::vector<HitList>> per_shard = {
      {{{5, 0.9f, 0}, {7, 0.5f, 0}}},
      {{{3, 0.5f, 1}, {9, 0.95f, 1}}},
      {{{1, 0.1f, 2}}},
  };
  const auto merged = MergeTopK(per_shard, 3, Metric::kInnerProduct);
  ASSERT_EQ(merged.size(), 1u);
  EXPECT_THAT(Ids(merged[0]), ::testing::ElementsAre(9, 5, 3));
  EXPECT_EQ(merged[0][2].shard, 1u);
}

TEST(MergeTopKTest, OrdersSmallestDistanceFirstForL2AndKeepsShortLists) {
  const std::vector<std::vector<HitList>> per_shard = {
      {{{5, 2.0f, 0}}, {}},
      {{{3, 1.0f, 1}, {4, 2.0f, 1}}, {{8, 0.5f, 1}}},
  };
  const auto merged = MergeTopK(per_shard, 10, Metric::kL2);
  ASSERT_EQ(merged.size(), 2u);
  EXPECT_THAT(Ids(merged[0]), ::testing::ElementsAre(3, 4, 5));
  EXPECT_THAT(Ids(merged[1]), ::testing::ElementsAre(8));
}

TEST(IndexMetricTest, ParsesItsOwnNames) {
  EXPECT_EQ(*ParseMetric(MetricName(Metric::kL2)), Metric::kL2);
  EXPECT_EQ(*ParseMetric(MetricName(Metric::kInnerProduct)), Metric::kInnerProduct);
  EXPECT_FALSE(ParseMetric("cosine").ok());
}

TEST(EvaluationTest, RecallAndIdentityHitRate) {
  const std::vector<HitList> results = {
      {{1, 0, 0}, {2, 0, 0}, {9, 0, 0}},
      {{7, 0, 0}, {8, 0, 0}, {3, 0, 0}},
  };
  const std::vector<int64_t> truth = {1, 2, 3, 4, 5, 6, 7, 8};  // 2 queries x 4
  EXPECT_DOUBLE_EQ(RecallAtK(results, truth, 4, 2), (1.0 + 0.0) / 2);
  EXPECT_DOUBLE_EQ(RecallAtK(results, truth, 4, 3), (2.0 / 3 + 1.0 / 3) / 2);
  const std::vector<int64_t> gallery_labels = {0, 10, 10, 11, 11, 12, 12, 13, 13, 14};
  const std::vector<int64_t> query_labels = {14, 11};
  EXPECT_DOUBLE_EQ(IdentityHitRate(results, gallery_labels, query_labels, 2), 0.0);
  EXPECT_DOUBLE_EQ(IdentityHitRate(results, gallery_labels, query_labels, 3), 1.0);
}

TEST(EvaluationTest, TableAndCsvCarryEveryRow) {
  const std::vector<EvalRow> rows = {{1, 0.5, 0.75, 1000, 1}, {4, 0.8, -1, 500, 2}};
  const std::string table = FormatEvalTable(rows, 10);
  EXPECT_THAT(table, HasSubstr("recall@10"));
  EXPECT_THAT(table, HasSubstr("0.7500"));
  const std::string csv = FormatEvalCsv(rows, 10);
  EXPECT_THAT(csv, HasSubstr("nprobe,recall_at_10,identity_hit_at_10,qps,ms_per_query\n"));
  EXPECT_THAT(csv, HasSubstr("1,0.500000,0.750000,1000.000,1.000000\n"));
  EXPECT_THAT(csv, HasSubstr("4,0.800000,,500.000,2.000000\n"));
}

TEST(ProgressBarTest, ShowsRateAndTimeLeft) {
  const std::string line = ProgressBar::Render("adding", 250, 1000, "vectors", 5.0);
  EXPECT_THAT(line, HasSubstr(" 25% 250/1000 vectors 50.0/s"));
  EXPECT_THAT(line, HasSubstr("elapsed 00:05 ETA 00:15"));
  EXPECT_EQ(ProgressBar::FormatDuration(3725), "1:02:05");
  std::ostringstream out;
  {
    ProgressBar bar("train", 2, "steps", out);
    bar.Advance(2);
  }
  EXPECT_THAT(out.str(), HasSubstr("100% 2/2 steps"));
  EXPECT_EQ(out.str().back(), '\n');
}

}  // namespace
}  // namespace probity::index
