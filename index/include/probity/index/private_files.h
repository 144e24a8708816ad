#pragma once

// Galleries, erasure journals and keys are owner-only: directories 0700 and files 0600,
// whatever the umask, so that no other local user can read a gallery and search it offline.

#include <filesystem>

#include "absl/status/status.h"

namespace probity::index {

// Creates `dir` and its missing parents with mode 0700. Directories that exist already are
// left as they are (CheckOwnerOnly reports them).
absl::Status CreatePrivateDirectories(const std::filesystem::path& dir);

// Sets mode 0700 on a directory, 0600 on anything else.
absl::Status MakeOwnerOnly(const std::filesystem::path& path);

// FAILED_PRECONDITION naming the first of `path` and, for a directory, everything below it
// that the group or others may read, write or enter; NOT_FOUND when `path` does not exist.
absl::Status CheckOwnerOnly(const std::filesystem::path& path);

}  // namespace probity::index
