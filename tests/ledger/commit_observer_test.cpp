// The ledger's monitoring hook: every group commit and every failed append reaches the
// observer, and StoredBytes() is the size of the segment files, across segments and reopens.
#include "probity/ledger/commit_observer.h"

#include <gtest/gtest.h>

#include <mutex>
#include <thread>
#include <vector>

#include "ledger_test_util.h"
#include "probity/ledger/ledger.h"

namespace probity::ledger {
namespace {

using testing::MakeOptions;
using testing::SampleEntry;
using testing::ScratchDir;

class RecordingObserver : public CommitObserver {
 public:
  void OnGroupCommit(const GroupCommitStats& stats) override {
    std::lock_guard lock(mutex_);
    commits.push_back(stats);
  }
  void OnAppendFailed() override {
    std::lock_guard lock(mutex_);
    ++failed;
  }

  std::mutex mutex_;
  std::vector<GroupCommitStats> commits;
  int failed = 0;
};

int SegmentFiles(const std::filesystem::path& dir) {
  int files = 0;
  for (const auto& file : std::filesystem::directory_iterator(dir)) {
    files += file.path().filename().string().starts_with("segment-");
  }
  return files;
}

uint64_t SegmentFileBytes(const std::filesystem::path& dir) {
  uint64_t bytes = 0;
  for (const auto& file : std::filesystem::directory_iterator(dir)) {
    if (file.path().filename().string().starts_with("segment-")) bytes += file.file_size();
  }
  return bytes;
}

TEST(CommitObserver, SeesEveryCommitAndStoredBytesMatchTheSegmentFiles) {
  ScratchDir scratch;
  auto observer = std::make_shared<RecordingObserver>();
  auto options = MakeOptions(scratch, /*max_segment_bytes=*/600);  // several segments
  options.observer = observer;
  {
    auto ledger = Ledger::Open(options);
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    EXPECT_EQ((*ledger)->StoredBytes(), 0u);
    for (uint64_t i = 0; i < 12; ++i) ASSERT_TRUE((*ledger)->Append(SampleEntry(i)).ok());

    // One appender at a time: one group commit per append.
    ASSERT_EQ(observer->commits.size(), 12u);
    uint64_t bytes = 0;
    for (const GroupCommitStats& commit : observer->commits) {
      EXPECT_EQ(commit.entries, 1u);
      EXPECT_GE(commit.sync_time, absl::ZeroDuration());
      bytes += commit.bytes;
    }
    EXPECT_GT(SegmentFiles(options.dir), 2);
    EXPECT_EQ(bytes, SegmentFileBytes(options.dir));
    EXPECT_EQ((*ledger)->StoredBytes(), bytes);
    EXPECT_EQ(observer->failed, 0);
  }
  // Reopened, it counts what is on disk.
  auto reopened = Ledger::Open(options);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ((*reopened)->StoredBytes(), SegmentFileBytes(options.dir));
  ASSERT_TRUE((*reopened)->Append(SampleEntry(12)).ok());
  EXPECT_EQ((*reopened)->StoredBytes(), SegmentFileBytes(options.dir));
}

TEST(CommitObserver, ConcurrentAppendsAreCountedOnceEach) {
  ScratchDir scratch;
  auto observer = std::make_shared<RecordingObserver>();
  auto options = MakeOptions(scratch);
  options.observer = observer;
  auto ledger = Ledger::Open(options);
  ASSERT_TRUE(ledger.ok()) << ledger.status();
  constexpr int kThreads = 8, kPerThread = 10;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        EXPECT_TRUE((*ledger)->Append(SampleEntry(t * kPerThread + i)).ok());
      }
    });
  }
  for (auto& thread : threads) thread.join();
  uint64_t entries = 0;
  for (const GroupCommitStats& commit : observer->commits) entries += commit.entries;
  EXPECT_EQ(entries, uint64_t{kThreads * kPerThread});
  EXPECT_LE(observer->commits.size(), size_t{kThreads * kPerThread});
  EXPECT_EQ((*ledger)->StoredBytes(), SegmentFileBytes(options.dir));
}

TEST(CommitObserver, NoFsyncMeansNoSyncTime) {
  ScratchDir scratch;
  auto observer = std::make_shared<RecordingObserver>();
  auto options = MakeOptions(scratch);
  options.fsync = false;
  options.observer = observer;
  auto ledger = Ledger::Open(options);
  ASSERT_TRUE(ledger.ok()) << ledger.status();
  ASSERT_TRUE((*ledger)->Append(SampleEntry(0)).ok());
  ASSERT_EQ(observer->commits.size(), 1u);
  EXPECT_EQ(observer->commits[0].sync_time, absl::ZeroDuration());
}

TEST(CommitObserver, AFailedAppendIsReportedAndWritesNothing) {
  ScratchDir scratch;
  auto observer = std::make_shared<RecordingObserver>();
  auto options = MakeOptions(scratch);
  options.observer = observer;
  auto ledger = Ledger::Open(options);
  ASSERT_TRUE(ledger.ok()) << ledger.status();
  v1::LedgerEntry too_large = SampleEntry(0);
  too_large.set_justification(std::string((64u << 20) + 1, 'x'));  // over a record's limit
  EXPECT_FALSE((*ledger)->Append(too_large).ok());
  EXPECT_EQ(observer->failed, 1);
  EXPECT_TRUE(observer->commits.empty());
  EXPECT_EQ((*ledger)->StoredBytes(), 0u);
}

}  // namespace
}  // namespace probity::ledger
