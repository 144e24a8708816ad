#include "probity/client/trimmed_file.h"

#include "absl/strings/ascii.h"
#include "probity/common/file_read.h"

namespace probity::client {

absl::StatusOr<std::string> ReadTrimmedFile(const std::string& path) {
  absl::StatusOr<std::string> text = common::ReadFileToString(path);
  if (!text.ok()) return text.status();
  return std::string(absl::StripAsciiWhitespace(*text));
}

}  // namespace probity::client
