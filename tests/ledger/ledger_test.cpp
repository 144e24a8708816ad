// The writing ledger: appends, receipts, reopening, segment rotation, concurrency, recovery.
#include "probity/ledger/ledger.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "ledger_test_util.h"
#include "probity/ledger/checkpoint.h"
#include "probity/ledger/merkle.h"
#include "probity/ledger/reader.h"
#include "probity/ledger/verify.h"

namespace probity::ledger {
namespace {

using testing::MakeOptions;
using testing::SampleEntry;
using testing::ScratchDir;

std::vector<Hash> LeafHashesOf(const std::vector<std::string>& entries) {
  std::vector<Hash> leaves;
  for (const auto& entry : entries) leaves.push_back(HashLeaf(entry));
  return leaves;
}

TEST(Ledger, AppendsAreNumberedReadableAndProvable) {
  ScratchDir scratch;
  auto options = MakeOptions(scratch, /*max_segment_bytes=*/600);
  auto ledger = Ledger::Open(options);
  ASSERT_TRUE(ledger.ok()) << ledger.status();
  auto verifier = NoteVerifier::FromVerifierKey((*ledger)->VerifierKey());
  ASSERT_TRUE(verifier.ok()) << verifier.status();

  std::vector<std::string> stored;
  for (uint64_t i = 0; i < 40; ++i) {
    const auto entry = SampleEntry(i);
    auto receipt = (*ledger)->Append(entry);
    ASSERT_TRUE(receipt.ok()) << receipt.status();
    EXPECT_EQ(receipt->index, i);
    stored.push_back(entry.SerializeAsString());
    // The receipt's checkpoint is signed and includes the entry.
    auto checkpoint = OpenSignedCheckpoint(receipt->signed_checkpoint, *verifier, testing::kOrigin);
    ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
    ASSERT_GT(checkpoint->size, i);
    auto proof = (*ledger)->InclusionProof(i, checkpoint->size);
    ASSERT_TRUE(proof.ok());
    EXPECT_TRUE(
        VerifyInclusion(i, checkpoint->size, HashLeaf(stored[i]), *proof, checkpoint->root).ok());
  }
  EXPECT_EQ((*ledger)->Size(), 40u);
  EXPECT_GT(testing::SegmentFiles(options.dir).size(), 3u) << "small segments must rotate";

  const auto leaves = LeafHashesOf(stored);
  const auto reference = SubtreeHashesFromLeaves(leaves);
  for (uint64_t size = 0; size <= 40; ++size) {
    EXPECT_EQ(*(*ledger)->RootAt(size), *RootAt(size, reference)) << size;
  }
  for (uint64_t i : {0u, 7u, 21u, 39u}) {
    auto bytes = (*ledger)->ReadEntry(i);
    ASSERT_TRUE(bytes.ok());
    EXPECT_EQ(*bytes, stored[i]);
    EXPECT_EQ(*(*ledger)->InclusionProof(i, 40), *InclusionProof(i, 40, reference));
  }
  EXPECT_EQ(*(*ledger)->ConsistencyProof(13, 40), *ConsistencyProof(13, 40, reference));
  EXPECT_FALSE((*ledger)->ReadEntry(40).ok());
  EXPECT_FALSE((*ledger)->RootAt(41).ok());

  // The read-only reader, as an auditor would use it beside the server, agrees.
  auto reader = LedgerReader::Open(options.dir);
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ((*reader)->Size(), 40u);
  EXPECT_EQ(*(*reader)->RootAt(29), *RootAt(29, reference));
  EXPECT_EQ(*(*reader)->ConsistencyProof(5, 29), *ConsistencyProof(5, 29, reference));
  std::vector<std::string> scanned;
  ASSERT_TRUE(ReadEntries(options.dir, 0, [&](uint64_t index, std::string_view bytes) {
                EXPECT_EQ(index, scanned.size());
                scanned.emplace_back(bytes);
                return true;
              }).ok());
  EXPECT_EQ(scanned, stored);
}

TEST(Ledger, ReopeningKeepsEverythingAndContinues) {
  ScratchDir scratch;
  auto options = MakeOptions(scratch, 500);
  std::vector<std::string> stored;
  std::string last_checkpoint;
  {
    auto ledger = Ledger::Open(options);
    ASSERT_TRUE(ledger.ok());
    for (uint64_t i = 0; i < 25; ++i) {
      stored.push_back(SampleEntry(i).SerializeAsString());
      ASSERT_TRUE((*ledger)->Append(SampleEntry(i)).ok());
    }
    last_checkpoint = *(*ledger)->SignedCheckpoint();
    // A second writer on the same directory is refused while the first holds it.
    EXPECT_FALSE(Ledger::Open(options).ok());
  }
  auto ledger = Ledger::Open(options);
  ASSERT_TRUE(ledger.ok()) << ledger.status();
  EXPECT_FALSE((*ledger)->Recovery().tail_cut);
  EXPECT_EQ((*ledger)->Size(), 25u);
  EXPECT_EQ(*(*ledger)->SignedCheckpoint(), last_checkpoint);
  auto receipt = (*ledger)->Append(SampleEntry(25));
  ASSERT_TRUE(receipt.ok());
  EXPECT_EQ(receipt->index, 25u);
  stored.push_back(SampleEntry(25).SerializeAsString());
  EXPECT_EQ(*(*ledger)->RootAt(26), *RootAt(26, SubtreeHashesFromLeaves(LeafHashesOf(stored))));
}

class ConcurrentLedger : public ::testing::TestWithParam<bool> {};

TEST_P(ConcurrentLedger, AppendsGetDistinctIndicesAndAllLand) {
  ScratchDir scratch;
  auto options = MakeOptions(scratch, 4096);
  options.group_commit = GetParam();
  auto ledger = Ledger::Open(options);
  ASSERT_TRUE(ledger.ok());
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  std::vector<std::vector<Receipt>> receipts(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto receipt = (*ledger)->Append(SampleEntry(t * 1000 + i, "t" + std::to_string(t)));
        ASSERT_TRUE(receipt.ok());
        receipts[t].push_back(*receipt);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  std::set<uint64_t> indices;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      const Receipt& receipt = receipts[t][i];
      indices.insert(receipt.index);
      auto entry = (*ledger)->ReadEntry(receipt.index);
      ASSERT_TRUE(entry.ok());
      EXPECT_EQ(*entry, SampleEntry(t * 1000 + i, "t" + std::to_string(t)).SerializeAsString());
    }
  }
  EXPECT_EQ(indices.size(), size_t{kThreads * kPerThread});
  EXPECT_EQ(*indices.rbegin(), uint64_t{kThreads * kPerThread - 1});
  auto report = VerifyLedger({options.dir, {}, std::nullopt, ""});
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok()) << report->problems.front();
  EXPECT_EQ(report->entries, uint64_t{kThreads * kPerThread});
}

INSTANTIATE_TEST_SUITE_P(GroupCommitOrOneFsyncEach, ConcurrentLedger, ::testing::Bool());

// Signs with the real key after a pause, so that appenders pile up behind every group commit;
// with `signatures_before_failing`, fails every signature after that many.
class SlowSigner : public NoteSigner {
 public:
  explicit SlowSigner(std::unique_ptr<NoteSigner> inner, int signatures_before_failing = -1)
      : inner_(std::move(inner)), left_(signatures_before_failing) {}
  absl::StatusOr<std::string> Sign(const std::string& note_text) const override {
    std::this_thread::sleep_for(std::chrono::microseconds(300));
    if (left_.load() >= 0 && left_.fetch_sub(1) <= 0) {
      return absl::InternalError("signing failed (test)");
    }
    return inner_->Sign(note_text);
  }
  std::string VerifierKey() const override { return inner_->VerifierKey(); }

 private:
  std::unique_ptr<NoteSigner> inner_;
  mutable std::atomic<int> left_;
};

// Ledger options without fsync whose signer is a SlowSigner over the scratch key.
Options SlowSignerOptions(const ScratchDir& scratch, bool group_commit,
                          int signatures_before_failing = -1) {
  Options options = MakeOptions(scratch);
  options.group_commit = group_commit;
  options.fsync = false;
  auto signer = NoteSigner::Load(options.signing_key, options.origin);
  EXPECT_TRUE(signer.ok()) << signer.status();
  if (signer.ok()) {
    options.signer = std::make_shared<SlowSigner>(*std::move(signer), signatures_before_failing);
  }
  return options;
}

// Waits for `finished` to reach `threads`; a lost wake-up would hang, so after two minutes it
// ends the test binary with a message instead of leaving it to CTest's timeout.
void WaitForAppendersOrAbort(const std::atomic<int>& finished, int threads) {
  constexpr int kWatchdogSeconds = 120;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kWatchdogSeconds);
  while (finished.load() < threads && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (finished.load() < threads) {
    std::fprintf(stderr, "%d of %d appending threads still waiting after %d s: a lost wake-up\n",
                 threads - finished.load(), threads, kWatchdogSeconds);
    std::abort();
  }
}

// A group commit wakes its own appenders and one appender of the next commit to lead it (not
// every waiting appender). Many appenders against slow commits: every one must be woken, and
// none may wait for an append that never comes. A lost wake-up hangs, so a watchdog ends the
// test instead of CTest's timeout.
TEST_P(ConcurrentLedger, AppendersQueuedBehindSlowCommitsAreAllWoken) {
  ScratchDir scratch;
  const Options options = SlowSignerOptions(scratch, GetParam());
  auto ledger = Ledger::Open(options);
  ASSERT_TRUE(ledger.ok()) << ledger.status();
  constexpr int kThreads = 48;
  const int per_thread = GetParam() ? 40 : 4;  // one commit each is slow: fewer appends
  std::atomic<int> finished{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        if (!(*ledger)->Append(SampleEntry(t * 1000 + i, "t" + std::to_string(t))).ok()) ++failed;
      }
      ++finished;
    });
  }
  WaitForAppendersOrAbort(finished, kThreads);
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ((*ledger)->Size(), static_cast<uint64_t>(kThreads * per_thread));
  auto report = VerifyLedger({options.dir, {}, std::nullopt, ""});
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok()) << report->problems.front();
  EXPECT_EQ(report->entries, static_cast<uint64_t>(kThreads * per_thread));
}

// A group commit that fails while other appends wait behind it: the ledger fails closed, and
// every waiting append, queued for this commit or a later one, gets the failure (none hangs,
// none is acknowledged after it). What was acknowledged before is all that is stored.
TEST_P(ConcurrentLedger, AFailedCommitFailsEveryAppendWaitingBehindIt) {
  ScratchDir scratch;
  // Seven signatures: the empty tree's at open, then six commits.
  Options options = SlowSignerOptions(scratch, GetParam(), /*signatures_before_failing=*/7);
  auto ledger = Ledger::Open(options);
  ASSERT_TRUE(ledger.ok()) << ledger.status();
  constexpr int kThreads = 48;
  constexpr int kPerThread = 4;
  std::mutex mutex;
  std::vector<uint64_t> acknowledged;
  std::atomic<int> finished{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto receipt = (*ledger)->Append(SampleEntry(t * 1000 + i, "t" + std::to_string(t)));
        if (receipt.ok()) {
          std::lock_guard lock(mutex);
          acknowledged.push_back(receipt->index);
        } else {
          EXPECT_EQ(receipt.status().code(), absl::StatusCode::kUnavailable) << receipt.status();
          ++refused;
        }
      }
      ++finished;
    });
  }
  WaitForAppendersOrAbort(finished, kThreads);
  for (auto& thread : threads) thread.join();
  EXPECT_GT(refused.load(), 0);
  EXPECT_EQ(acknowledged.size() + refused.load(), size_t{kThreads * kPerThread});
  // Six commits were acknowledged: one entry each without group commit, at least one with it.
  EXPECT_GE(acknowledged.size(), 6u);
  EXPECT_EQ((*ledger)->Size(), acknowledged.size());
  std::sort(acknowledged.begin(), acknowledged.end());
  for (size_t i = 0; i < acknowledged.size(); ++i) EXPECT_EQ(acknowledged[i], i);
  ledger->reset();
  options.signer = nullptr;
  auto reopened = Ledger::Open(options);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ((*reopened)->Size(), acknowledged.size());
}

TEST(Ledger, TornTailIsCutAndReported) {
  ScratchDir scratch;
  auto options = MakeOptions(scratch);
  {
    auto ledger = Ledger::Open(options);
    ASSERT_TRUE(ledger.ok());
    for (uint64_t i = 0; i < 10; ++i) ASSERT_TRUE((*ledger)->Append(SampleEntry(i)).ok());
  }
  // A crash in the middle of writing record 10: its header promises more than is there.
  const auto segment = testing::SegmentFiles(options.dir).back();
  const std::string record = testing::EncodeRawRecord(SampleEntry(10).SerializeAsString());
  testing::WriteFile(segment, testing::ReadFile(segment) + record.substr(0, record.size() / 2));

  auto report = VerifyLedger({options.dir, {}, std::nullopt, ""});
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok()) << "a torn unacknowledged tail is not tampering";
  EXPECT_TRUE(std::any_of(report->notes.begin(), report->notes.end(), [](const auto& note) {
    return note.find("torn write") != std::string::npos;
  }));

  auto ledger = Ledger::Open(options);
  ASSERT_TRUE(ledger.ok()) << ledger.status();
  const RecoveryReport recovery = (*ledger)->Recovery();
  EXPECT_TRUE(recovery.tail_cut);
  EXPECT_EQ(recovery.entry_index, 10u);
  EXPECT_EQ(recovery.bytes_cut, record.size() / 2);
  EXPECT_EQ(recovery.whole_records_cut, 0u);
  EXPECT_EQ(recovery.segment, segment.filename().string());
  ASSERT_EQ(recovery.quarantined.size(), 1u);
  EXPECT_EQ(testing::ReadFile(recovery.quarantined[0]), record.substr(0, record.size() / 2));
  EXPECT_EQ((*ledger)->Size(), 10u);
  auto receipt = (*ledger)->Append(SampleEntry(77));
  ASSERT_TRUE(receipt.ok());
  EXPECT_EQ(receipt->index, 10u);
  EXPECT_EQ(*(*ledger)->ReadEntry(10), SampleEntry(77).SerializeAsString());
}

TEST(Ledger, TreeFilesBehindTheRecordsAreRebuiltOnOpen) {
  // The tree files get no fsync of their own: after a power loss they may lag the durable
  // records. Open re-hashes the entries past them and checks the signed root.
  ScratchDir scratch;
  auto options = MakeOptions(scratch);
  const auto tree_dir = options.dir / "tree";
  const auto saved_tree = scratch.path() / "tree-at-6";
  std::vector<std::string> stored;
  {
    auto ledger = Ledger::Open(options);
    ASSERT_TRUE(ledger.ok());
    for (uint64_t i = 0; i < 9; ++i) {
      if (i == 6) std::filesystem::copy(tree_dir, saved_tree);
      ASSERT_TRUE((*ledger)->Append(SampleEntry(i)).ok());
      stored.push_back(SampleEntry(i).SerializeAsString());
    }
  }
  std::filesystem::remove_all(tree_dir);
  std::filesystem::rename(saved_tree, tree_dir);
  auto ledger = Ledger::Open(options);
  ASSERT_TRUE(ledger.ok()) << ledger.status();
  EXPECT_EQ((*ledger)->Size(), 9u);
  EXPECT_GT((*ledger)->Recovery().tree_nodes_rewritten, 0u);
  EXPECT_EQ(*(*ledger)->RootAt(9), *RootAt(9, SubtreeHashesFromLeaves(LeafHashesOf(stored))));
}

TEST(Ledger, RefusesDamageAndNamesSegmentAndEntry) {
  // Damage to an acknowledged entry in the last segment, which Open reads.
  ScratchDir scratch;
  auto options = MakeOptions(scratch, 1500);
  {
    auto ledger = Ledger::Open(options);
    ASSERT_TRUE(ledger.ok());
    for (uint64_t i = 0; i < 20; ++i) ASSERT_TRUE((*ledger)->Append(SampleEntry(i)).ok());
  }
  const auto segment = testing::SegmentFiles(options.dir).back();
  std::string bytes = testing::ReadFile(segment);
  const auto records = testing::ParseRecords(bytes);
  ASSERT_GE(records.size(), 2u);
  const uint64_t first = std::stoull(segment.filename().string().substr(8, 20));
  bytes[records[1].offset + testing::kRecordHeaderBytes + 3] ^= 0x20;
  testing::WriteFile(segment, bytes);
  auto ledger = Ledger::Open(options);
  ASSERT_FALSE(ledger.ok());
  const std::string message(ledger.status().message());
  EXPECT_NE(message.find(segment.filename().string()), std::string::npos) << message;
  EXPECT_NE(message.find("entry " + std::to_string(first + 1)), std::string::npos) << message;
  EXPECT_FALSE(std::filesystem::exists(options.dir / "quarantine")) << "a refusal moves nothing";
}

TEST(Ledger, TornTreeTailIsRepairedAndDamagedDurableTreeRefused) {
  // The tree files only cache what the entries determine. A torn tail (the last segment's
  // part) is rewritten on open; damage to the part made durable when later segments began
  // refuses to open, and an operator who has checked the entries (`probity ledger verify`)
  // may delete tree/ for the next open to rebuild it from them.
  ScratchDir scratch;
  auto options = MakeOptions(scratch, 1500);
  Hash root{};
  constexpr uint64_t kEntries = 40;
  {
    auto ledger = Ledger::Open(options);
    ASSERT_TRUE(ledger.ok());
    for (uint64_t i = 0; i < kEntries; ++i) ASSERT_TRUE((*ledger)->Append(SampleEntry(i)).ok());
    root = *(*ledger)->RootAt(kEntries);
  }
  ASSERT_GT(testing::SegmentFiles(options.dir).size(), 3u);
  const auto leaves = options.dir / "tree" / "level-00.hashes";
  std::string bytes = testing::ReadFile(leaves);
  std::fill(bytes.end() - 32, bytes.end(), '\0');
  testing::WriteFile(leaves, bytes);
  {
    auto repaired = Ledger::Open(options);
    ASSERT_TRUE(repaired.ok()) << repaired.status();
    EXPECT_EQ((*repaired)->Recovery().tree_nodes_rewritten, 1u);
    EXPECT_EQ(*(*repaired)->RootAt(kEntries), root);
  }
  // Level 5 node 0 covers entries 0..31, long durable: Open cannot rebuild it cheaply.
  const auto level5 = options.dir / "tree" / "level-05.hashes";
  bytes = testing::ReadFile(level5);
  ASSERT_EQ(bytes.size(), 32u);
  bytes[0] ^= 0x01;
  testing::WriteFile(level5, bytes);
  auto refused = Ledger::Open(options);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(std::string(refused.status().message()).find("delete the tree/"), std::string::npos)
      << refused.status();

  std::filesystem::remove_all(options.dir / "tree");
  auto rebuilt = Ledger::Open(options);
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status();
  EXPECT_EQ((*rebuilt)->Recovery().entries_rehashed, kEntries);
  EXPECT_EQ(*(*rebuilt)->RootAt(kEntries), root);
  EXPECT_TRUE(VerifyInclusion(3, kEntries, HashLeaf(SampleEntry(3).SerializeAsString()),
                              *(*rebuilt)->InclusionProof(3, kEntries), root)
                  .ok());
}

// A signer that signs with a real key until told to fail, as an OpenSSL failure would.
class FailingSigner final : public NoteSigner {
 public:
  explicit FailingSigner(std::unique_ptr<NoteSigner> real) : real_(std::move(real)) {}
  absl::StatusOr<std::string> Sign(const std::string& note_text) const override {
    if (fail) return absl::InternalError("signing failed (test)");
    return real_->Sign(note_text);
  }
  std::string VerifierKey() const override { return real_->VerifierKey(); }

  std::atomic<bool> fail = false;

 private:
  std::unique_ptr<NoteSigner> real_;
};

TEST(Ledger, FailedSignatureFailsTheGroupCommitClosedAndWritesNothing) {
  ScratchDir scratch;
  auto options = MakeOptions(scratch);
  auto real = NoteSigner::Load(options.signing_key, options.origin);
  ASSERT_TRUE(real.ok()) << real.status();
  auto signer = std::make_shared<FailingSigner>(*std::move(real));
  options.signer = signer;
  std::string checkpoint_before;
  {
    auto ledger = Ledger::Open(options);
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    ASSERT_TRUE((*ledger)->Append(SampleEntry(0)).ok());
    checkpoint_before = *(*ledger)->SignedCheckpoint();

    signer->fail = true;
    auto failed = (*ledger)->Append(SampleEntry(1));
    EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable) << failed.status();
    EXPECT_NE(failed.status().message().find("signing failed (test)"), std::string::npos);
    // Closed, as after a failed write: a signer that recovers does not reopen it.
    signer->fail = false;
    EXPECT_FALSE((*ledger)->Append(SampleEntry(2)).ok());
    EXPECT_EQ((*ledger)->Size(), 1u);
    EXPECT_EQ(*(*ledger)->SignedCheckpoint(), checkpoint_before);
  }
  // Nothing reached the files: reopened with the key alone, nothing is cut and one entry is left.
  options.signer = nullptr;
  auto reopened = Ledger::Open(options);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_FALSE((*reopened)->Recovery().tail_cut);
  EXPECT_EQ((*reopened)->Size(), 1u);
  EXPECT_EQ(*(*reopened)->SignedCheckpoint(), checkpoint_before);
}

TEST(Ledger, OpenFailsWhenTheEmptyTreeCannotBeSigned) {
  ScratchDir scratch;
  auto options = MakeOptions(scratch);
  auto real = NoteSigner::Load(options.signing_key, options.origin);
  ASSERT_TRUE(real.ok()) << real.status();
  auto signer = std::make_shared<FailingSigner>(*std::move(real));
  signer->fail = true;
  options.signer = signer;
  EXPECT_EQ(Ledger::Open(options).status().code(), absl::StatusCode::kInternal);
}

TEST(Ledger, SignerMustBeNamedForTheOrigin) {
  ScratchDir scratch;
  auto options = MakeOptions(scratch);
  auto other = NoteSigner::Load(options.signing_key, "another.origin/log");
  ASSERT_TRUE(other.ok()) << other.status();
  options.signer = *std::move(other);
  EXPECT_EQ(Ledger::Open(options).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Ledger, AVisitorErrorStopsReadEntriesAndIsReturned) {
  ScratchDir scratch;
  auto options = MakeOptions(scratch, /*max_segment_bytes=*/500);  // several segments
  {
    auto ledger = Ledger::Open(options);
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    for (uint64_t i = 0; i < 20; ++i) ASSERT_TRUE((*ledger)->Append(SampleEntry(i)).ok());
  }
  std::vector<uint64_t> visited;
  const absl::Status status =
      ReadEntries(options.dir, 0, [&](uint64_t index, std::string_view) -> absl::StatusOr<bool> {
        visited.push_back(index);
        if (index == 12) return absl::DataLossError("entry 12 is bad (test)");
        return true;
      });
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_EQ(status.message(), "entry 12 is bad (test)");
  EXPECT_EQ(visited.size(), 13u) << "no entry after the error is visited";
  EXPECT_EQ(visited.back(), 12u);

  // Returning false is a clean stop, not an error.
  visited.clear();
  EXPECT_TRUE(ReadEntries(options.dir, 3, [&](uint64_t index, std::string_view) {
                visited.push_back(index);
                return index < 5;
              }).ok());
  EXPECT_EQ(visited, (std::vector<uint64_t>{3, 4, 5}));
}

TEST(Ledger, RejectsBadOptions) {
  ScratchDir scratch;
  auto options = MakeOptions(scratch);
  options.origin = "";
  EXPECT_FALSE(Ledger::Open(options).ok());
  options = MakeOptions(scratch);
  options.signing_key = scratch.path() / "absent.pem";
  EXPECT_FALSE(Ledger::Open(options).ok());
}

}  // namespace
}  // namespace probity::ledger
