// Galleries, erasure journals and served-generation state are created owner-only (directories
// 0700, files 0600) whatever the umask, and the start-up check finds what is not.
#include "probity/index/private_files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "common/scoped_temp_dir.h"
#include "probity/index/generation.h"
#include "probity/index/sharded_index.h"
#include "probity/service/catalog.h"

namespace probity::service::testing {
namespace {

namespace fs = std::filesystem;

mode_t ModeOf(const fs::path& path) {
  struct stat info {};
  EXPECT_EQ(::stat(path.c_str(), &info), 0) << path;
  return info.st_mode & 07777;
}

// A fresh directory; the process umask is 0 for the test (the most permissive), then put back.
class PrivateFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(root_.empty());
    old_umask_ = ::umask(0);
  }
  void TearDown() override { ::umask(old_umask_); }
  test_support::ScopedTempDir dir_{"probity-private"};
  const fs::path root_ = dir_.path();
  mode_t old_umask_ = 022;
};

TEST_F(PrivateFilesTest, GenerationsAreWrittenOwnerOnly) {
  constexpr int kDim = 8;
  std::mt19937 random(3);
  std::normal_distribution<float> normal;
  std::vector<float> vectors(400 * kDim);
  for (float& v : vectors) v = normal(random);
  std::vector<int64_t> ids(400);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int64_t>(i);
  auto index = index::ShardedIndex::Train({"IVF4,Flat", index::Metric::kL2, kDim}, vectors, 2);
  ASSERT_TRUE(index.ok()) << index.status();
  ASSERT_TRUE((*index)->Add(vectors, ids).ok());

  const fs::path generation = root_ / "collections" / "faces" / "gen-1";
  ASSERT_TRUE(index::WriteGeneration(**index, 1, generation).ok());
  EXPECT_EQ(ModeOf(root_ / "collections"), 0700u);
  EXPECT_EQ(ModeOf(root_ / "collections" / "faces"), 0700u);
  EXPECT_EQ(ModeOf(generation), 0700u);
  int files = 0;
  for (const auto& entry : fs::directory_iterator(generation)) {
    EXPECT_EQ(ModeOf(entry.path()), 0600u) << entry.path();
    ++files;
  }
  EXPECT_EQ(files, 4);  // two shards, the erased-ids list, the manifest
  EXPECT_TRUE(index::CheckOwnerOnly(root_ / "collections").ok());
}

TEST_F(PrivateFilesTest, ErasureJournalIsOwnerOnly) {
  const fs::path journal = root_ / "state" / "faces.erased";
  ASSERT_TRUE(AppendErasures(journal, {17, 42}).ok());
  EXPECT_EQ(ModeOf(root_ / "state"), 0700u);
  EXPECT_EQ(ModeOf(journal), 0600u);
  auto erased = ReadErasures(journal);
  ASSERT_TRUE(erased.ok());
  EXPECT_EQ(*erased, (std::vector<int64_t>{17, 42}));
}

TEST_F(PrivateFilesTest, CheckNamesWhatOthersCanRead) {
  ASSERT_TRUE(index::CreatePrivateDirectories(root_ / "gen" / "inner").ok());
  EXPECT_EQ(ModeOf(root_ / "gen" / "inner"), 0700u);
  const fs::path shard = root_ / "gen" / "inner" / "shard-0000.faissindex";
  std::ofstream(shard) << "x";
  ::chmod(shard.c_str(), 0644);
  const absl::Status status = index::CheckOwnerOnly(root_ / "gen");
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find(shard.string()), std::string::npos) << status;
  ASSERT_TRUE(index::MakeOwnerOnly(shard).ok());
  EXPECT_TRUE(index::CheckOwnerOnly(root_ / "gen").ok());
  ::chmod((root_ / "gen").c_str(), 0755);
  EXPECT_EQ(index::CheckOwnerOnly(root_ / "gen").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(index::CheckOwnerOnly(root_ / "absent").code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace probity::service::testing
