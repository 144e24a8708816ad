#pragma once

// Reading a whole (small) file into memory: keys, tokens, configuration, JWKS, PEM files.
// Large files (embeddings, ledger segments) are streamed by their own modules instead.

#include <filesystem>
#include <string>

#include "absl/status/statusor.h"

namespace probity::common {

// The file's bytes, unchanged (binary mode). NOT_FOUND when it does not exist, PERMISSION_DENIED
// when it may not be read, DATA_LOSS on a read error; every message names `path`.
absl::StatusOr<std::string> ReadFileToString(const std::filesystem::path& path);

}  // namespace probity::common
