// The acceptance run: probity eval on a 200,000-image synthetic face-like gallery prints
// recall@10 and identity hit rate at rank 10 for nprobe 1, 4, 16, 64, rising with nprobe.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <iostream>

#include "cli_test_util.h"
#include "test_data.h"

namespace probity::index {
namespace {

using ::testing::HasSubstr;
using testing::RunProbity;

TEST(SyntheticGalleryTest, EvalOn200kImagesImprovesWithNprobe) {
  testing::ScratchDir scratch;
  const auto data = scratch.path() / "data";
  auto result = RunProbity("gen --out " + data.string() +
                               " --identities 20000 --images-per-identity 10 --queries 1000 "
                               "--dim 512 --ground-truth-k 10 --seed 7",
                           scratch.path());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto generation = scratch.path() / "gen";
  result = RunProbity("build --input " + (data / "gallery.fbin").string() +
                          " --spec IVF1024,PQ64 --shards 2 --train-size 50000 --output " +
                          generation.string(),
                      scratch.path());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, HasSubstr("200000 vectors in 2 shards"));
  const auto csv = scratch.path() / "eval.csv";
  result = RunProbity("eval --generation " + generation.string() + " --queries " +
                          (data / "queries.fbin").string() + " --groundtruth " +
                          (data / "groundtruth.ibin").string() + " --gallery-labels " +
                          (data / "gallery_labels.ibin").string() + " --query-labels " +
                          (data / "query_labels.ibin").string() +
                          " --k 10 --nprobe 1,4,16,64 --csv " + csv.string(),
                      scratch.path());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  std::cout << result.output;
  EXPECT_THAT(result.output, HasSubstr("recall@10"));
  EXPECT_THAT(result.output, HasSubstr("identity_hit@10"));
  const auto rows = testing::ReadEvalCsv(csv);
  ASSERT_EQ(rows.size(), 4u);
  for (size_t i = 1; i < rows.size(); ++i) {
    EXPECT_GT(rows[i].recall, rows[i - 1].recall) << "nprobe " << rows[i].nprobe;
    EXPECT_GE(rows[i].identity_hit, rows[i - 1].identity_hit) << "nprobe " << rows[i].nprobe;
  }
  EXPECT_LT(rows[0].identity_hit, rows[3].identity_hit);
}

}  // namespace
}  // namespace probity::index
