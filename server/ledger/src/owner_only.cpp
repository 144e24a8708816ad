#include "owner_only.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace probity::ledger::internal {
namespace {

absl::Status CheckOne(const std::filesystem::path& ledger_dir, const std::filesystem::path& path,
                      bool* is_directory) {
  struct stat info {};
  if (::lstat(path.c_str(), &info) != 0) return ErrnoError("cannot stat", path);
  *is_directory = S_ISDIR(info.st_mode);
  if ((info.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "ledger %s: %s is accessible to group or others (mode %04o); a ledger must be "
        "owner-only (directories 0700, files 0600): check who could read it, then run "
        "chmod -R go-rwx %s",
        ledger_dir.string(), path.string(), info.st_mode & 07777, ledger_dir.string()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CreateOwnerOnlyDirectory(const std::filesystem::path& dir) {
  std::error_code error;
  if (std::filesystem::exists(dir, error)) return absl::OkStatus();
  if (dir.has_parent_path() && !dir.parent_path().empty()) {
    std::filesystem::create_directories(dir.parent_path(), error);
    if (error) {
      return absl::InternalError(
          absl::StrCat("cannot create ", dir.parent_path().string(), ": ", error.message()));
    }
  }
  if (::mkdir(dir.c_str(), kOwnerOnlyDirectoryMode) != 0 && errno != EEXIST) {
    return ErrnoError("cannot create directory", dir);
  }
  if (::chmod(dir.c_str(), kOwnerOnlyDirectoryMode) != 0) return ErrnoError("cannot chmod", dir);
  return absl::OkStatus();
}

absl::StatusOr<FileDescriptor> OpenOwnerOnlyFile(const std::filesystem::path& path, int flags) {
  FileDescriptor fd(::open(path.c_str(), flags | O_CREAT | O_CLOEXEC, kOwnerOnlyFileMode));
  if (fd.get() < 0) return ErrnoError("cannot open", path);
  if (::fchmod(fd.get(), kOwnerOnlyFileMode) != 0) return ErrnoError("cannot chmod", path);
  return fd;
}

absl::Status CheckOwnerOnly(const std::filesystem::path& ledger_dir) {
  bool is_directory = false;
  if (auto status = CheckOne(ledger_dir, ledger_dir, &is_directory); !status.ok()) return status;
  std::vector<std::filesystem::path> directories{ledger_dir};
  for (size_t i = 0; i < directories.size(); ++i) {
    std::error_code error;
    for (const auto& item : std::filesystem::directory_iterator(directories[i], error)) {
      if (auto status = CheckOne(ledger_dir, item.path(), &is_directory); !status.ok()) {
        return status;
      }
      // The ledger's own subdirectories (tree/, quarantine/) are one level deep.
      if (is_directory && i == 0) directories.push_back(item.path());
    }
    if (error) {
      return absl::InternalError(
          absl::StrCat("cannot list ", directories[i].string(), ": ", error.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace probity::ledger::internal
