// The ledger says who searched for whom: its directory, segments, tree files, lock and
// quarantine are owner-only (0700 / 0600) whatever the umask, and Open refuses a ledger that
// group or others can access.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "common/scoped_umask.h"
#include "ledger_test_util.h"
#include "probity/ledger/ledger.h"

namespace probity::ledger {
namespace {

using testing::FileMode;
using testing::SampleEntry;

using test_support::ScopedUmask;

void ExpectOwnerOnly(const std::filesystem::path& dir) {
  EXPECT_EQ(FileMode(dir), 0700u) << dir;
  for (const auto& item : std::filesystem::recursive_directory_iterator(dir)) {
    EXPECT_EQ(FileMode(item.path()), item.is_directory() ? 0700u : 0600u) << item.path();
  }
}

class LedgerPermissions : public ::testing::TestWithParam<mode_t> {};

TEST_P(LedgerPermissions, EverythingTheLedgerCreatesIsOwnerOnly) {
  testing::ScratchDir scratch;
  auto options = testing::MakeOptions(scratch, /*max_segment_bytes=*/800);
  options.fsync = false;
  ScopedUmask umask(GetParam());
  {
    auto ledger = Ledger::Open(options);
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    for (uint64_t i = 0; i < 12; ++i) ASSERT_TRUE((*ledger)->Append(SampleEntry(i)).ok());
  }
  // A torn tail makes the next open create quarantine/.
  const auto segment = testing::SegmentFiles(options.dir).back();
  testing::WriteFile(segment, testing::ReadFile(segment) + "torn");
  auto ledger = Ledger::Open(options);
  ASSERT_TRUE(ledger.ok()) << ledger.status();
  ASSERT_TRUE(std::filesystem::exists(options.dir / "quarantine"));
  ASSERT_TRUE(std::filesystem::exists(options.dir / "LOCK"));
  ASSERT_GT(testing::SegmentFiles(options.dir).size(), 2u);
  ExpectOwnerOnly(options.dir);
}

// 022: the usual umask; 0: one that would leave everything world-writable.
INSTANTIATE_TEST_SUITE_P(Umasks, LedgerPermissions, ::testing::Values(022, 0));

class LedgerAccessibleToOthers : public ::testing::Test {
 protected:
  void SetUp() override {
    options_ = testing::MakeOptions(scratch_);
    options_.fsync = false;
    auto ledger = Ledger::Open(options_);
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    ASSERT_TRUE((*ledger)->Append(SampleEntry(0)).ok());
  }

  void ExpectRefused(const std::filesystem::path& opened_up, mode_t mode) {
    ::chmod(opened_up.c_str(), mode);
    auto ledger = Ledger::Open(options_);
    ASSERT_FALSE(ledger.ok()) << opened_up << " is mode " << std::oct << mode;
    EXPECT_EQ(ledger.status().code(), absl::StatusCode::kFailedPrecondition);
    const std::string message(ledger.status().message());
    EXPECT_NE(message.find(opened_up.string()), std::string::npos) << message;
    EXPECT_NE(message.find("owner-only"), std::string::npos) << message;
    EXPECT_NE(message.find("chmod -R go-rwx"), std::string::npos) << message;
  }

  testing::ScratchDir scratch_;
  Options options_;
};

TEST_F(LedgerAccessibleToOthers, DirectoryReadableByOthersIsRefused) {
  ExpectRefused(options_.dir, 0755);
}

TEST_F(LedgerAccessibleToOthers, SegmentReadableByGroupIsRefused) {
  ExpectRefused(testing::SegmentFiles(options_.dir).front(), 0640);
}

TEST_F(LedgerAccessibleToOthers, TreeFileWritableByOthersIsRefused) {
  ExpectRefused(options_.dir / "tree" / "level-00.hashes", 0602);
}

TEST_F(LedgerAccessibleToOthers, TreeDirectoryOpenToGroupIsRefused) {
  ExpectRefused(options_.dir / "tree", 0750);
}

TEST_F(LedgerAccessibleToOthers, OwnerOnlyAgainOpens) {
  ::chmod(options_.dir.c_str(), 0755);
  ASSERT_FALSE(Ledger::Open(options_).ok());
  ::chmod(options_.dir.c_str(), 0700);
  auto ledger = Ledger::Open(options_);
  ASSERT_TRUE(ledger.ok()) << ledger.status();
  EXPECT_EQ((*ledger)->Size(), 1u);
}

}  // namespace
}  // namespace probity::ledger
