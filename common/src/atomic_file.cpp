#include "probity/common/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "file_descriptor.h"

namespace probity::common {

absl::Status SyncPath(const std::filesystem::path& path) {
  internal::FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    return absl::InternalError(
        absl::StrCat("cannot open ", path.string(), " to sync it: ", strerror(errno)));
  }
  if (::fsync(fd.get()) != 0) {
    return absl::InternalError(absl::StrCat("fsync of ", path.string(), ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

std::filesystem::path UniqueTemporarySibling(const std::filesystem::path& path) {
  char host[64] = {};
  ::gethostname(host, sizeof(host) - 1);
  std::random_device entropy;
  return path.parent_path() / absl::StrFormat(".%s.tmp-%s-%d-%08x", path.filename().string(), host,
                                              ::getpid(), entropy());
}

absl::Status WriteFileAtomically(const std::filesystem::path& path, std::string_view contents,
                                 FileMode mode) {
  const std::filesystem::path temp = UniqueTemporarySibling(path);
  const mode_t create_mode = mode == FileMode::kOwnerOnly ? 0600 : 0666;
  internal::FileDescriptor fd(
      ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, create_mode));
  if (!fd.valid()) {
    return absl::UnavailableError(absl::StrCat("cannot write ", path.string(), ": cannot create ",
                                               temp.string(), ": ", strerror(errno)));
  }
  absl::Status status = absl::OkStatus();
  // The umask can only narrow 0600, but a umask of 0 must not be needed to get exactly 0600.
  if (mode == FileMode::kOwnerOnly && ::fchmod(fd.get(), 0600) != 0) {
    status =
        absl::InternalError(absl::StrCat("cannot chmod ", temp.string(), ": ", strerror(errno)));
  }
  if (status.ok()) status = internal::WriteAll(fd.get(), contents, path);
  if (status.ok() && ::fsync(fd.get()) != 0) {
    status = absl::UnavailableError(
        absl::StrCat("cannot write ", path.string(), ": fsync: ", strerror(errno)));
  }
  if (status.ok() && !fd.Close()) {
    status = absl::UnavailableError(
        absl::StrCat("cannot write ", path.string(), ": close: ", strerror(errno)));
  }
  if (status.ok() && ::rename(temp.c_str(), path.c_str()) != 0) {
    status = absl::UnavailableError(absl::StrCat("cannot rename ", temp.string(), " to ",
                                                 path.string(), ": ", strerror(errno)));
  }
  if (!status.ok()) {
    ::unlink(temp.c_str());
    return status;
  }
  return SyncPath(path.has_parent_path() ? path.parent_path() : std::filesystem::path("."));
}

}  // namespace probity::common
