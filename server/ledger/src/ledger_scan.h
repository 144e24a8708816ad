#pragma once

// The full pass behind `probity ledger verify`: read every segment in order, re-hash every
// entry, rebuild the tree, compare it with the stored subtree hashes and with every commit
// marker (the signed checkpoint each group commit ends with). It stops at the first problem
// and names the segment and entry index. Opening a ledger does not run it (recovery.h).

#include <array>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "probity/ledger/checkpoint.h"
#include "probity/ledger/merkle.h"
#include "segment_file.h"
#include "tree_store.h"

namespace probity::ledger::internal {

struct LedgerProblem {
  uint64_t entry_index = 0;
  std::string segment;  // file name, empty when no single segment is to blame
  std::string what;
  std::string Describe() const;
};

// Records after the last commit marker: never acknowledged by the server (a group commit torn
// by a crash, or records added behind its back), which it moves to quarantine/ at its next
// start.
struct Uncommitted {
  std::string segment;               // where they begin
  uint64_t offset = 0;               // byte offset in that segment
  uint64_t first_entry = 0;          // index the first of them would have had
  uint64_t whole_records = 0;        // checksum-valid records among them
  uint64_t bytes = 0;                // over every segment they span
  std::optional<RecordDamage> torn;  // the damaged or incomplete record that ends the log
};

struct ScanResult {
  uint64_t entry_count = 0;  // entries covered by the last commit marker
  MerkleFrontier frontier;   // the tree over those entries
  uint64_t commit_markers = 0;
  std::string last_commit_marker;  // its signed note, covering entry_count entries
  std::optional<Uncommitted> uncommitted;
  std::optional<LedgerProblem> problem;
};

// Called for each committed entry with the tree after that entry was appended.
using ScanVisitor =
    std::function<void(uint64_t index, std::string_view payload, const MerkleFrontier& tree)>;

// With a verifier, every commit marker's signature is checked; without, only its text.
absl::StatusOr<ScanResult> ScanLedger(const std::filesystem::path& dir, const TreeStore& store,
                                      const NoteVerifier* verifier, std::string_view origin,
                                      const ScanVisitor& visit = nullptr);

// The checkpoint in a commit marker's payload: signature checked when `verifier` is given,
// origin checked when `origin` is not empty.
absl::StatusOr<Checkpoint> OpenCommitMarker(std::string_view payload, const NoteVerifier* verifier,
                                            std::string_view origin);

}  // namespace probity::ledger::internal
