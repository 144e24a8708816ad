#pragma once

// Stored complete-subtree hashes: <ledger dir>/tree/level-NN.hashes holds, for level L, the
// hash of every complete aligned subtree of 2^L leaves, 32 bytes each, in order. Level 0 is
// the leaf hashes. Any root or proof then needs O(log n) reads (merkle.h RangeHash).

#include <array>
#include <filesystem>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "probity/ledger/merkle.h"

namespace probity::ledger::internal {

class TreeStore {
 public:
  static constexpr int kMaxLevels = 64;

  static absl::StatusOr<std::unique_ptr<TreeStore>> Open(const std::filesystem::path& ledger_dir,
                                                         bool writable);
  ~TreeStore();
  TreeStore(const TreeStore&) = delete;
  TreeStore& operator=(const TreeStore&) = delete;

  const std::filesystem::path& LevelPath(int level) const { return level_paths_[level]; }
  absl::StatusOr<uint64_t> StoredCount(int level) const;  // whole hashes in the level file
  absl::StatusOr<Hash> Get(int level, uint64_t index) const;
  absl::StatusOr<std::vector<Hash>> ReadRange(int level, uint64_t begin, uint64_t count) const;

  // Writable stores only.
  absl::Status Truncate(int level, uint64_t count);
  absl::Status Write(std::span<const MerkleFrontier::CompletedNode> nodes);
  absl::Status Sync();  // fsync every level written since the last Sync (and the directory)

  // Hashes for a tree of `size` leaves; a node the files lack (an upper level not yet
  // written after a crash) is computed from its children.
  SubtreeHashes Source(uint64_t size) const;

 private:
  TreeStore(std::filesystem::path tree_dir, bool writable);
  absl::StatusOr<int> Descriptor(int level, bool create) const;

  std::filesystem::path tree_dir_;
  bool writable_;
  std::array<std::filesystem::path, kMaxLevels> level_paths_;
  mutable std::mutex mutex_;  // guards descriptors_ and the sync bookkeeping
  mutable std::array<int, kMaxLevels> descriptors_;
  std::array<bool, kMaxLevels> dirty_{};
  mutable bool created_file_ = false;  // a level file was created: the directory needs a sync
};

}  // namespace probity::ledger::internal
