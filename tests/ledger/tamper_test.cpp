// Tampering with the files is found by the auditor's verification, at the right entry index.
// Opening the ledger reads only segment headers and the last segment (recovery.h), so it
// refuses tampering it can see there and leaves the rest to VerifyLedger.
#include <gtest/gtest.h>

#include "ledger_test_util.h"
#include "probity/ledger/checkpoint.h"
#include "probity/ledger/ledger.h"
#include "probity/ledger/verify.h"

namespace probity::ledger {
namespace {

using testing::ParseAllRecords;
using testing::ParseRecords;
using testing::RawRecord;
using testing::ReadFile;
using testing::RebuildSegment;
using testing::SampleEntry;
using testing::WriteFile;

constexpr uint64_t kEntries = 40;

class TamperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_ = testing::MakeOptions(scratch_, /*max_segment_bytes=*/1500);
    options_.fsync = false;  // durability is not what these tests are about
    auto ledger = Ledger::Open(options_);
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    for (uint64_t i = 0; i < kEntries; ++i) {
      ASSERT_TRUE((*ledger)->Append(SampleEntry(i)).ok());
      if (i == 9 || i == kEntries - 1) checkpoints_.push_back(*(*ledger)->SignedCheckpoint());
    }
    verifier_key_ = (*ledger)->VerifierKey();
    segments_ = testing::SegmentFiles(options_.dir);
    ASSERT_GE(segments_.size(), 4u);
  }

  // A middle segment, and the index of its first entry.
  std::pair<std::filesystem::path, uint64_t> MiddleSegment() const {
    const auto& path = segments_[segments_.size() / 2];
    return {path, std::stoull(path.filename().string().substr(8, 20))};
  }

  VerifyReport Verify(bool with_checkpoints = true) const {
    VerifyOptions options;
    options.dir = options_.dir;
    options.verifier = *NoteVerifier::FromVerifierKey(verifier_key_);
    options.origin = testing::kOrigin;
    if (with_checkpoints) options.signed_checkpoints = checkpoints_;
    auto report = VerifyLedger(options);
    EXPECT_TRUE(report.ok()) << report.status();
    return *report;
  }

  enum class OpenSees { kYes, kNo };
  void ExpectFirstBadEntry(uint64_t index, OpenSees open_sees) const {
    const VerifyReport report = Verify();
    EXPECT_FALSE(report.ok());
    ASSERT_TRUE(report.first_bad_entry.has_value());
    EXPECT_EQ(*report.first_bad_entry, index) << report.problems.front();
    // Where Open reads (segment headers, the last segment, the tree against the last commit
    // marker), the writer refuses the same files.
    if (open_sees == OpenSees::kYes) {
      EXPECT_FALSE(Ledger::Open(options_).ok());
    }
  }

  testing::ScratchDir scratch_;
  Options options_;
  std::vector<std::string> checkpoints_;
  std::string verifier_key_;
  std::vector<std::filesystem::path> segments_;
};

TEST_F(TamperTest, UntouchedLedgerVerifies) {
  const VerifyReport report = Verify();
  EXPECT_TRUE(report.ok()) << report.problems.front();
  EXPECT_EQ(report.entries, kEntries);
  EXPECT_EQ(report.checkpoints_verified.size(), 2u);
  EXPECT_FALSE(report.first_bad_entry.has_value());
  EXPECT_TRUE(Ledger::Open(options_).ok());
}

TEST_F(TamperTest, OneFlippedByteIsFound) {
  auto [path, first] = MiddleSegment();
  std::string bytes = ReadFile(path);
  const auto records = ParseRecords(bytes);
  bytes[records[2].offset + testing::kRecordHeaderBytes + records[2].payload.size() / 2] ^= 0x01;
  WriteFile(path, bytes);
  ExpectFirstBadEntry(first + 2, OpenSees::kNo);
  EXPECT_NE(Verify().problems.front().find(path.filename().string()), std::string::npos);
}

TEST_F(TamperTest, RemovedEntryIsFound) {
  auto [path, first] = MiddleSegment();
  const std::string bytes = ReadFile(path);
  std::vector<RawRecord> records = ParseAllRecords(bytes);
  const auto second_entry = std::find_if(records.begin() + 1, records.end(), [](const auto& r) {
    return r.type == testing::kEntryRecord;
  });
  records.erase(second_entry);
  WriteFile(path, RebuildSegment(bytes, records));
  ExpectFirstBadEntry(first + 1, OpenSees::kNo);
}

TEST_F(TamperTest, SwappedEntriesAreFound) {
  auto [path, first] = MiddleSegment();
  const std::string bytes = ReadFile(path);
  std::vector<RawRecord> records = ParseAllRecords(bytes);
  std::vector<RawRecord*> entries;
  for (auto& record : records) {
    if (record.type == testing::kEntryRecord) entries.push_back(&record);
  }
  ASSERT_GE(entries.size(), 3u);
  std::swap(entries[1]->payload, entries[2]->payload);
  WriteFile(path, RebuildSegment(bytes, records));
  ExpectFirstBadEntry(first + 1, OpenSees::kNo);
}

TEST_F(TamperTest, MiddleSegmentTruncatedInsideARecordIsFound) {
  auto [path, first] = MiddleSegment();
  const std::string bytes = ReadFile(path);
  const auto records = ParseRecords(bytes);
  std::filesystem::resize_file(path, records.back().offset + 5);
  ExpectFirstBadEntry(first + records.size() - 1, OpenSees::kNo);
}

TEST_F(TamperTest, MiddleSegmentTruncatedAtARecordBoundaryIsFound) {
  auto [path, first] = MiddleSegment();
  const auto records = ParseRecords(ReadFile(path));
  std::filesystem::resize_file(path, records[1].offset);
  ExpectFirstBadEntry(first + 1, OpenSees::kNo);
}

TEST_F(TamperTest, ReplacedSegmentWithRecomputedChecksumsIsFound) {
  auto [path, first] = MiddleSegment();
  const std::string bytes = ReadFile(path);
  std::vector<RawRecord> records = ParseAllRecords(bytes);
  uint64_t index = first;
  for (auto& record : records) {
    if (record.type == testing::kEntryRecord) {
      record.payload = SampleEntry(index++, "forged").SerializeAsString();
    }
  }
  WriteFile(path, RebuildSegment(bytes, records));
  ExpectFirstBadEntry(first, OpenSees::kNo);
}

TEST_F(TamperTest, MissingSegmentIsFound) {
  auto [path, first] = MiddleSegment();
  std::filesystem::remove(path);
  ExpectFirstBadEntry(first, OpenSees::kYes);  // the next segment's header links to it
}

TEST_F(TamperTest, RemovedLastEntryIsFound) {
  const auto& path = segments_.back();
  const auto records = ParseRecords(ReadFile(path));
  std::filesystem::resize_file(path, records.back().offset);
  // The stored tree still holds its leaf hash: an acknowledged entry is missing.
  ExpectFirstBadEntry(kEntries - 1, OpenSees::kYes);
}

TEST_F(TamperTest, RewrittenHistoryWithRebuiltTreeIsCaughtByCheckpoints) {
  // The forger rewrites entry 20 and rebuilds every file consistently (same signing key even),
  // so only the auditor's earlier checkpoint can tell.
  std::filesystem::remove_all(options_.dir);
  {
    auto ledger = Ledger::Open(options_);
    ASSERT_TRUE(ledger.ok());
    for (uint64_t i = 0; i < kEntries; ++i) {
      ASSERT_TRUE((*ledger)->Append(SampleEntry(i, i == 20 ? "forged" : "w")).ok());
    }
  }
  EXPECT_TRUE(Verify(/*with_checkpoints=*/false).ok());
  const VerifyReport report = Verify();
  EXPECT_FALSE(report.ok());
  ASSERT_TRUE(report.first_bad_entry.has_value());
  // The checkpoint at size 10 still matches, so the change lies in [10, 40).
  EXPECT_EQ(*report.first_bad_entry, 10u);
  EXPECT_EQ(report.checkpoints_verified.size(), 1u);
}

TEST_F(TamperTest, ForgedOrForeignCheckpointsAreRejected) {
  VerifyOptions options;
  options.dir = options_.dir;
  options.verifier = *NoteVerifier::FromVerifierKey(verifier_key_);
  std::string forged = checkpoints_.back();
  forged[forged.find('\n') + 1] = '9';  // another tree size, same signature
  options.signed_checkpoints = {forged};
  auto report = VerifyLedger(options);
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->ok());

  testing::ScratchDir other;
  auto other_options = testing::MakeOptions(other);
  auto other_ledger = Ledger::Open(other_options);
  ASSERT_TRUE(other_ledger.ok());
  options.signed_checkpoints = {*(*other_ledger)->SignedCheckpoint()};
  report = VerifyLedger(options);
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->ok()) << "a checkpoint signed by another key";
}

}  // namespace
}  // namespace probity::ledger
