// What the server acknowledged is what it adopts: records added to a segment while it was
// stopped (well-formed, valid CRC, with or without a forged or replayed commit marker) are
// never taken into the log, `verify` reports them, and Open keeps them as evidence in
// quarantine/. Open reads only the last segment, while `verify` still re-hashes everything.
#include <gtest/gtest.h>

#include <algorithm>

#include "ledger_test_util.h"
#include "probity/ledger/checkpoint.h"
#include "probity/ledger/ledger.h"
#include "probity/ledger/merkle.h"
#include "probity/ledger/verify.h"

namespace probity::ledger {
namespace {

using testing::SampleEntry;

constexpr uint64_t kEntries = 5;

class CommitMarkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_ = testing::MakeOptions(scratch_);
    options_.fsync = false;
    auto ledger = Ledger::Open(options_);
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    for (uint64_t i = 0; i < kEntries; ++i) {
      ASSERT_TRUE((*ledger)->Append(SampleEntry(i)).ok());
      genuine_.push_back(SampleEntry(i).SerializeAsString());
    }
    checkpoint_ = *(*ledger)->SignedCheckpoint();
    verifier_key_ = (*ledger)->VerifierKey();
    segment_ = testing::SegmentFiles(options_.dir).back();
  }

  VerifyReport Verify() const {
    auto report = VerifyLedger({options_.dir,
                                {checkpoint_},
                                *NoteVerifier::FromVerifierKey(verifier_key_),
                                testing::kOrigin});
    EXPECT_TRUE(report.ok()) << report.status();
    return *report;
  }

  // The injection is reported by verify and never counted in the log, cut at the next open
  // (kept in quarantine/), and the log goes on from the genuine entries. A bare entry is a
  // warning (a crash mid group commit looks the same); a forged or replayed marker a problem.
  enum class Verdict { kWarning, kProblem };
  void ExpectNotAdopted(const std::string& injected, Verdict verdict) {
    const VerifyReport before = Verify();
    EXPECT_EQ(before.entries, kEntries);
    if (verdict == Verdict::kWarning) {
      EXPECT_TRUE(before.ok()) << before.problems.front();
      EXPECT_EQ(before.uncommitted_records, 1u);
      ASSERT_EQ(before.warnings.size(), 1u);
      EXPECT_NE(before.warnings[0].find("after the last commit marker"), std::string::npos);
    } else {
      EXPECT_FALSE(before.ok());
      ASSERT_TRUE(before.first_bad_entry.has_value());
      EXPECT_EQ(*before.first_bad_entry, kEntries);
    }

    auto ledger = Ledger::Open(options_);
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    EXPECT_EQ((*ledger)->Size(), kEntries);
    const RecoveryReport recovery = (*ledger)->Recovery();
    EXPECT_TRUE(recovery.tail_cut);
    EXPECT_GE(recovery.whole_records_cut, 1u);
    EXPECT_EQ(recovery.entry_index, kEntries);
    ASSERT_EQ(recovery.quarantined.size(), 1u);
    EXPECT_EQ(testing::ReadFile(recovery.quarantined[0]), injected);
    EXPECT_EQ(testing::FileMode(recovery.quarantined[0]), 0600u);
    EXPECT_EQ(testing::FileMode(options_.dir / "quarantine"), 0700u);
    EXPECT_EQ(testing::ReadFile(segment_).find(injected), std::string::npos);

    auto receipt = (*ledger)->Append(SampleEntry(kEntries));
    ASSERT_TRUE(receipt.ok()) << receipt.status();
    EXPECT_EQ(receipt->index, kEntries);
    genuine_.push_back(SampleEntry(kEntries).SerializeAsString());
    std::vector<Hash> leaves;
    for (const auto& entry : genuine_) leaves.push_back(HashLeaf(entry));
    auto signed_checkpoint = OpenSignedCheckpoint(receipt->signed_checkpoint,
                                                  *NoteVerifier::FromVerifierKey(verifier_key_));
    ASSERT_TRUE(signed_checkpoint.ok());
    EXPECT_EQ(signed_checkpoint->size, kEntries + 1);
    EXPECT_EQ(signed_checkpoint->root, *RootAt(kEntries + 1, SubtreeHashesFromLeaves(leaves)))
        << "later checkpoints are signed over the genuine entries only";

    const VerifyReport after = Verify();
    EXPECT_TRUE(after.ok()) << after.problems.front();
    EXPECT_TRUE(std::any_of(after.notes.begin(), after.notes.end(), [](const auto& note) {
      return note.find("quarantine/ holds 1 file") != std::string::npos;
    }));
  }

  std::string InjectedEntry() const {
    return testing::EncodeRawRecord(SampleEntry(99, "injected").SerializeAsString());
  }

  testing::ScratchDir scratch_;
  Options options_;
  std::vector<std::string> genuine_;
  std::string checkpoint_;
  std::string verifier_key_;
  std::filesystem::path segment_;
};

TEST_F(CommitMarkerTest, EveryGroupCommitEndsWithItsSignedCheckpoint) {
  const auto records = testing::ParseAllRecords(testing::ReadFile(segment_));
  ASSERT_EQ(records.size(), 2 * kEntries);
  const auto verifier = *NoteVerifier::FromVerifierKey(verifier_key_);
  for (uint64_t i = 0; i < kEntries; ++i) {
    EXPECT_EQ(records[2 * i].type, testing::kEntryRecord);
    EXPECT_EQ(records[2 * i].payload, genuine_[i]) << "stored bytes are the hashed bytes";
    ASSERT_EQ(records[2 * i + 1].type, testing::kCommitRecord);
    auto marker = OpenSignedCheckpoint(records[2 * i + 1].payload, verifier, testing::kOrigin);
    ASSERT_TRUE(marker.ok()) << marker.status();
    EXPECT_EQ(marker->size, i + 1);
  }
  EXPECT_EQ(records.back().payload, checkpoint_);
  EXPECT_TRUE(Verify().ok());
}

TEST_F(CommitMarkerTest, EntryAppendedWhileStoppedIsNotAdopted) {
  const std::string injected = InjectedEntry();
  testing::WriteFile(segment_, testing::ReadFile(segment_) + injected);
  ExpectNotAdopted(injected, Verdict::kWarning);
}

TEST_F(CommitMarkerTest, EntryWithAMarkerSignedByAnotherKeyIsNotAdopted) {
  // The forger computes the right size and root but lacks the ledger's signing key.
  const auto forger_key = scratch_.path() / "forger.pem";
  ASSERT_TRUE(GenerateSigningKey(forger_key).ok());
  auto forger = NoteSigner::Load(forger_key, testing::kOrigin);
  ASSERT_TRUE(forger.ok());
  std::vector<Hash> leaves;
  for (const auto& entry : genuine_) leaves.push_back(HashLeaf(entry));
  leaves.push_back(HashLeaf(SampleEntry(99, "injected").SerializeAsString()));
  const std::string note =
      (*forger)
          ->Sign(FormatCheckpoint({testing::kOrigin,
                                   kEntries + 1,
                                   *RootAt(kEntries + 1, SubtreeHashesFromLeaves(leaves)),
                                   {}}))
          .value();
  const std::string injected =
      InjectedEntry() + testing::EncodeRawRecord(note, testing::kCommitRecord);
  testing::WriteFile(segment_, testing::ReadFile(segment_) + injected);
  ExpectNotAdopted(injected, Verdict::kProblem);
}

TEST_F(CommitMarkerTest, EntryWithAReplayedGenuineMarkerIsNotAdopted) {
  const std::string injected =
      InjectedEntry() + testing::EncodeRawRecord(checkpoint_, testing::kCommitRecord);
  testing::WriteFile(segment_, testing::ReadFile(segment_) + injected);
  ExpectNotAdopted(injected, Verdict::kProblem);
}

TEST_F(CommitMarkerTest, InjectedSegmentIsNotAdopted) {
  // A new segment with a valid header continuing the chain, holding one entry.
  const std::string header = testing::ReadFile(segment_).substr(0, testing::kHeaderBytes);
  std::string forged_header = "PRBLSEG2";
  for (uint64_t value : {kEntries, uint64_t{0}}) {
    for (int i = 0; i < 8; ++i) forged_header.push_back(char((value >> (8 * i)) & 0xff));
  }
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
  crc.process_bytes(forged_header.data(), forged_header.size());
  for (int i = 0; i < 4; ++i) forged_header.push_back(char((crc.checksum() >> (8 * i)) & 0xff));
  const std::string injected = forged_header + InjectedEntry();
  const auto path = options_.dir / "segment-00000000000000000005.log";
  testing::WriteFile(path, injected);
  std::filesystem::permissions(
      path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  ExpectNotAdopted(injected, Verdict::kWarning);
  EXPECT_FALSE(std::filesystem::exists(path) &&
               testing::ReadFile(path).find(InjectedEntry()) != std::string::npos);
}

TEST(LedgerOpen, ReadsOnlyTheLastSegmentWhileVerifyReadsAll) {
  testing::ScratchDir scratch;
  auto options = testing::MakeOptions(scratch, /*max_segment_bytes=*/1500);
  options.fsync = false;
  constexpr uint64_t kMany = 120;
  {
    auto ledger = Ledger::Open(options);
    ASSERT_TRUE(ledger.ok());
    for (uint64_t i = 0; i < kMany; ++i) ASSERT_TRUE((*ledger)->Append(SampleEntry(i)).ok());
  }
  const auto segments = testing::SegmentFiles(options.dir);
  ASSERT_GT(segments.size(), 10u);
  const uint64_t last_first = std::stoull(segments.back().filename().string().substr(8, 20));
  // An early entry damaged behind the server's back (valid CRC, other bytes).
  std::string bytes = testing::ReadFile(segments[0]);
  auto records = testing::ParseAllRecords(bytes);
  records[0].payload = SampleEntry(0, "edited").SerializeAsString();
  testing::WriteFile(segments[0], testing::RebuildSegment(bytes, records));

  auto ledger = Ledger::Open(options);
  ASSERT_TRUE(ledger.ok()) << ledger.status();
  EXPECT_EQ((*ledger)->Size(), kMany);
  EXPECT_EQ((*ledger)->Recovery().entries_rehashed, kMany - last_first)
      << "Open re-hashes the last segment only";
  EXPECT_LT((*ledger)->Recovery().entries_rehashed, kMany / 5);
  ledger->reset();

  auto report = VerifyLedger({options.dir, {}, std::nullopt, ""});
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->ok());
  ASSERT_TRUE(report->first_bad_entry.has_value());
  EXPECT_EQ(*report->first_bad_entry, 0u);
}

}  // namespace
}  // namespace probity::ledger
