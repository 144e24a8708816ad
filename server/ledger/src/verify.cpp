#include "probity/ledger/verify.h"

#include <algorithm>
#include <iterator>
#include <map>

#include "absl/strings/str_cat.h"
#include "ledger_scan.h"
#include "probity/ledger/merkle.h"
#include "tree_store.h"

namespace probity::ledger {
namespace {

void NoteBadEntry(VerifyReport& report, uint64_t index) {
  if (!report.first_bad_entry || index < *report.first_bad_entry) report.first_bad_entry = index;
}

}  // namespace

absl::StatusOr<VerifyReport> VerifyLedger(const VerifyOptions& options) {
  std::error_code error;
  if (!std::filesystem::is_directory(options.dir, error)) {
    return absl::NotFoundError(absl::StrCat(options.dir.string(), " is not a ledger directory"));
  }
  if (!options.signed_checkpoints.empty() && !options.verifier) {
    return absl::InvalidArgumentError("checking checkpoints needs the log's verifier key");
  }
  VerifyReport report;

  std::vector<Checkpoint> checkpoints;
  for (size_t i = 0; i < options.signed_checkpoints.size(); ++i) {
    auto checkpoint =
        OpenSignedCheckpoint(options.signed_checkpoints[i], *options.verifier, options.origin);
    if (!checkpoint.ok()) {
      report.problems.push_back(
          absl::StrCat("checkpoint #", i + 1, " rejected: ", checkpoint.status().message()));
      continue;
    }
    checkpoints.push_back(*checkpoint);
  }
  std::stable_sort(checkpoints.begin(), checkpoints.end(),
                   [](const auto& a, const auto& b) { return a.size < b.size; });

  // Roots of the rebuilt tree at every checkpoint size, taken as the scan passes them.
  std::map<uint64_t, Hash> rebuilt_roots{{0, EmptyTreeRoot()}};
  for (const auto& checkpoint : checkpoints) rebuilt_roots.emplace(checkpoint.size, Hash{});
  auto store = internal::TreeStore::Open(options.dir, /*writable=*/false);
  if (!store.ok()) return store.status();
  const NoteVerifier* verifier = options.verifier ? &*options.verifier : nullptr;
  auto scan = internal::ScanLedger(options.dir, **store, verifier, options.origin,
                                   [&](uint64_t, std::string_view, const MerkleFrontier& tree) {
                                     if (auto it = rebuilt_roots.find(tree.size());
                                         it != rebuilt_roots.end()) {
                                       it->second = tree.Root();
                                     }
                                   });
  if (!scan.ok()) return scan.status();
  report.entries = scan->entry_count;
  report.root = scan->frontier.Root();
  report.commit_markers = scan->commit_markers;
  report.last_signed_checkpoint = scan->last_commit_marker;
  if (scan->problem) {
    report.problems.push_back(scan->problem->Describe());
    NoteBadEntry(report, scan->problem->entry_index);
  } else if (!verifier) {
    report.notes.push_back(
        "commit markers checked against the entries but not their signatures (no verifier key)");
  }
  if (const auto& tail = scan->uncommitted) {
    const std::string where = absl::StrCat("segment ", tail->segment, " from byte ", tail->offset,
                                           ", entry ", tail->first_entry, ": ");
    if (tail->whole_records > 0) {
      // Not part of the log, and not a failure of it: a crash or a failed write during a group
      // commit leaves exactly this, and so do records added behind the server's back. Whoever
      // runs verify must look, so it is a warning, not a note.
      report.uncommitted_records = tail->whole_records;
      report.warnings.push_back(absl::StrCat(
          where, tail->whole_records, " whole record(s), ", tail->bytes,
          " bytes, after the last commit marker: never acknowledged and not part of the log "
          "(a crash or write failure during a group commit, or records added while the server "
          "was stopped); the server moves them to quarantine/ at its next start"));
    } else {
      report.notes.push_back(absl::StrCat(
          where, tail->bytes,
          " bytes of a torn write after the last commit marker (never acknowledged; the server "
          "moves them to quarantine/ at its next start)",
          tail->torn ? absl::StrCat(": ", tail->torn->what) : std::string()));
    }
  }
  std::error_code ignored;
  const auto quarantine = options.dir / "quarantine";
  if (std::filesystem::is_directory(quarantine, ignored)) {
    const auto files = std::distance(std::filesystem::directory_iterator(quarantine, ignored),
                                     std::filesystem::directory_iterator());
    if (files > 0) {
      report.notes.push_back(absl::StrCat(
          "quarantine/ holds ", files,
          " file(s) of bytes cut at earlier starts (never part of the log; evidence to examine)"));
    }
  }

  const Checkpoint* previous = nullptr;
  for (const auto& checkpoint : checkpoints) {
    const std::string label = absl::StrCat("checkpoint at size ", checkpoint.size);
    if (checkpoint.size > scan->entry_count) {
      if (scan->problem) {
        report.notes.push_back(absl::StrCat(label, ": not checked, the log is damaged before"));
      } else {
        report.problems.push_back(absl::StrCat(label, ": the log holds only ", scan->entry_count,
                                               " intact entries (entries were removed)"));
        NoteBadEntry(report, scan->entry_count);
      }
      continue;
    }
    if (rebuilt_roots.at(checkpoint.size) != checkpoint.root) {
      const uint64_t since = previous ? previous->size : 0;
      report.problems.push_back(absl::StrCat(
          label, ": its root differs from the tree rebuilt from the entries; an entry in [", since,
          ", ", checkpoint.size, ") was changed"));
      NoteBadEntry(report, since);
      continue;
    }
    if (previous && !scan->problem) {
      // What an outside auditor checks between two checkpoints, on the stored tree.
      auto proof = (*store)->Source(scan->entry_count);
      auto consistency = ConsistencyProof(previous->size, checkpoint.size, proof);
      absl::Status status = consistency.ok()
                                ? VerifyConsistency(previous->size, checkpoint.size, previous->root,
                                                    checkpoint.root, *consistency)
                                : consistency.status();
      if (!status.ok()) {
        report.problems.push_back(absl::StrCat(label, ": not consistent with the checkpoint at ",
                                               previous->size, ": ", status.message()));
        NoteBadEntry(report, previous->size);
        continue;
      }
    }
    report.checkpoints_verified.push_back(checkpoint);
    previous = &checkpoint;
  }
  return report;
}

}  // namespace probity::ledger
