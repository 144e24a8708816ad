#pragma once

// Public surface of the ledger library (no gRPC): an append-only, fsync'd, Merkle-tree query
// log with signed checkpoints; formats and recovery in the module README. Companions:
// merkle.h (RFC 6962 hashing and proofs), checkpoint.h (C2SP checkpoints), note.h (C2SP
// signed notes: signer, verifier, keys), reader.h (read-only access without the signing key),
// verify.h (the auditor's full check).

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "probity/ledger/commit_observer.h"
#include "probity/ledger/note.h"
#include "probity/v1/ledger_entry.pb.h"

namespace probity::ledger {

using Hash = std::array<uint8_t, 32>;

struct Options {
  std::filesystem::path dir;
  std::string origin;                        // checkpoint origin line, e.g. "probity.example/log"
  std::filesystem::path signing_key;         // Ed25519 private key PEM
  uint64_t max_segment_bytes = 64ull << 20;  // a new segment starts past this
  bool fsync = true;                         // false only for benchmarks comparing the cost
  // false: every append is flushed alone (one fsync each); only for benchmarks comparing it.
  bool group_commit = true;
  // Told about every group commit and failed append (monitoring); may be null.
  std::shared_ptr<CommitObserver> observer = nullptr;
  // When set, signs the checkpoints instead of the key at signing_key (which is then not
  // read); its key name must be `origin`. For a signer kept elsewhere, and for tests.
  std::shared_ptr<const NoteSigner> signer = nullptr;
};

struct Receipt {
  uint64_t index = 0;             // the entry's index in the log
  std::string signed_checkpoint;  // a signed checkpoint whose tree includes the entry
};

// What Open found and repaired. Each group commit ends with a commit marker (the signed
// checkpoint of the tree after it), written and flushed together with its entries; an append
// is acknowledged only after that flush. So bytes after the last commit marker were never
// acknowledged: a group commit torn by a crash, or records added while the server was
// stopped. Open never adopts them: it moves them to <dir>/quarantine/ (evidence), logs an
// error and reports them here.
struct RecoveryReport {
  bool tail_cut = false;     // bytes after the last commit marker were moved to quarantine
  std::string segment;       // file name of the segment where the cut bytes began
  uint64_t entry_index = 0;  // index the first cut entry would have had
  uint64_t bytes_cut = 0;
  uint64_t whole_records_cut = 0;  // checksum-valid records among them (0: only a torn write)
  std::vector<std::filesystem::path> quarantined;  // the files now holding the cut bytes
  std::string what;
  // Open checks the stored tree against the last commit marker's signed root and re-hashes
  // only the entries past the tree files' durable extent (about the last segment).
  uint64_t entries_rehashed = 0;
  uint64_t tree_nodes_rewritten = 0;  // stored subtree hashes Open found missing or torn
};

// Thread-safe. Append returns only when the entry and the commit marker of its group commit
// are durable (one write, one fdatasync, shared by concurrent appends). Open cuts whatever
// follows the last commit marker (quarantine, report), checks the stored tree against the
// marker's signed root, and refuses to open on damage it finds, naming segment and entry; a
// full re-hash of every entry is VerifyLedger's job (verify.h).
class Ledger {
 public:
  static absl::StatusOr<std::unique_ptr<Ledger>> Open(const Options& options);
  virtual ~Ledger() = default;

  virtual absl::StatusOr<Receipt> Append(const v1::LedgerEntry& entry) = 0;
  virtual uint64_t Size() const = 0;
  virtual absl::StatusOr<std::string> ReadEntry(uint64_t index) const = 0;  // stored bytes
  virtual absl::StatusOr<Hash> RootAt(uint64_t size) const = 0;
  virtual absl::StatusOr<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t size) const = 0;
  virtual absl::StatusOr<std::vector<Hash>> ConsistencyProof(uint64_t old_size,
                                                             uint64_t new_size) const = 0;
  virtual absl::StatusOr<std::string> SignedCheckpoint() const = 0;  // at the current size
  virtual std::string VerifierKey() const = 0;
  virtual RecoveryReport Recovery() const = 0;
  // Bytes of the segment files that hold the log (entries, commit markers, headers; not the
  // tree cache or quarantine). A ledger that keeps no files (a test double) has none.
  virtual uint64_t StoredBytes() const { return 0; }
};

}  // namespace probity::ledger
