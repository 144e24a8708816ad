#include "probity/common/owner_only_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "file_descriptor.h"
#include "probity/common/atomic_file.h"

namespace probity::common {

absl::Status WriteOwnerOnlyFile(const std::filesystem::path& path, std::string_view contents) {
  return WriteFileAtomically(path, contents, FileMode::kOwnerOnly);
}

absl::Status CreateOwnerOnlyFile(const std::filesystem::path& path, std::string_view contents) {
  const std::filesystem::path temp = UniqueTemporarySibling(path);
  internal::FileDescriptor fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid()) {
    return absl::UnavailableError(absl::StrCat("cannot create ", path.string(), ": cannot create ",
                                               temp.string(), ": ", strerror(errno)));
  }
  absl::Status status = absl::OkStatus();
  if (::fchmod(fd.get(), 0600) != 0) {
    status =
        absl::InternalError(absl::StrCat("cannot chmod ", temp.string(), ": ", strerror(errno)));
  }
  if (status.ok()) status = internal::WriteAll(fd.get(), contents, path);
  if (status.ok() && (::fsync(fd.get()) != 0 || !fd.Close())) {
    status =
        absl::UnavailableError(absl::StrCat("cannot write ", path.string(), ": ", strerror(errno)));
  }
  if (status.ok() && ::link(temp.c_str(), path.c_str()) != 0) {
    const std::string message =
        absl::StrCat("cannot create ", path.string(), ": ", strerror(errno));
    status = errno == EEXIST ? absl::AlreadyExistsError(message) : absl::UnavailableError(message);
  }
  ::unlink(temp.c_str());
  if (!status.ok()) return status;
  return SyncPath(path.has_parent_path() ? path.parent_path() : std::filesystem::path("."));
}

}  // namespace probity::common
