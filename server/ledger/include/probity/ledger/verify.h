#pragma once

// The auditor's check behind `probity ledger verify`: re-hash every stored entry, rebuild the
// tree, compare it with the stored subtree hashes and with every commit marker (the signed
// checkpoint each group commit ends with: signature checked when a verifier is given), report
// records after the last commit marker (never acknowledged), and check each given signed
// checkpoint's signature, its root against the rebuilt tree, and its consistency with the
// earlier ones. This is the O(entries) check; Ledger::Open does not repeat it.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "probity/ledger/checkpoint.h"

namespace probity::ledger {

struct VerifyOptions {
  std::filesystem::path dir;
  std::vector<std::string> signed_checkpoints;  // signed note texts
  // Required when checkpoints are given; without it commit markers are checked against the
  // entries but their signatures are not.
  std::optional<NoteVerifier> verifier;
  std::string origin;  // expected checkpoint origin; empty: any
};

struct VerifyReport {
  uint64_t entries = 0;         // entries covered by the last commit marker, all re-hashed
  Hash root{};                  // rebuilt root over them
  uint64_t commit_markers = 0;  // commit markers that matched the entries before them
  // The signed checkpoint note of the last commit marker: the tree of `entries` entries, signed
  // by the log's key (checked when a verifier was given). Empty for an empty log.
  std::string last_signed_checkpoint;
  uint64_t uncommitted_records = 0;  // whole records after the last commit marker
  // The first entry index where the files and the tree or checkpoints disagree. When only a
  // checkpoint's root disagrees, the damage lies in [first_bad_entry, that checkpoint's size).
  std::optional<uint64_t> first_bad_entry;
  std::vector<std::string> problems;  // each an integrity failure
  // Not failures of the log but to be looked at: whole records after the last commit marker
  // (never acknowledged, never part of the log; a crash mid group commit or an injection).
  std::vector<std::string> warnings;
  std::vector<std::string> notes;  // observations that are not failures (a torn tail)
  std::vector<Checkpoint> checkpoints_verified;
  bool ok() const { return problems.empty(); }
};

// An error status only when the check itself cannot run (unreadable directory, bad options);
// every integrity finding is in the report.
absl::StatusOr<VerifyReport> VerifyLedger(const VerifyOptions& options);

}  // namespace probity::ledger
