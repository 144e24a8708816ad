#pragma once

// RFC 6962 / RFC 9162 Merkle tree hashing and proofs, as pure functions. The same tree as
// Certificate Transparency and Go's sumdb/tlog, so their verifiers accept these proofs.
//
// Generation works over a SubtreeHashes source that returns the hash of a complete, aligned
// subtree (2^level leaves starting at index << level). A store that keeps those hashes makes
// every root, inclusion proof and consistency proof cost O(log n) lookups.

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "probity/ledger/ledger.h"

namespace probity::ledger {

Hash Sha256(std::string_view bytes);
Hash HashLeaf(std::string_view entry_bytes);             // SHA-256(0x00 || entry)
Hash HashChildren(const Hash& left, const Hash& right);  // SHA-256(0x01 || left || right)
Hash EmptyTreeRoot();                                    // SHA-256("")

std::string ToHex(std::span<const uint8_t> bytes);
absl::StatusOr<Hash> HashFromHex(std::string_view hex);

// Hash of the complete subtree of 2^level leaves that starts at leaf (index << level).
using SubtreeHashes = std::function<absl::StatusOr<Hash>(int level, uint64_t index)>;

// A SubtreeHashes over leaf hashes held in memory (tests, verifiers, small trees).
SubtreeHashes SubtreeHashesFromLeaves(std::span<const Hash> leaf_hashes);

// MTH(D[begin:end]) as RFC 6962 defines it for the subtrees that proofs use.
absl::StatusOr<Hash> RangeHash(uint64_t begin, uint64_t end, const SubtreeHashes& subtrees);
absl::StatusOr<Hash> RootAt(uint64_t size, const SubtreeHashes& subtrees);

// PATH(index, D[0:size]) and PROOF(old_size, D[0:new_size]) of RFC 6962 §2.1.1 / §2.1.2.
absl::StatusOr<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t size,
                                                 const SubtreeHashes& subtrees);
absl::StatusOr<std::vector<Hash>> ConsistencyProof(uint64_t old_size, uint64_t new_size,
                                                   const SubtreeHashes& subtrees);

// RFC 9162 §2.1.3.2 and §2.1.4.2 verification; any failure is an error saying which check.
absl::Status VerifyInclusion(uint64_t index, uint64_t size, const Hash& leaf_hash,
                             std::span<const Hash> proof, const Hash& root);
absl::Status VerifyConsistency(uint64_t old_size, uint64_t new_size, const Hash& old_root,
                               const Hash& new_root, std::span<const Hash> proof);

// Incremental builder: keeps the right edge (one pending hash per level) so that appending a
// leaf yields the complete subtrees it finishes, without re-reading anything.
class MerkleFrontier {
 public:
  struct CompletedNode {
    int level;
    uint64_t index;
    Hash hash;
  };
  // Appends a leaf hash; returns every complete subtree that now exists and did not before,
  // from level 0 upwards (level 0 is the leaf itself).
  std::vector<CompletedNode> Append(const Hash& leaf_hash);
  // The frontier of a tree of `size` leaves from its stored complete subtrees (one per set bit
  // of size: O(log n) lookups), so appending can resume without re-reading the leaves.
  static absl::StatusOr<MerkleFrontier> FromSubtrees(uint64_t size, const SubtreeHashes& subtrees);
  uint64_t size() const { return size_; }
  Hash Root() const;  // root of the whole tree so far

 private:
  uint64_t size_ = 0;
  std::vector<Hash> pending_;  // pending_[level]: complete left subtree waiting for a sibling
};

}  // namespace probity::ledger
