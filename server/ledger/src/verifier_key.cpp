#include "probity/ledger/verifier_key.h"

#include <filesystem>
#include <string>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "probity/common/file_read.h"
#include "probity/common/string_view.h"

namespace probity::ledger {
namespace {

absl::StatusOr<NoteVerifier> VerifierFromText(const std::string& text, std::string_view origin) {
  if (text.find("-----BEGIN") != std::string::npos) {
    if (origin.empty()) {
      return absl::InvalidArgumentError("a PEM key needs an origin (the key's name)");
    }
    return NoteVerifier::FromPem(text, std::string(origin));
  }
  return NoteVerifier::FromVerifierKey(
      common::AsStd(absl::StripAsciiWhitespace(common::AsAbsl(text))));
}

}  // namespace

absl::StatusOr<NoteVerifier> LoadNoteVerifier(std::string_view key_or_file,
                                              std::string_view origin) {
  const std::filesystem::path path(key_or_file);
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    return VerifierFromText(std::string(key_or_file), origin);
  }
  absl::StatusOr<std::string> contents = common::ReadFileToString(path);
  if (!contents.ok()) return contents.status();
  absl::StatusOr<NoteVerifier> verifier = VerifierFromText(*contents, origin);
  if (!verifier.ok()) {
    // Name the file: the key's own error cannot say where the bad key came from.
    return absl::Status(verifier.status().code(),
                        absl::StrCat(path.string(), ": ", verifier.status().message()));
  }
  return verifier;
}

}  // namespace probity::ledger
