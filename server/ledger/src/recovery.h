#pragma once

// What Ledger::Open does before it accepts appends, in O(size of the last segment) rather than
// O(entries):
//  1. read every segment header (28 bytes each) and check the chain of first indices;
//  2. find the last commit marker whose signature verifies with the ledger's key, reading
//     segments from the end; everything after it is moved to quarantine/ and reported;
//  3. check the stored tree against that marker's signed size and root, re-hashing only the
//     entries past the tree files' durable extent (the tree of every segment but the last is
//     fsync'd when the next segment starts), and rewrite the tree nodes past that extent.
// Damage found on the way refuses the open, naming the segment and entry.

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "probity/ledger/ledger.h"
#include "probity/ledger/merkle.h"
#include "probity/ledger/note.h"
#include "tree_store.h"

namespace probity::ledger::internal {

struct SegmentIndex {
  std::filesystem::path path;
  uint64_t first_index = 0;
  // Offsets of its entry records; loaded on first use except for the active segment.
  std::vector<uint64_t> entry_offsets;
  bool offsets_loaded = false;
};

struct RecoveredLedger {
  std::vector<SegmentIndex> segments;  // the last one is the active segment
  uint64_t active_bytes = 0;           // its size after any cut
  uint64_t size = 0;                   // entries covered by the last commit marker
  MerkleFrontier frontier;             // the tree over them
  std::string checkpoint;              // the last commit marker's signed note; empty if none
  RecoveryReport report;
};

// `durable` false (Options::fsync off) skips the fsyncs of the repairs and the quarantine.
absl::StatusOr<RecoveredLedger> RecoverLedger(const std::filesystem::path& dir, TreeStore& store,
                                              const NoteVerifier& verifier, std::string_view origin,
                                              bool durable);

// The entry record offsets of a segment that is not the active one, which must hold exactly
// `entries` entries.
absl::StatusOr<std::vector<uint64_t>> LoadEntryOffsets(const SegmentIndex& segment,
                                                       uint64_t entries);

}  // namespace probity::ledger::internal
