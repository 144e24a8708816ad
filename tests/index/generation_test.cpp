#include "probity/index/generation.h"

#include <faiss/Index.h>
#include <faiss/IndexIVF.h>
#include <faiss/index_io.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "faiss_search.h"
#include "test_data.h"

namespace probity::index {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const bool kSingleThreaded = testing::UseOneThread();
constexpr int kDim = 16;
constexpr int64_t kBase = 2000;

std::unique_ptr<ShardedIndex> Build(const std::string& factory, int shards) {
  const std::vector<float> base = testing::RandomRows(kBase, kDim, 1);
  auto index = ShardedIndex::Train({factory, Metric::kInnerProduct, kDim}, base, shards);
  EXPECT_TRUE(index.ok()) << index.status();
  EXPECT_TRUE((*index)->Add(base, testing::SequentialIds(kBase)).ok());
  return *std::move(index);
}

SearchParams Params(int k, int nprobe) {
  SearchParams params;
  params.k = k;
  params.nprobe = nprobe;
  return params;
}

void FlipByte(const fs::path& path, int64_t offset) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekg(offset);
  char byte = 0;
  file.get(byte);
  file.seekp(offset);
  file.put(static_cast<char>(byte ^ 0x01));
}

TEST(GenerationTest, RoundTripKeepsSpecCountsAndResults) {
  testing::ScratchDir scratch;
  const auto index = Build("IVF16,PQ4x4", 3);
  const fs::path dir = scratch.path() / "gen-7";
  ASSERT_TRUE(WriteGeneration(*index, 7, dir).ok());

  auto manifest = ReadManifest(dir);
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_EQ(manifest->generation, 7);
  EXPECT_EQ(manifest->spec.factory, "IVF16,PQ4x4");
  EXPECT_EQ(manifest->spec.metric, Metric::kInnerProduct);
  EXPECT_EQ(manifest->spec.dim, kDim);
  EXPECT_THAT(manifest->created_at, ::testing::MatchesRegex("[0-9-]+T[0-9:]+Z"));
  ASSERT_EQ(manifest->shards.size(), 3u);
  for (int s = 0; s < 3; ++s) {
    EXPECT_EQ(manifest->shards[s].count, index->ShardSize(s));
    EXPECT_EQ(manifest->shards[s].sha256.size(), 64u);
  }

  auto loaded = LoadGeneration(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->TotalSize(), kBase);
  const std::vector<float> queries = testing::RandomRows(20, kDim, 5);
  auto before = index->Search(queries, Params(10, 4));
  auto after = (*loaded)->Search(queries, Params(10, 4));
  ASSERT_TRUE(before.ok() && after.ok());
  for (size_t q = 0; q < before->size(); ++q) {
    ASSERT_EQ((*before)[q].size(), (*after)[q].size());
    for (size_t r = 0; r < (*before)[q].size(); ++r) {
      EXPECT_EQ((*before)[q][r].id, (*after)[q][r].id);
      EXPECT_EQ((*before)[q][r].score, (*after)[q][r].score);
    }
  }
  // No temporary directory is left next to the generation.
  int entries = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(scratch.path())) ++entries;
  EXPECT_EQ(entries, 1);
}

TEST(GenerationTest, ResultsEqualFaissCalledDirectlyOnTheShardFiles) {
  testing::ScratchDir scratch;
  for (const std::string spec : {"IVF16,PQ4x4", "OPQ4,IVF16,PQ4x4", "Flat"}) {
    const auto index = Build(spec, 2);
    const fs::path dir = scratch.path() / "gen";
    ASSERT_TRUE(WriteGeneration(*index, 1, dir).ok());
    auto manifest = ReadManifest(dir);
    ASSERT_TRUE(manifest.ok());
    const std::vector<float> queries = testing::RandomRows(20, kDim, 6);
    constexpr int k = 10;
    constexpr int nprobe = 3;
    for (int s = 0; s < 2; ++s) {
      std::unique_ptr<faiss::Index> direct(
          faiss::read_index((dir / manifest->shards[s].file).c_str()));
      if (auto* ivf = const_cast<faiss::IndexIVF*>(internal::FindIvf(*direct))) {
        ivf->nprobe = nprobe;
      }
      std::vector<float> distances(20 * k);
      std::vector<int64_t> labels(20 * k);
      direct->search(20, queries.data(), k, distances.data(), labels.data());
      // FAISS leaves equal scores in arbitrary order; Probity orders them by id.
      for (int q = 0; q < 20; ++q) {
        std::vector<std::pair<float, int64_t>> row;
        for (int r = 0; r < k; ++r) row.emplace_back(distances[q * k + r], labels[q * k + r]);
        std::stable_sort(row.begin(), row.end(), [&](const auto& a, const auto& b) {
          return a.first != b.first ? (a.first > b.first) : a.second < b.second;
        });
        for (int r = 0; r < k; ++r) std::tie(distances[q * k + r], labels[q * k + r]) = row[r];
      }
      auto ours = index->SearchShard(s, queries, Params(k, nprobe));
      ASSERT_TRUE(ours.ok());
      for (int q = 0; q < 20; ++q) {
        ASSERT_EQ((*ours)[q].size(), static_cast<size_t>(k)) << spec;
        for (int r = 0; r < k; ++r) {
          EXPECT_EQ((*ours)[q][r].id, labels[q * k + r]) << spec << " shard " << s;
          EXPECT_EQ((*ours)[q][r].score, distances[q * k + r]) << spec << " shard " << s;
        }
      }
    }
  }
}

TEST(GenerationTest, ChangedByteInAShardFileIsCaughtAndNamed) {
  testing::ScratchDir scratch;
  const auto index = Build("IVF16,Flat", 2);
  const fs::path dir = scratch.path() / "gen";
  ASSERT_TRUE(WriteGeneration(*index, 1, dir).ok());
  FlipByte(dir / "shard-0001.faissindex", 200);
  auto loaded = LoadGeneration(dir);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(loaded.status().message(), HasSubstr("shard-0001.faissindex"));
  EXPECT_THAT(loaded.status().message(), HasSubstr("SHA-256"));
  EXPECT_FALSE(ReadManifest(dir).ok());
  // A shard server that holds only the intact shard still loads it.
  auto partial = LoadGenerationShards(dir, {0});
  ASSERT_TRUE(partial.ok()) << partial.status();
  EXPECT_TRUE((*partial)->HasShard(0));
  EXPECT_FALSE((*partial)->HasShard(1));
  EXPECT_EQ(
      (*partial)->SearchShard(1, testing::RandomRows(1, kDim, 2), Params(5, 1)).status().code(),
      absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE((*partial)->Search(testing::RandomRows(1, kDim, 2), Params(5, 1)).ok());
}

TEST(GenerationTest, EditedErasureListAndMissingFilesAreCaught) {
  testing::ScratchDir scratch;
  const auto index = Build("Flat", 2);
  ASSERT_TRUE(index->Remove(std::vector<int64_t>{3, 4}).ok());
  const fs::path dir = scratch.path() / "gen";
  ASSERT_TRUE(WriteGeneration(*index, 1, dir).ok());
  {
    std::ofstream erased(dir / "erased-ids.txt", std::ios::trunc);
    erased << "3\n";  // someone tries to bring id 4 back
  }
  auto loaded = LoadGeneration(dir);
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(loaded.status().message(), HasSubstr("erased-ids.txt"));

  ASSERT_TRUE(WriteGeneration(*index, 1, dir).ok());  // rewriting replaces the bad generation
  ASSERT_TRUE(LoadGeneration(dir).ok());
  fs::remove(dir / "shard-0000.faissindex");
  loaded = LoadGeneration(dir);
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(loaded.status().message(), HasSubstr("shard-0000.faissindex"));
}

TEST(GenerationTest, RewritingAGenerationReplacesItWhole) {
  testing::ScratchDir scratch;
  const fs::path dir = scratch.path() / "gen";
  ASSERT_TRUE(WriteGeneration(*Build("Flat", 3), 1, dir).ok());
  ASSERT_TRUE(WriteGeneration(*Build("IVF16,Flat", 2), 2, dir).ok());
  auto manifest = ReadManifest(dir);
  ASSERT_TRUE(manifest.ok());
  EXPECT_EQ(manifest->generation, 2);
  EXPECT_EQ(manifest->shards.size(), 2u);
  EXPECT_FALSE(fs::exists(dir / "shard-0002.faissindex"));
  int entries = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(scratch.path())) ++entries;
  EXPECT_EQ(entries, 1);
}

TEST(GenerationTest, PythonFaissReadsTheShardFiles) {
  if (!fs::exists("/usr/bin/python3")) GTEST_SKIP() << "no /usr/bin/python3";
  if (std::system("/usr/bin/python3 -c 'import faiss' 2>/dev/null") != 0) {
    GTEST_SKIP() << "python3-faiss is not installed";
  }
  testing::ScratchDir scratch;
  const auto index = Build("IVF16,PQ4x4", 2);
  const fs::path dir = scratch.path() / "gen";
  ASSERT_TRUE(WriteGeneration(*index, 1, dir).ok());
  const std::string command =
      "/usr/bin/python3 -c \"import faiss, sys; "
      "print(faiss.read_index(sys.argv[1]).ntotal)\" " +
      (dir / "shard-0000.faissindex").string() + " > " + (scratch.path() / "out.txt").string();
  ASSERT_EQ(std::system(command.c_str()), 0);
  std::ifstream out(scratch.path() / "out.txt");
  int64_t ntotal = -1;
  out >> ntotal;
  EXPECT_EQ(ntotal, index->ShardSize(0));
}

}  // namespace
}  // namespace probity::index
