#include "probity/common/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "common/scoped_temp_dir.h"
#include "probity/common/file_read.h"

namespace probity::common {
namespace {

namespace fs = std::filesystem;
using test_support::ScopedTempDir;

std::vector<std::string> Names(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

mode_t ModeOf(const fs::path& path) {
  struct stat info {};
  EXPECT_EQ(::stat(path.c_str(), &info), 0) << path;
  return info.st_mode & 07777;
}

TEST(WriteFileAtomicallyTest, CreatesTheFileWithExactlyTheContents) {
  ScopedTempDir dir("common-atomic");
  const std::string contents("a\0b", 3);
  ASSERT_TRUE(WriteFileAtomically(dir.path() / "f", contents, FileMode::kUmaskDefault).ok());
  EXPECT_EQ(*ReadFileToString(dir.path() / "f"), contents);
  EXPECT_EQ(Names(dir.path()), std::vector<std::string>{"f"});
}

// A reader that opened the old file keeps reading the whole old file, and the name now leads to
// a different file holding the whole new contents: the rename replaced it in one step.
TEST(WriteFileAtomicallyTest, ReplacesAnExistingFileInOneStep) {
  ScopedTempDir dir("common-atomic");
  const fs::path path = dir.path() / "jwks.json";
  ASSERT_TRUE(WriteFileAtomically(path, "old contents", FileMode::kUmaskDefault).ok());
  std::ifstream old_reader(path, std::ios::binary);
  ASSERT_TRUE(old_reader.good());
  struct stat before {};
  ASSERT_EQ(::stat(path.c_str(), &before), 0);

  ASSERT_TRUE(WriteFileAtomically(path, "new", FileMode::kUmaskDefault).ok());

  struct stat after {};
  ASSERT_EQ(::stat(path.c_str(), &after), 0);
  EXPECT_NE(before.st_ino, after.st_ino);
  std::stringstream old_text;
  old_text << old_reader.rdbuf();
  EXPECT_EQ(old_text.str(), "old contents");
  EXPECT_EQ(*ReadFileToString(path), "new");
  EXPECT_EQ(Names(dir.path()), std::vector<std::string>{"jwks.json"});
}

TEST(WriteFileAtomicallyTest, AFailedRenameLeavesNoTemporaryAndTheTargetAsItWas) {
  ScopedTempDir dir("common-atomic");
  // A non-empty directory cannot be replaced by a file: everything before the rename succeeds.
  const fs::path target = dir.path() / "target";
  fs::create_directory(target);
  std::ofstream(target / "inside") << "kept";
  absl::Status status = WriteFileAtomically(target, "contents", FileMode::kOwnerOnly);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find(target.string()), absl::string_view::npos) << status;
  EXPECT_EQ(Names(dir.path()), std::vector<std::string>{"target"});
  EXPECT_EQ(*ReadFileToString(target / "inside"), "kept");
}

TEST(WriteFileAtomicallyTest, AMissingDirectoryFailsAndNamesThePath) {
  ScopedTempDir dir("common-atomic");
  const fs::path path = dir.path() / "missing" / "f";
  absl::Status status = WriteFileAtomically(path, "x", FileMode::kUmaskDefault);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find(path.string()), absl::string_view::npos) << status;
  EXPECT_EQ(Names(dir.path()), std::vector<std::string>{});
}

TEST(WriteFileAtomicallyTest, UmaskDefaultModeFollowsTheUmaskAndOwnerOnlyIgnoresIt) {
  ScopedTempDir dir("common-atomic");
  const mode_t old_umask = ::umask(022);
  ASSERT_TRUE(WriteFileAtomically(dir.path() / "public", "p", FileMode::kUmaskDefault).ok());
  ::umask(0);
  ASSERT_TRUE(WriteFileAtomically(dir.path() / "private", "s", FileMode::kOwnerOnly).ok());
  ::umask(old_umask);
  EXPECT_EQ(ModeOf(dir.path() / "public"), 0644u);
  EXPECT_EQ(ModeOf(dir.path() / "private"), 0600u);
}

TEST(UniqueTemporarySiblingTest, IsAHiddenSiblingThatDiffersPerCall) {
  const fs::path path = fs::path("dir") / "file.json";
  const fs::path first = UniqueTemporarySibling(path);
  EXPECT_EQ(first.parent_path(), path.parent_path());
  EXPECT_EQ(first.filename().string().rfind(".file.json.tmp-", 0), 0u) << first;
  EXPECT_NE(first, UniqueTemporarySibling(path));
}

TEST(SyncPathTest, SyncsAFileAndADirectoryAndNamesAMissingPath) {
  ScopedTempDir dir("common-atomic");
  std::ofstream(dir.path() / "f") << "x";
  EXPECT_TRUE(SyncPath(dir.path() / "f").ok());
  EXPECT_TRUE(SyncPath(dir.path()).ok());
  absl::Status missing = SyncPath(dir.path() / "missing");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find((dir.path() / "missing").string()), absl::string_view::npos);
}

}  // namespace
}  // namespace probity::common
