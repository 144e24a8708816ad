#pragma once

// The text of a small file a client sends or trusts (a warrant, a PEM) without the trailing
// newline an editor or `echo` adds, which would otherwise end up inside the bearer token.

#include <string>

#include "absl/status/statusor.h"

namespace probity::client {

absl::StatusOr<std::string> ReadTrimmedFile(const std::string& path);

}  // namespace probity::client
