#pragma once

// The ledger records who searched for whom: its directory and every file in it are readable
// and writable by the owner only (directories 0700, files 0600), whatever the umask, and a
// ledger found accessible to group or others is refused rather than used.

#include <filesystem>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "posix_file.h"

namespace probity::ledger::internal {

inline constexpr mode_t kOwnerOnlyDirectoryMode = 0700;
inline constexpr mode_t kOwnerOnlyFileMode = 0600;

// Creates `dir` (its missing parents with the default mode) as 0700 when it does not exist.
absl::Status CreateOwnerOnlyDirectory(const std::filesystem::path& dir);

// open(2) with O_CREAT added and the file forced to 0600 (a umask cannot widen or narrow it).
absl::StatusOr<FileDescriptor> OpenOwnerOnlyFile(const std::filesystem::path& path, int flags);

// FailedPrecondition naming the first of the ledger directory, its subdirectories (tree/,
// quarantine/) and their files that group or others may access, with the command that fixes it.
absl::Status CheckOwnerOnly(const std::filesystem::path& ledger_dir);

}  // namespace probity::ledger::internal
