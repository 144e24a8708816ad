#include "probity/common/owner_only_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "common/scoped_temp_dir.h"
#include "probity/common/file_read.h"

namespace probity::common {
namespace {

namespace fs = std::filesystem;
using test_support::ScopedTempDir;

mode_t ModeOf(const fs::path& path) {
  struct stat info {};
  EXPECT_EQ(::stat(path.c_str(), &info), 0) << path;
  return info.st_mode & 07777;
}

size_t EntriesIn(const fs::path& dir) {
  return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

// The most permissive umask for the test, then put back.
class OwnerOnlyFileTest : public ::testing::Test {
 protected:
  void SetUp() override { old_umask_ = ::umask(0); }
  void TearDown() override { ::umask(old_umask_); }
  ScopedTempDir dir_{"common-owner-only"};
  mode_t old_umask_ = 022;
};

TEST_F(OwnerOnlyFileTest, WritesMode0600WhateverTheUmask) {
  const fs::path path = dir_.path() / "report.html";
  ASSERT_TRUE(WriteOwnerOnlyFile(path, "names of people").ok());
  EXPECT_EQ(ModeOf(path), 0600u);
  EXPECT_EQ(*ReadFileToString(path), "names of people");
}

TEST_F(OwnerOnlyFileTest, ReplacingAWiderFileLeavesItOwnerOnly) {
  const fs::path path = dir_.path() / "token";
  std::ofstream(path) << "old";
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                            fs::perms::others_read);
  ASSERT_EQ(ModeOf(path), 0644u);
  ASSERT_TRUE(WriteOwnerOnlyFile(path, "new").ok());
  EXPECT_EQ(ModeOf(path), 0600u);
  EXPECT_EQ(*ReadFileToString(path), "new");
  EXPECT_EQ(EntriesIn(dir_.path()), 1u);
}

TEST_F(OwnerOnlyFileTest, CreateWritesANewFileMode0600) {
  const fs::path path = dir_.path() / "issuer.pem";
  ASSERT_TRUE(CreateOwnerOnlyFile(path, "key").ok());
  EXPECT_EQ(ModeOf(path), 0600u);
  EXPECT_EQ(*ReadFileToString(path), "key");
  EXPECT_EQ(EntriesIn(dir_.path()), 1u);
}

TEST_F(OwnerOnlyFileTest, CreateNeverReplacesAnExistingFile) {
  const fs::path path = dir_.path() / "issuer.pem";
  ASSERT_TRUE(CreateOwnerOnlyFile(path, "first key").ok());
  absl::Status second = CreateOwnerOnlyFile(path, "second key");
  EXPECT_EQ(second.code(), absl::StatusCode::kAlreadyExists) << second;
  EXPECT_NE(second.message().find(path.string()), absl::string_view::npos) << second;
  EXPECT_EQ(*ReadFileToString(path), "first key");
  EXPECT_EQ(EntriesIn(dir_.path()), 1u);  // no temporary left behind
}

}  // namespace
}  // namespace probity::common
