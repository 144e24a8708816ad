#pragma once

// Private to probity_common: a closing file descriptor and a write loop for the file writers.

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace probity::common::internal {

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  bool valid() const { return fd_ >= 0; }
  int get() const { return fd_; }
  // close(2)'s result: on some file systems (NFS) a failed write is only reported here.
  bool Close() {
    const int fd = fd_;
    fd_ = -1;
    return ::close(fd) == 0;
  }

 private:
  int fd_;
};

// Writes all of `bytes`, retrying short writes and EINTR; errors name `target`.
inline absl::Status WriteAll(int fd, std::string_view bytes, const std::filesystem::path& target) {
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return absl::UnavailableError(absl::StrCat("cannot write ", target.string(), ": ",
                                                 n < 0 ? strerror(errno) : "no progress"));
    }
    written += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace probity::common::internal
