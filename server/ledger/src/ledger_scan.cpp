#include "ledger_scan.h"

#include "absl/strings/str_cat.h"

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

absl::StatusOr<ScanResult> ScanLedger(const std::filesystem::path& dir, const TreeStore& store,
                                      const ScanVisitor& visit) {
  ScanResult result;
  std::vector<StoredLevelCursor> cursors;
  for (int level = 0; level < TreeStore::kMaxLevels; ++level) {
    auto stored = store.StoredCount(level);
    if (!stored.ok()) return stored.status();
    result.stored_counts[level] = *stored;
    cursors.emplace_back(store, level, *stored);
  }
  auto segments = ListSegments(dir);
  if (!segments.ok()) return segments.status();

  absl::Status io_status;
  auto check_entry = [&](const SegmentName& segment, uint64_t index, std::string_view payload) {
    if (result.problem || !io_status.ok()) return;
    for (const auto& node : result.frontier.Append(HashLeaf(payload))) {
      if (node.index >= result.stored_counts[node.level]) {
        result.unstored_nodes.push_back(node);
        continue;
      }
      auto stored = cursors[node.level].At(node.index);
      if (!stored.ok()) {
        io_status = stored.status();
        return;
      }
      if (*stored != node.hash) {
        const uint64_t first_leaf = node.index << node.level;
        result.problem = LedgerProblem{
            first_leaf, segment.path.filename().string(),
            node.level == 0
                ? "entry bytes do not match the stored leaf hash (edited, removed or reordered)"
                : absl::StrCat("stored subtree hash (level ", node.level,
                               ") does not match the entries it covers")};
        return;
      }
    }
    result.entry_count = index + 1;
    if (visit) visit(index, payload, result.frontier);
  };

  for (size_t s = 0; s < segments->size() && !result.problem; ++s) {
    const SegmentName& segment = (*segments)[s];
    const std::string name = segment.path.filename().string();
    const uint64_t expected = result.entry_count;
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
    auto contents = ReadSegment(
        segment.path, segment.first_index,
        [&](uint64_t index, std::string_view payload) { check_entry(segment, index, payload); });
    if (!contents.ok()) {
      result.problem = LedgerProblem{expected, name, std::string(contents.status().message())};
      break;
    }
    if (!io_status.ok()) return io_status;
    if (result.problem) break;
    result.segments.push_back({segment.path, segment.first_index, contents->record_offsets});
    if (!contents->damage) continue;
    const RecordDamage& damage = *contents->damage;
    const bool last_segment = s + 1 == segments->size();
    if (last_segment && damage.entry_index >= result.stored_counts[0]) {
      result.torn_tail = damage;
      result.torn_tail_segment = segment.path;
      break;
    }
    result.problem = LedgerProblem{
        damage.entry_index, name,
        absl::StrCat(damage.what, " at byte ", damage.offset,
                     last_segment ? " (an acknowledged entry)" : " (not the end of the log)")};
  }
  if (!result.problem) {
    for (int level = 0; level < TreeStore::kMaxLevels; ++level) {
      const uint64_t expected_nodes = result.entry_count >> level;
      if (result.stored_counts[level] > expected_nodes) {
        result.problem = LedgerProblem{
            result.entry_count, "",
            absl::StrCat("the stored tree covers ", result.stored_counts[level] << level,
                         " entries but the segments hold only ", result.entry_count,
                         " intact entries (entries were removed or truncated)")};
        break;
      }
    }
  }
  return result;
}

}  // namespace probity::ledger::internal
