#include "ledger_scan.h"

#include "absl/strings/str_cat.h"
#include "probity/common/file_read.h"
#include "probity/common/string_view.h"

namespace probity::ledger::internal {
namespace {

// Reads one level of stored hashes sequentially in blocks, so a scan costs few syscalls.
class StoredLevelCursor {
 public:
  StoredLevelCursor(const TreeStore& store, int level, uint64_t stored)
      : store_(store), level_(level), stored_(stored) {}

  absl::StatusOr<Hash> At(uint64_t index) {
    if (index < block_begin_ || index >= block_begin_ + block_.size()) {
      const uint64_t count = std::min<uint64_t>(kBlock, stored_ - index);
      auto block = store_.ReadRange(level_, index, count);
      if (!block.ok()) return block.status();
      block_ = std::move(*block);
      block_begin_ = index;
    }
    return block_[index - block_begin_];
  }

 private:
  static constexpr uint64_t kBlock = 4096;
  const TreeStore& store_;
  int level_;
  uint64_t stored_;
  uint64_t block_begin_ = 0;
  std::vector<Hash> block_;
};

}  // namespace

std::string LedgerProblem::Describe() const {
  if (segment.empty()) return absl::StrCat("entry ", entry_index, ": ", what);
  return absl::StrCat("segment ", segment, ", entry ", entry_index, ": ", what);
}

absl::StatusOr<Checkpoint> OpenCommitMarker(std::string_view payload, const NoteVerifier* verifier,
                                            std::string_view origin) {
  if (verifier != nullptr) return OpenSignedCheckpoint(payload, *verifier, origin);
  const size_t split = payload.rfind("\n\n");
  if (split == std::string_view::npos) {
    return absl::InvalidArgumentError("commit marker is not a signed note");
  }
  auto checkpoint = ParseCheckpoint(payload.substr(0, split + 1));
  if (!checkpoint.ok()) return checkpoint.status();
  if (!origin.empty() && checkpoint->origin != origin) {
    return absl::InvalidArgumentError(absl::StrCat("commit marker origin '", checkpoint->origin,
                                                   "' is not '", common::AsAbsl(origin), "'"));
  }
  return checkpoint;
}

absl::StatusOr<ScanResult> ScanLedger(const std::filesystem::path& dir, const TreeStore& store,
                                      const NoteVerifier* verifier, std::string_view origin,
                                      const ScanVisitor& visit) {
  ScanResult result;
  std::array<uint64_t, TreeStore::kMaxLevels> stored_counts{};
  std::vector<StoredLevelCursor> cursors;
  for (int level = 0; level < TreeStore::kMaxLevels; ++level) {
    auto stored = store.StoredCount(level);
    if (!stored.ok()) return stored.status();
    stored_counts[level] = *stored;
    cursors.emplace_back(store, level, *stored);
  }
  auto segments = ListSegments(dir);
  if (!segments.ok()) return segments.status();

  MerkleFrontier tree;          // over every intact entry so far
  uint64_t committed_size = 0;  // of the last commit marker
  Uncommitted tail;             // what follows the last commit marker
  if (!segments->empty()) tail.segment = segments->front().path.filename().string();
  absl::Status io_status;

  auto check_entry = [&](const std::string& segment, uint64_t index, std::string_view payload) {
    for (const auto& node : tree.Append(HashLeaf(payload))) {
      if (node.index >= stored_counts[node.level]) continue;
      auto stored = cursors[node.level].At(node.index);
      if (!stored.ok()) {
        io_status = stored.status();
        return;
      }
      if (*stored != node.hash) {
        result.problem = LedgerProblem{
            node.index << node.level, segment,
            node.level == 0
                ? "entry bytes do not match the stored leaf hash (edited, removed or reordered)"
                : absl::StrCat("stored subtree hash (level ", node.level,
                               ") does not match the entries it covers")};
        return;
      }
    }
    ++tail.whole_records;
    if (visit) visit(index, payload, tree);
  };

  auto check_commit = [&](const std::string& segment, const RecordInfo& record,
                          std::string_view payload) {
    const std::string where = absl::StrCat("commit marker at byte ", record.offset);
    auto checkpoint = OpenCommitMarker(payload, verifier, origin);
    if (!checkpoint.ok()) {
      result.problem = LedgerProblem{
          committed_size, segment,
          absl::StrCat(where, " is not a checkpoint of this log: ", checkpoint.status().message())};
      return;
    }
    if (checkpoint->size != record.entry_index) {
      result.problem =
          LedgerProblem{committed_size, segment,
                        absl::StrCat(where, " covers ", checkpoint->size, " entries but follows ",
                                     record.entry_index, " (entries were removed or added)")};
      return;
    }
    if (checkpoint->root != tree.Root()) {
      result.problem = LedgerProblem{
          committed_size, segment,
          absl::StrCat(where,
                       ": its root differs from the tree rebuilt from the entries; an entry in [",
                       committed_size, ", ", checkpoint->size, ") was changed")};
      return;
    }
    ++result.commit_markers;
    committed_size = checkpoint->size;
    result.entry_count = committed_size;
    result.last_commit_marker = std::string(payload);
    result.frontier = tree;
    tail = Uncommitted{segment, record.end, committed_size, 0, 0, std::nullopt};
  };

  uint64_t expected = 0;
  for (size_t s = 0; s < segments->size() && !result.problem; ++s) {
    const SegmentName& segment = (*segments)[s];
    const std::string name = segment.path.filename().string();
    if (segment.first_index != expected) {
      result.problem = LedgerProblem{
          expected, name,
          segment.first_index > expected
              ? absl::StrCat("entries ", expected, "..", segment.first_index - 1,
                             " are in no segment (a segment is missing or was truncated)")
              : absl::StrCat("segment starts at entry ", segment.first_index,
                             ", which earlier segments already hold")};
      break;
    }
    auto bytes = common::ReadFileToString(segment.path);
    if (!bytes.ok()) return bytes.status();
    const SegmentContents contents = DecodeSegment(
        *bytes, segment.first_index, [&](const RecordInfo& record, std::string_view payload) {
          if (result.problem || !io_status.ok()) return;
          if (record.type == RecordType::kEntry) {
            check_entry(name, record.entry_index, payload);
          } else {
            check_commit(name, record, payload);
          }
        });
    if (!io_status.ok()) return io_status;
    if (result.problem) break;
    const uint64_t expected_previous = s == 0 ? kNoPreviousSegment : (*segments)[s - 1].first_index;
    if ((!contents.damage || contents.damage->offset > 0) &&
        contents.header.previous_first_index != expected_previous) {
      result.problem = LedgerProblem{
          segment.first_index, name,
          "segment header names another previous segment (a segment is missing or was renamed)"};
      break;
    }
    tail.bytes += bytes->size() - (tail.segment == name ? tail.offset : 0);
    expected = segment.first_index + contents.entry_count;
    if (!contents.damage) continue;
    const RecordDamage& damage = *contents.damage;
    if (s + 1 != segments->size()) {
      result.problem = LedgerProblem{
          damage.entry_index, name,
          absl::StrCat(damage.what, " at byte ", damage.offset, " (not the end of the log)")};
      break;
    }
    tail.torn = damage;
  }
  if (result.problem) return result;
  if (tail.bytes > 0) result.uncommitted = tail;
  for (int level = 0; level < TreeStore::kMaxLevels; ++level) {
    if (stored_counts[level] > result.entry_count >> level) {
      result.problem =
          LedgerProblem{result.entry_count, "",
                        absl::StrCat("the stored tree covers ", stored_counts[level] << level,
                                     " entries but commit markers cover only ", result.entry_count,
                                     " (entries or commit markers were removed)")};
      break;
    }
  }
  return result;
}

}  // namespace probity::ledger::internal
