#pragma once

// Read-only access to a ledger directory for auditors and tools: needs no signing key, takes
// no lock and never writes, so it can run beside a live server.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "probity/ledger/ledger.h"

namespace probity::ledger {

namespace internal {
class TreeStore;
}

// What ReadEntries calls for each entry: true to go on, false to stop there (not an error),
// or an error, which stops the scan and is what ReadEntries returns. A plain bool-returning
// visitor converts.
using EntryVisitor = std::function<absl::StatusOr<bool>(uint64_t index, std::string_view bytes)>;

// Calls visit(index, stored bytes) for every acknowledged entry from `begin` on, in order:
// entries followed by a commit marker (whose signature only VerifyLedger checks). Commit
// markers are not visited. Records after the last commit marker (never acknowledged) and a
// torn record at the very end are skipped quietly; any other damage is an error naming the
// segment and entry.
absl::Status ReadEntries(const std::filesystem::path& dir, uint64_t begin,
                         const EntryVisitor& visit);

// Proofs from the stored subtree hashes, without re-reading the entries (run `VerifyLedger`
// to check those). Size() counts the entries whose leaf hash is stored: the tree files are
// written after each group commit's flush, so these are acknowledged entries (after a power
// loss, until the server's next start repairs a torn tree tail, proofs may not verify).
class LedgerReader {
 public:
  static absl::StatusOr<std::unique_ptr<LedgerReader>> Open(const std::filesystem::path& dir);
  ~LedgerReader();

  uint64_t Size() const { return size_; }
  absl::StatusOr<Hash> LeafHash(uint64_t index) const;
  absl::StatusOr<Hash> RootAt(uint64_t size) const;
  absl::StatusOr<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t size) const;
  absl::StatusOr<std::vector<Hash>> ConsistencyProof(uint64_t old_size, uint64_t new_size) const;

 private:
  LedgerReader() = default;
  absl::Status CheckSize(uint64_t size) const;

  std::unique_ptr<internal::TreeStore> store_;
  uint64_t size_ = 0;
};

}  // namespace probity::ledger
