#include "probity/ledger/checkpoint.h"

#include <algorithm>
#include <charconv>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "canonical_base64.h"
#include "probity/common/string_view.h"

namespace probity::ledger {

using common::AsAbsl;
using common::Split;
using internal::DecodeBase64Strict;

std::string FormatCheckpoint(const Checkpoint& checkpoint) {
  std::string text = absl::StrCat(
      checkpoint.origin, "\n", checkpoint.size, "\n",
      absl::Base64Escape(absl::string_view(reinterpret_cast<const char*>(checkpoint.root.data()),
                                           checkpoint.root.size())),
      "\n");
  for (const auto& line : checkpoint.extensions) absl::StrAppend(&text, line, "\n");
  return text;
}

absl::StatusOr<Checkpoint> ParseCheckpoint(std::string_view note_text) {
  if (note_text.empty() || note_text.back() != '\n') {
    return absl::InvalidArgumentError("checkpoint: text must end with a newline");
  }
  std::vector<std::string_view> lines = Split(note_text.substr(0, note_text.size() - 1), '\n');
  if (lines.size() < 3) return absl::InvalidArgumentError("checkpoint: fewer than three lines");
  Checkpoint checkpoint;
  checkpoint.origin = std::string(lines[0]);
  if (checkpoint.origin.empty()) return absl::InvalidArgumentError("checkpoint: empty origin");
  const std::string_view size_text = lines[1];
  auto [end, error] =
      std::from_chars(size_text.data(), size_text.data() + size_text.size(), checkpoint.size);
  if (size_text.empty() || error != std::errc() || end != size_text.data() + size_text.size() ||
      (size_text.size() > 1 && size_text[0] == '0')) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint: tree size '", AsAbsl(size_text), "' is not a decimal number"));
  }
  auto root = DecodeBase64Strict(lines[2]);
  if (!root.ok() || root->size() != checkpoint.root.size()) {
    return absl::InvalidArgumentError("checkpoint: root hash is not base64 of 32 bytes");
  }
  std::copy(root->begin(), root->end(), checkpoint.root.begin());
  for (size_t i = 3; i < lines.size(); ++i) {
    if (lines[i].empty()) return absl::InvalidArgumentError("checkpoint: empty extension line");
    checkpoint.extensions.emplace_back(lines[i]);
  }
  return checkpoint;
}

absl::StatusOr<Checkpoint> OpenSignedCheckpoint(std::string_view signed_note,
                                                const NoteVerifier& verifier,
                                                std::string_view origin) {
  auto text = verifier.Open(signed_note);
  if (!text.ok()) return text.status();
  auto checkpoint = ParseCheckpoint(*text);
  if (!checkpoint.ok()) return checkpoint.status();
  if (!origin.empty() && checkpoint->origin != origin) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint origin '", checkpoint->origin, "' is not '", AsAbsl(origin), "'"));
  }
  return checkpoint;
}

}  // namespace probity::ledger
