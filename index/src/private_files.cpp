#include "probity/index/private_files.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace probity::index {
namespace {

namespace fs = std::filesystem;

absl::Status GroupOrOthersMayAccess(const fs::path& path, mode_t mode) {
  return absl::FailedPreconditionError(absl::StrFormat(
      "%s is accessible to other users (mode %04o); galleries, state and keys must be "
      "owner-only: chmod -R go-rwx %s",
      path.string(), mode & 07777, path.string()));
}

}  // namespace

absl::Status MakeOwnerOnly(const fs::path& path) {
  std::error_code error;
  const bool directory = fs::is_directory(path, error);
  if (::chmod(path.c_str(), directory ? 0700 : 0600) != 0) {
    return absl::InternalError(absl::StrCat("cannot chmod ", path.string(), ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status CreatePrivateDirectories(const fs::path& dir) {
  std::vector<fs::path> missing;
  std::error_code error;
  for (fs::path p = dir; !p.empty() && !fs::exists(p, error); p = p.parent_path()) {
    missing.push_back(p);
    if (p == p.parent_path()) break;
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (::mkdir(it->c_str(), 0700) != 0 && errno != EEXIST) {
      return absl::InternalError(
          absl::StrCat("cannot create ", it->string(), ": ", strerror(errno)));
    }
    // mkdir's mode passes through the umask; an odd umask must not leave it unusable or open.
    if (absl::Status status = MakeOwnerOnly(*it); !status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::Status CheckOwnerOnly(const fs::path& path) {
  struct stat info {};
  // `path` itself may be a link (Kubernetes mounts secrets as links): its target counts.
  if (::stat(path.c_str(), &info) != 0) {
    return absl::NotFoundError(absl::StrCat("cannot stat ", path.string(), ": ", strerror(errno)));
  }
  if ((info.st_mode & 077) != 0) return GroupOrOthersMayAccess(path, info.st_mode);
  if (!S_ISDIR(info.st_mode)) return absl::OkStatus();
  std::error_code error;
  for (fs::recursive_directory_iterator it(path, error), end; !error && it != end;
       it.increment(error)) {
    if (::lstat(it->path().c_str(), &info) != 0) continue;  // removed meanwhile
    if (S_ISLNK(info.st_mode)) continue;  // a link's own mode means nothing; its target counts
    if ((info.st_mode & 077) != 0) return GroupOrOthersMayAccess(it->path(), info.st_mode);
  }
  if (error) {
    return absl::InternalError(absl::StrCat("cannot list ", path.string(), ": ", error.message()));
  }
  return absl::OkStatus();
}

}  // namespace probity::index
