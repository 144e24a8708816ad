// The operator tools end to end: probity gen/build/search/eval as separate processes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli_test_util.h"
#include "probity/index/embedding_io.h"
#include "probity/index/generation.h"
#include "probity/index/gpu.h"
#include "test_data.h"

namespace probity::index {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::RunProbity;

// Measured 0.833 at nprobe 16 (IVF64,PQ32, L2, 2 shards, trained on all 10,000 base vectors);
// the floor leaves room for run-to-run noise of FAISS's multithreaded k-means but fails a real
// regression.
constexpr double kSiftRecallFloor = 0.78;

fs::path SiftDir() {
  const char* source = std::getenv("PROBITY_SOURCE_DIR");
  return fs::path(source != nullptr ? source : ".") / ".." / "shared" / "data" / "siftsmall";
}

TEST(IndexCliTest, EverySubcommandHasHelp) {
  testing::ScratchDir scratch;
  for (const std::string command :
       {"gen", "build", "train", "build-shard", "assemble", "plan", "search", "eval"}) {
    const auto result = RunProbity(command + " --help", scratch.path());
    EXPECT_EQ(result.exit_code, 0) << command;
    EXPECT_THAT(result.output, HasSubstr("Usage:")) << command;
    EXPECT_THAT(result.output, HasSubstr("--")) << command;
  }
}

TEST(IndexCliTest, SiftSmallIvfPqRecallFromEvalStaysAboveTheMeasuredFloor) {
  const fs::path sift = SiftDir();
  if (!fs::exists(sift / "siftsmall_base.fvecs")) GTEST_SKIP() << "siftsmall is absent";
  testing::ScratchDir scratch;
  const fs::path generation = scratch.path() / "sift-gen";
  auto result = RunProbity("build --input " + (sift / "siftsmall_base.fvecs").string() +
                               " --spec IVF64,PQ32 --metric l2 --shards 2 --train-size 10000 "
                               "--output " +
                               generation.string(),
                           scratch.path());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, HasSubstr("vectors/s"));
  EXPECT_THAT(result.output, HasSubstr("ETA"));
  const fs::path csv = scratch.path() / "sift.csv";
  result = RunProbity("eval --generation " + generation.string() + " --queries " +
                          (sift / "siftsmall_query.fvecs").string() + " --groundtruth " +
                          (sift / "siftsmall_groundtruth.ivecs").string() +
                          " --k 10 --nprobe 1,4,16 --csv " + csv.string(),
                      scratch.path());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  std::cout << result.output;
  EXPECT_THAT(result.output, HasSubstr("recall@10"));
  const auto rows = testing::ReadEvalCsv(csv);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[2].nprobe, 16);
  EXPECT_GE(rows[2].recall, kSiftRecallFloor);
  EXPECT_LE(rows[0].recall, rows[2].recall);
}

TEST(IndexCliTest, FailedRebuildLeavesTheExistingGenerationIntact) {
  testing::ScratchDir scratch;
  auto result = RunProbity("gen --out " + (scratch.path() / "data").string() +
                               " --identities 100 --images-per-identity 5 --queries 20 --dim 32 "
                               "--intrinsic-dim 16 --ground-truth-k 10",
                           scratch.path());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const std::string input = (scratch.path() / "data" / "gallery.fbin").string();
  const fs::path generation = scratch.path() / "gen";
  result = RunProbity(
      "build --input " + input + " --spec IVF8,Flat --shards 2 --output " + generation.string(),
      scratch.path());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  auto before = ReadManifest(generation);
  ASSERT_TRUE(before.ok());

  result = RunProbity("build --input " + input + " --spec NotASpec --output " +
                          generation.string() + " --generation 2",
                      scratch.path());
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.output, HasSubstr("NotASpec"));
  auto after = ReadManifest(generation);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->generation, 1);
  EXPECT_EQ(after->shards[0].sha256, before->shards[0].sha256);

  result = RunProbity("build --input " + input + " --spec Flat --shards 3 --output " +
                          generation.string() + " --generation 2",
                      scratch.path());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  after = ReadManifest(generation);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->generation, 2);
  EXPECT_EQ(after->shards.size(), 3u);

  result = RunProbity("search --generation " + generation.string() + " --queries " +
                          (scratch.path() / "data" / "queries.fbin").string() + " --k 5",
                      scratch.path());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, HasSubstr("rank"));
}

// The cluster steps as separate processes (one through JOB_COMPLETION_INDEX, as an Indexed Job
// runs it) give the same search results as the one-command build with several workers.
TEST(IndexCliTest, TrainBuildShardAssembleEqualTheOneCommandBuild) {
  testing::ScratchDir scratch;
  auto result = RunProbity("gen --out " + (scratch.path() / "data").string() +
                               " --identities 150 --images-per-identity 6 --queries 20 --dim 32 "
                               "--intrinsic-dim 16 --ground-truth-k 10",
                           scratch.path());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const std::string input = (scratch.path() / "data" / "gallery.fbin").string();
  const std::string queries = (scratch.path() / "data" / "queries.fbin").string();
  const std::string work = (scratch.path() / "work").string();
  const std::string flags = " --spec IVF8,PQ8 --shards 3 --train-size 500";
  result = RunProbity("build --input " + input + flags + " --workers 2 --output " +
                          (scratch.path() / "one").string(),
                      scratch.path());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, HasSubstr("900 vectors in 3 shards"));

  result = RunProbity("train --input " + input + flags + " --work-dir " + work, scratch.path());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, HasSubstr("for 3 shards"));
  result =
      RunProbity("assemble --work-dir " + work + " --output " + (scratch.path() / "steps").string(),
                 scratch.path());
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.output, HasSubstr("shard 0 of 3 has not been built"));
  for (const std::string shard : {"--shard 0", "--shard 1"}) {
    result = RunProbity("build-shard --work-dir " + work + " " + shard, scratch.path());
    ASSERT_EQ(result.exit_code, 0) << result.output;
    EXPECT_THAT(result.output, HasSubstr(", built,"));
  }
  result = RunProbity("build-shard --work-dir " + work, scratch.path());
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.output, HasSubstr("JOB_COMPLETION_INDEX"));
  ASSERT_EQ(std::system(("JOB_COMPLETION_INDEX=2 " + testing::ProbityBinary() +
                         " build-shard --work-dir " + work + " > /dev/null 2>&1")
                            .c_str()),
            0);
  result = RunProbity("build-shard --work-dir " + work + " --shard 1", scratch.path());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, HasSubstr("already built (verified, left untouched)"));
  result =
      RunProbity("assemble --work-dir " + work + " --output " + (scratch.path() / "steps").string(),
                 scratch.path());
  ASSERT_EQ(result.exit_code, 0) << result.output;

  std::string answers[2];
  for (int i = 0; i < 2; ++i) {
    result =
        RunProbity("search --generation " + (scratch.path() / (i == 0 ? "one" : "steps")).string() +
                       " --queries " + queries + " --count 20 --k 5 --nprobe 8",
                   scratch.path());
    ASSERT_EQ(result.exit_code, 0) << result.output;
    answers[i] = result.output;
  }
  EXPECT_THAT(answers[0], HasSubstr("rank"));
  EXPECT_EQ(answers[0], answers[1]);
}

TEST(IndexCliTest, PlanPrintsTextAndJson) {
  testing::ScratchDir scratch;
  const std::string request =
      "plan --vectors 3000000000 --dim 512 --spec IVF1048576_HNSW32,PQ64 --gpu-memory-gib 80 "
      "--gpus-per-server 8 --host-ram-gib 1024";
  auto result = RunProbity(request, scratch.path());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, HasSubstr("coarse quantizer in every shard"));
  EXPECT_THAT(result.output, HasSubstr("measured on an H200"));
  result = RunProbity(request + " --json", scratch.path());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, HasSubstr("\"shards\":"));
  result = RunProbity("plan --vectors 10 --dim 512 --spec HNSW32", scratch.path());
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.output, HasSubstr("IVF<nlist>"));
}

TEST(IndexCliTest, BadInputFailsWithTheFileAndOffset) {
  testing::ScratchDir scratch;
  const fs::path input = scratch.path() / "bad.fvecs";
  ASSERT_TRUE(WriteFloatMatrix(input, 8, testing::RandomRows(50, 8, 1)).ok());
  fs::resize_file(input, fs::file_size(input) - 5);
  const auto result = RunProbity("build --input " + input.string() + " --spec Flat --output " +
                                     (scratch.path() / "gen").string(),
                                 scratch.path());
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.output, HasSubstr(input.string() + ": offset 1764: truncated"));
  EXPECT_FALSE(fs::exists(scratch.path() / "gen"));
}

TEST(IndexCliTest, BuildRefusesTooFewTrainingVectorsForTheListsAndWritesNothing) {
  testing::ScratchDir scratch;
  auto result = RunProbity("gen --out " + (scratch.path() / "data").string() +
                               " --identities 50 --images-per-identity 4 --queries 10 --dim 16 "
                               "--intrinsic-dim 8 --ground-truth-k 10",
                           scratch.path());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  // A synthetic gallery is written owner-only, as a real one must be.
  EXPECT_EQ(fs::status(scratch.path() / "data").permissions(), fs::perms::owner_all);
  EXPECT_EQ(fs::status(scratch.path() / "data" / "gallery.fbin").permissions(),
            fs::perms::owner_read | fs::perms::owner_write);
  const fs::path generation = scratch.path() / "gen";
  result = RunProbity("build --input " + (scratch.path() / "data" / "gallery.fbin").string() +
                          " --spec IVF8,PQ4 --output " + generation.string(),
                      scratch.path());
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_THAT(result.output, HasSubstr("39 x 8 = 312 training vectors, got 200"));
  EXPECT_FALSE(fs::exists(generation));
}

TEST(IndexCliTest, BuildOnAGpuIsRefusedWithoutOneAndWritesNothing) {
  if (GpuBuild() && GpuDeviceCount() > 0) {
    GTEST_SKIP() << "this build has GPU support and this machine has a GPU";
  }
  testing::ScratchDir scratch;
  auto result = RunProbity("gen --out " + (scratch.path() / "data").string() +
                               " --identities 80 --images-per-identity 4 --queries 10 --dim 16 "
                               "--intrinsic-dim 8 --ground-truth-k 10",
                           scratch.path());
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const fs::path generation = scratch.path() / "gen";
  result = RunProbity("build --input " + (scratch.path() / "data" / "gallery.fbin").string() +
                          " --spec IVF8,PQ4 --gpu 0 --output " + generation.string(),
                      scratch.path());
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_THAT(result.output, HasSubstr("GPU 0"));
  EXPECT_FALSE(fs::exists(generation));
}

}  // namespace
}  // namespace probity::index
