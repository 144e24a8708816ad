#include "probity/ledger/merkle.h"

#include <bit>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "probity/common/hex.h"
#include "probity/common/sha256.h"

namespace probity::ledger {
namespace {

constexpr uint8_t kLeafPrefix = 0x00;
constexpr uint8_t kNodePrefix = 0x01;

// An OpenSSL failure (out of memory) gives the zero hash, which matches no genuine tree: proofs
// and roots computed with it fail verification rather than pass.
Hash Sha256Parts(std::initializer_list<std::span<const uint8_t>> parts) {
  common::Sha256Hasher hasher;
  for (const auto& part : parts) hasher.Update(part);
  absl::StatusOr<common::Sha256Digest> digest = hasher.Finish();
  return digest.ok() ? *digest : Hash{};
}

std::span<const uint8_t> AsBytes(std::string_view text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

// Largest power of two strictly smaller than n (n >= 2): RFC 6962's split point k.
uint64_t SplitPoint(uint64_t n) { return std::bit_floor(n - 1); }

absl::Status InclusionPath(uint64_t index, uint64_t begin, uint64_t end,
                           const SubtreeHashes& subtrees, std::vector<Hash>& path) {
  if (end - begin == 1) return absl::OkStatus();
  const uint64_t k = SplitPoint(end - begin);
  if (index < begin + k) {
    if (auto status = InclusionPath(index, begin, begin + k, subtrees, path); !status.ok())
      return status;
    auto sibling = RangeHash(begin + k, end, subtrees);
    if (!sibling.ok()) return sibling.status();
    path.push_back(*sibling);
  } else {
    if (auto status = InclusionPath(index, begin + k, end, subtrees, path); !status.ok())
      return status;
    auto sibling = RangeHash(begin, begin + k, subtrees);
    if (!sibling.ok()) return sibling.status();
    path.push_back(*sibling);
  }
  return absl::OkStatus();
}

// SUBPROOF(m, D[begin:end], complete) of RFC 6962 §2.1.2, with m counted from begin.
absl::Status ConsistencySubproof(uint64_t m, uint64_t begin, uint64_t end, bool complete,
                                 const SubtreeHashes& subtrees, std::vector<Hash>& proof) {
  const uint64_t n = end - begin;
  if (m == n) {
    if (complete) return absl::OkStatus();
    auto hash = RangeHash(begin, end, subtrees);
    if (!hash.ok()) return hash.status();
    proof.push_back(*hash);
    return absl::OkStatus();
  }
  const uint64_t k = SplitPoint(n);
  if (m <= k) {
    if (auto status = ConsistencySubproof(m, begin, begin + k, complete, subtrees, proof);
        !status.ok())
      return status;
    auto hash = RangeHash(begin + k, end, subtrees);
    if (!hash.ok()) return hash.status();
    proof.push_back(*hash);
  } else {
    if (auto status = ConsistencySubproof(m - k, begin + k, end, false, subtrees, proof);
        !status.ok())
      return status;
    auto hash = RangeHash(begin, begin + k, subtrees);
    if (!hash.ok()) return hash.status();
    proof.push_back(*hash);
  }
  return absl::OkStatus();
}

}  // namespace

Hash Sha256(std::string_view bytes) { return Sha256Parts({AsBytes(bytes)}); }

Hash HashLeaf(std::string_view entry_bytes) {
  const uint8_t prefix = kLeafPrefix;
  return Sha256Parts({{&prefix, 1}, AsBytes(entry_bytes)});
}

Hash HashChildren(const Hash& left, const Hash& right) {
  const uint8_t prefix = kNodePrefix;
  return Sha256Parts({{&prefix, 1}, left, right});
}

Hash EmptyTreeRoot() { return Sha256(""); }

std::string ToHex(std::span<const uint8_t> bytes) { return common::LowercaseHex(bytes); }

absl::StatusOr<Hash> HashFromHex(std::string_view hex) {
  if (hex.size() != 64) return absl::InvalidArgumentError("a hash is 64 hex digits");
  Hash out{};
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < out.size(); ++i) {
    const int high = nibble(hex[2 * i]);
    const int low = nibble(hex[2 * i + 1]);
    if (high < 0 || low < 0) return absl::InvalidArgumentError("a hash is 64 hex digits");
    out[i] = static_cast<uint8_t>(high << 4 | low);
  }
  return out;
}

SubtreeHashes SubtreeHashesFromLeaves(std::span<const Hash> leaf_hashes) {
  return [leaf_hashes](int level, uint64_t index) -> absl::StatusOr<Hash> {
    const uint64_t width = uint64_t{1} << level;
    const uint64_t begin = index << level;
    if (begin + width > leaf_hashes.size()) {
      return absl::OutOfRangeError(
          absl::StrCat("subtree ", level, "/", index, " beyond ", leaf_hashes.size(), " leaves"));
    }
    if (level == 0) return leaf_hashes[index];
    std::vector<Hash> row(leaf_hashes.begin() + begin, leaf_hashes.begin() + begin + width);
    while (row.size() > 1) {
      for (size_t i = 0; i < row.size() / 2; ++i) row[i] = HashChildren(row[2 * i], row[2 * i + 1]);
      row.resize(row.size() / 2);
    }
    return row[0];
  };
}

absl::StatusOr<Hash> RangeHash(uint64_t begin, uint64_t end, const SubtreeHashes& subtrees) {
  if (begin >= end) return absl::InvalidArgumentError("empty subtree range");
  const uint64_t n = end - begin;
  if (std::has_single_bit(n) && begin % n == 0) {
    const int level = std::countr_zero(n);
    return subtrees(level, begin >> level);
  }
  const uint64_t k = SplitPoint(n);
  auto left = RangeHash(begin, begin + k, subtrees);
  if (!left.ok()) return left.status();
  auto right = RangeHash(begin + k, end, subtrees);
  if (!right.ok()) return right.status();
  return HashChildren(*left, *right);
}

absl::StatusOr<Hash> RootAt(uint64_t size, const SubtreeHashes& subtrees) {
  if (size == 0) return EmptyTreeRoot();
  return RangeHash(0, size, subtrees);
}

absl::StatusOr<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t size,
                                                 const SubtreeHashes& subtrees) {
  if (index >= size) {
    return absl::InvalidArgumentError(
        absl::StrCat("inclusion proof: index ", index, " is not below tree size ", size));
  }
  std::vector<Hash> path;
  if (auto status = InclusionPath(index, 0, size, subtrees, path); !status.ok()) return status;
  return path;
}

absl::StatusOr<std::vector<Hash>> ConsistencyProof(uint64_t old_size, uint64_t new_size,
                                                   const SubtreeHashes& subtrees) {
  if (old_size > new_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("consistency proof: old size ", old_size, " exceeds new size ", new_size));
  }
  std::vector<Hash> proof;
  if (old_size == 0 || old_size == new_size) return proof;
  if (auto status = ConsistencySubproof(old_size, 0, new_size, true, subtrees, proof); !status.ok())
    return status;
  return proof;
}

absl::Status VerifyInclusion(uint64_t index, uint64_t size, const Hash& leaf_hash,
                             std::span<const Hash> proof, const Hash& root) {
  if (index >= size) {
    return absl::InvalidArgumentError(
        absl::StrCat("inclusion: index ", index, " is not below tree size ", size));
  }
  uint64_t fn = index;
  uint64_t sn = size - 1;
  Hash r = leaf_hash;
  for (const Hash& p : proof) {
    if (sn == 0) return absl::DataLossError("inclusion: proof is longer than the tree is deep");
    if ((fn & 1) || fn == sn) {
      r = HashChildren(p, r);
      if (!(fn & 1)) {
        while (!(fn & 1) && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = HashChildren(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return absl::DataLossError("inclusion: proof is shorter than the tree is deep");
  if (r != root) return absl::DataLossError("inclusion: computed root differs from the root");
  return absl::OkStatus();
}

absl::Status VerifyConsistency(uint64_t old_size, uint64_t new_size, const Hash& old_root,
                               const Hash& new_root, std::span<const Hash> proof) {
  if (old_size > new_size) {
    return absl::InvalidArgumentError("consistency: old size exceeds new size");
  }
  if (old_size == new_size) {
    if (!proof.empty()) return absl::DataLossError("consistency: equal sizes need no proof");
    if (old_root != new_root) return absl::DataLossError("consistency: same size, roots differ");
    return absl::OkStatus();
  }
  if (old_size == 0) {
    // The empty tree is a prefix of every tree; RFC 9162 defines no proof for it.
    if (!proof.empty()) return absl::DataLossError("consistency: empty tree needs no proof");
    if (old_root != EmptyTreeRoot()) return absl::DataLossError("consistency: bad empty root");
    return absl::OkStatus();
  }
  if (proof.empty()) return absl::DataLossError("consistency: proof is empty");
  std::vector<Hash> path;
  if (std::has_single_bit(old_size)) path.push_back(old_root);
  path.insert(path.end(), proof.begin(), proof.end());
  uint64_t fn = old_size - 1;
  uint64_t sn = new_size - 1;
  while (fn & 1) {
    fn >>= 1;
    sn >>= 1;
  }
  Hash fr = path[0];
  Hash sr = path[0];
  for (size_t i = 1; i < path.size(); ++i) {
    const Hash& c = path[i];
    if (sn == 0) return absl::DataLossError("consistency: proof is too long");
    if ((fn & 1) || fn == sn) {
      fr = HashChildren(c, fr);
      sr = HashChildren(c, sr);
      if (!(fn & 1)) {
        while (!(fn & 1) && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      sr = HashChildren(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return absl::DataLossError("consistency: proof is too short");
  if (fr != old_root) return absl::DataLossError("consistency: old root does not match");
  if (sr != new_root) return absl::DataLossError("consistency: new root does not match");
  return absl::OkStatus();
}

std::vector<MerkleFrontier::CompletedNode> MerkleFrontier::Append(const Hash& leaf_hash) {
  std::vector<CompletedNode> completed;
  Hash hash = leaf_hash;
  int level = 0;
  completed.push_back({0, size_, hash});
  while ((size_ >> level) & 1) {
    hash = HashChildren(pending_[level], hash);
    ++level;
    completed.push_back({level, ((size_ + 1) >> level) - 1, hash});
  }
  if (pending_.size() <= static_cast<size_t>(level)) pending_.resize(level + 1);
  pending_[level] = hash;
  ++size_;
  return completed;
}

absl::StatusOr<MerkleFrontier> MerkleFrontier::FromSubtrees(uint64_t size,
                                                            const SubtreeHashes& subtrees) {
  MerkleFrontier frontier;
  frontier.size_ = size;
  for (int level = 0; level < 64 && (size >> level) != 0; ++level) {
    frontier.pending_.resize(level + 1);
    if (!((size >> level) & 1)) continue;
    auto hash = subtrees(level, (size >> level) - 1);
    if (!hash.ok()) return hash.status();
    frontier.pending_[level] = *hash;
  }
  return frontier;
}

Hash MerkleFrontier::Root() const {
  if (size_ == 0) return EmptyTreeRoot();
  bool have = false;
  Hash root{};
  for (size_t level = 0; level < pending_.size(); ++level) {
    if (!((size_ >> level) & 1)) continue;
    root = have ? HashChildren(pending_[level], root) : pending_[level];
    have = true;
  }
  return root;
}

}  // namespace probity::ledger
