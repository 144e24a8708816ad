#include "probity/common/file_read.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "common/scoped_temp_dir.h"

namespace probity::common {
namespace {

using test_support::ScopedTempDir;

TEST(ReadFileToStringTest, ReturnsEveryByteUnchanged) {
  ScopedTempDir dir("common-read");
  const std::string bytes("line one\r\n\0binary\xff tail", 23);
  {
    std::ofstream out(dir.path() / "data", std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  absl::StatusOr<std::string> read = ReadFileToString(dir.path() / "data");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, bytes);
}

TEST(ReadFileToStringTest, ReadsAnEmptyFileAsEmpty) {
  ScopedTempDir dir("common-read");
  std::ofstream(dir.path() / "empty").close();
  absl::StatusOr<std::string> read = ReadFileToString(dir.path() / "empty");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(read->empty());
}

TEST(ReadFileToStringTest, AMissingFileIsNotFoundAndNamesThePath) {
  ScopedTempDir dir("common-read");
  const auto path = dir.path() / "no-such-file";
  absl::StatusOr<std::string> read = ReadFileToString(path);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(read.status().message().find(path.string()), absl::string_view::npos) << read.status();
}

TEST(ReadFileToStringTest, ADirectoryIsAnErrorThatNamesThePath) {
  ScopedTempDir dir("common-read");
  absl::StatusOr<std::string> read = ReadFileToString(dir.path());
  ASSERT_FALSE(read.ok());
  EXPECT_NE(read.status().message().find(dir.path().string()), absl::string_view::npos)
      << read.status();
}

TEST(ReadFileToStringTest, AnUnreadableFileIsPermissionDeniedAndNamesThePath) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads files whatever their mode";
  ScopedTempDir dir("common-read");
  const auto path = dir.path() / "secret";
  std::ofstream(path) << "x";
  std::filesystem::permissions(path, std::filesystem::perms::none);
  absl::StatusOr<std::string> read = ReadFileToString(path);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(read.status().message().find(path.string()), absl::string_view::npos) << read.status();
}

}  // namespace
}  // namespace probity::common
