#include "tree_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "owner_only.h"
#include "posix_file.h"

namespace probity::ledger::internal {
namespace {

constexpr uint64_t kHashBytes = sizeof(Hash);

}  // namespace

TreeStore::TreeStore(std::filesystem::path tree_dir, bool writable)
    : tree_dir_(std::move(tree_dir)), writable_(writable) {
  descriptors_.fill(-1);
  for (int level = 0; level < kMaxLevels; ++level) {
    level_paths_[level] = tree_dir_ / absl::StrFormat("level-%02d.hashes", level);
  }
}

TreeStore::~TreeStore() {
  for (int fd : descriptors_) {
    if (fd >= 0) ::close(fd);
  }
}

absl::StatusOr<std::unique_ptr<TreeStore>> TreeStore::Open(const std::filesystem::path& ledger_dir,
                                                           bool writable) {
  std::filesystem::path tree_dir = ledger_dir / "tree";
  std::error_code error;
  if (writable && !std::filesystem::exists(tree_dir, error)) {
    if (auto status = CreateOwnerOnlyDirectory(tree_dir); !status.ok()) return status;
    if (auto status = SyncDirectory(ledger_dir); !status.ok()) return status;
  }
  return std::unique_ptr<TreeStore>(new TreeStore(std::move(tree_dir), writable));
}

absl::StatusOr<int> TreeStore::Descriptor(int level, bool create) const {
  if (level < 0 || level >= kMaxLevels) return absl::OutOfRangeError("tree level out of range");
  std::lock_guard lock(mutex_);
  if (descriptors_[level] >= 0) return descriptors_[level];
  const auto& path = level_paths_[level];
  if (create) {
    auto created = OpenOwnerOnlyFile(path, O_RDWR);
    if (!created.ok()) return created.status();
    descriptors_[level] = created->Release();
    created_file_ = true;
    return descriptors_[level];
  }
  const int fd = ::open(path.c_str(), O_CLOEXEC | (writable_ ? O_RDWR : O_RDONLY));
  if (fd < 0) {
    if (errno == ENOENT) return -1;
    return ErrnoError("cannot open", path);
  }
  descriptors_[level] = fd;
  return fd;
}

absl::StatusOr<uint64_t> TreeStore::StoredCount(int level) const {
  auto fd = Descriptor(level, false);
  if (!fd.ok()) return fd.status();
  if (*fd < 0) return 0;
  struct stat info {};
  if (::fstat(*fd, &info) != 0) return ErrnoError("cannot stat", level_paths_[level]);
  return static_cast<uint64_t>(info.st_size) / kHashBytes;
}

absl::StatusOr<Hash> TreeStore::Get(int level, uint64_t index) const {
  auto hashes = ReadRange(level, index, 1);
  if (!hashes.ok()) return hashes.status();
  return (*hashes)[0];
}

absl::StatusOr<std::vector<Hash>> TreeStore::ReadRange(int level, uint64_t begin,
                                                       uint64_t count) const {
  auto fd = Descriptor(level, false);
  if (!fd.ok()) return fd.status();
  std::vector<Hash> hashes(count);
  const ssize_t wanted = static_cast<ssize_t>(count * kHashBytes);
  if (count == 0) return hashes;
  if (*fd < 0 ||
      ::pread(*fd, hashes.data(), wanted, static_cast<off_t>(begin * kHashBytes)) != wanted) {
    return absl::DataLossError(absl::StrCat("stored tree lacks hashes ", begin, "..",
                                            begin + count - 1, " of level ", level));
  }
  return hashes;
}

absl::Status TreeStore::Truncate(int level, uint64_t count) {
  auto fd = Descriptor(level, false);
  if (!fd.ok()) return fd.status();
  if (*fd < 0) return absl::OkStatus();
  if (::ftruncate(*fd, static_cast<off_t>(count * kHashBytes)) != 0) {
    return ErrnoError("cannot truncate", level_paths_[level]);
  }
  std::lock_guard lock(mutex_);
  dirty_[level] = true;
  return absl::OkStatus();
}

absl::Status TreeStore::Write(std::span<const MerkleFrontier::CompletedNode> nodes) {
  // Nodes of one level arrive in increasing, contiguous order: one pwrite per level.
  std::array<std::vector<uint8_t>, kMaxLevels> buffers;
  std::array<uint64_t, kMaxLevels> first_index{};
  for (const auto& node : nodes) {
    auto& buffer = buffers[node.level];
    if (!buffer.empty() && first_index[node.level] + buffer.size() / kHashBytes != node.index) {
      return absl::InternalError("tree store: non-contiguous nodes in one write");
    }
    if (buffer.empty()) first_index[node.level] = node.index;
    buffer.insert(buffer.end(), node.hash.begin(), node.hash.end());
  }
  for (int level = 0; level < kMaxLevels; ++level) {
    if (buffers[level].empty()) continue;
    auto fd = Descriptor(level, true);
    if (!fd.ok()) return fd.status();
    const auto& buffer = buffers[level];
    if (::pwrite(*fd, buffer.data(), buffer.size(),
                 static_cast<off_t>(first_index[level] * kHashBytes)) !=
        static_cast<ssize_t>(buffer.size())) {
      return ErrnoError("cannot write", level_paths_[level]);
    }
    std::lock_guard lock(mutex_);
    dirty_[level] = true;
  }
  return absl::OkStatus();
}

absl::Status TreeStore::Sync() {
  std::array<int, kMaxLevels> to_sync;
  bool sync_directory = false;
  {
    std::lock_guard lock(mutex_);
    for (int level = 0; level < kMaxLevels; ++level) {
      to_sync[level] = dirty_[level] ? descriptors_[level] : -1;
      dirty_[level] = false;
    }
    sync_directory = created_file_;
    created_file_ = false;
  }
  for (int level = 0; level < kMaxLevels; ++level) {
    if (to_sync[level] >= 0 && ::fdatasync(to_sync[level]) != 0) {
      return ErrnoError("cannot fsync", level_paths_[level]);
    }
  }
  if (sync_directory) return SyncDirectory(tree_dir_);
  return absl::OkStatus();
}

SubtreeHashes TreeStore::Source(uint64_t size) const {
  return [this, size](int level, uint64_t index) -> absl::StatusOr<Hash> {
    if (level >= kMaxLevels || ((index + 1) << level) > size) {
      return absl::OutOfRangeError(
          absl::StrCat("subtree ", level, "/", index, " is beyond tree size ", size));
    }
    auto stored = StoredCount(level);
    if (!stored.ok()) return stored.status();
    if (index < *stored || level == 0) return Get(level, index);
    auto self = Source(size);
    auto left = self(level - 1, 2 * index);
    if (!left.ok()) return left.status();
    auto right = self(level - 1, 2 * index + 1);
    if (!right.ok()) return right.status();
    return HashChildren(*left, *right);
  };
}

}  // namespace probity::ledger::internal
