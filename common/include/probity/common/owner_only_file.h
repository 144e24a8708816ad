#pragma once

// Files that name people or hold secrets (keys, tokens, reports, galleries) are created
// owner-only, mode 0600 whatever the umask, and durably: write a temporary sibling, fsync it,
// rename (or link) it into place, fsync the directory. A crash leaves the old file or the whole
// new one, and an acknowledged write survives a power loss.

#include <filesystem>
#include <string_view>

#include "absl/status/status.h"

namespace probity::common {

// Creates or replaces `path` with `contents`, mode 0600 (WriteFileAtomically with
// FileMode::kOwnerOnly). The parent directory must exist.
absl::Status WriteOwnerOnlyFile(const std::filesystem::path& path, std::string_view contents);

// Like WriteOwnerOnlyFile, but never replaces a file: ALREADY_EXISTS when `path` exists (keys
// are never overwritten). The new file appears whole or not at all (link(2) of the fsynced
// temporary, which fails rather than replaces).
absl::Status CreateOwnerOnlyFile(const std::filesystem::path& path, std::string_view contents);

}  // namespace probity::common
