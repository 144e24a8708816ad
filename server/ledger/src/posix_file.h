#pragma once

// Small POSIX file helpers shared by the ledger's writer, recovery and quarantine: an owning
// descriptor, complete positional writes, errno-bearing statuses, and directory syncs.

#include <cstdint>
#include <filesystem>
#include <string_view>
#include <utility>

#include "absl/status/status.h"

namespace probity::ledger::internal {

class FileDescriptor {
 public:
  FileDescriptor() = default;
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept;
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() { Reset(); }
  int get() const { return fd_; }
  int Release() { return std::exchange(fd_, -1); }  // the caller closes it
  void Reset();

 private:
  int fd_ = -1;
};

// An InternalError "<what> <path>: <strerror(errno)>".
absl::Status ErrnoError(std::string_view what, const std::filesystem::path& path);

// pwrite until every byte is written (retrying short writes and EINTR).
absl::Status WriteAll(int fd, std::string_view bytes, uint64_t offset,
                      const std::filesystem::path& path);

// fsync of a directory, so that a file created, renamed or removed in it survives a crash.
absl::Status SyncDirectory(const std::filesystem::path& dir);

}  // namespace probity::ledger::internal
