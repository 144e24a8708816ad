#pragma once

#include <filesystem>
#include <string>

#include "absl/status/statusor.h"

namespace probity::index::internal {

// Lowercase hex SHA-256 of a file's bytes, read in blocks.
absl::StatusOr<std::string> Sha256OfFile(const std::filesystem::path& path);

}  // namespace probity::index::internal
