#pragma once

// Replacing a file so that a reader, or a restart after a crash, sees either the old file or the
// whole new one, never a part: write a temporary sibling, fsync it, rename it over the target,
// fsync the directory (so that the rename itself survives a power loss).

#include <sys/types.h>

#include <filesystem>
#include <string_view>

#include "absl/status/status.h"

namespace probity::common {

enum class FileMode {
  // 0600 whatever the umask: galleries, keys, tokens, reports, anything naming people.
  kOwnerOnly,
  // 0666 narrowed by the umask, as a plain open(2) or std::ofstream creates files: public
  // material such as a JWKS of public keys or a port file.
  kUmaskDefault,
};

// Writes `contents` to `path` durably and atomically (see above). The temporary sibling's name
// is unique per host, process and call, so concurrent writers (also pods sharing a volume) never
// write into each other's temporary; on any failure it is removed and `path` is left as it was.
// The parent directory must exist.
absl::Status WriteFileAtomically(const std::filesystem::path& path, std::string_view contents,
                                 FileMode mode);

// fsync(2) of a file or directory by path: a directory's fsync makes the creation, rename or
// removal of its entries durable.
absl::Status SyncPath(const std::filesystem::path& path);

// A name for a temporary sibling of `path` that no other process or call picks:
// ".<name>.tmp-<host>-<pid>-<random>".
std::filesystem::path UniqueTemporarySibling(const std::filesystem::path& path);

}  // namespace probity::common
