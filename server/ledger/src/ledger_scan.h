#pragma once

// The one pass that both opening a ledger and auditing it rely on: read every segment in
// order, re-hash every entry, rebuild the tree and compare it with the stored subtree hashes.
// It stops at the first problem and names the segment and entry index.

#include <array>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "probity/ledger/merkle.h"
#include "segment_file.h"
#include "tree_store.h"

namespace probity::ledger::internal {

struct SegmentIndex {
  std::filesystem::path path;
  uint64_t first_index = 0;
  std::vector<uint64_t> record_offsets;
};

struct LedgerProblem {
  uint64_t entry_index = 0;
  std::string segment;  // file name, empty when no single segment is to blame
  std::string what;
  std::string Describe() const;
};

struct ScanResult {
  std::vector<SegmentIndex> segments;
  uint64_t entry_count = 0;  // intact entries before the first damage
  MerkleFrontier frontier;   // the tree over those entries
  // Damage at the very end of the log that only touches entries never acknowledged (their
  // hashes were never stored): a torn write from a crash, safe to cut.
  std::optional<RecordDamage> torn_tail;
  std::filesystem::path torn_tail_segment;
  std::array<uint64_t, TreeStore::kMaxLevels> stored_counts{};
  // Complete subtrees of the rebuilt tree that the tree files do not hold yet.
  std::vector<MerkleFrontier::CompletedNode> unstored_nodes;
  std::optional<LedgerProblem> problem;
};

// Called for each intact entry with the tree after that entry was appended.
using ScanVisitor =
    std::function<void(uint64_t index, std::string_view payload, const MerkleFrontier& tree)>;

absl::StatusOr<ScanResult> ScanLedger(const std::filesystem::path& dir, const TreeStore& store,
                                      const ScanVisitor& visit = nullptr);

}  // namespace probity::ledger::internal
