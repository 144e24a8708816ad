#pragma once

// C2SP tlog-checkpoint notes (https://c2sp.org/tlog-checkpoint): the text a ledger signs as a
// signed note (note.h) to commit to its tree:
//
//   <origin>\n<tree size, decimal>\n<base64 root hash>\n[extension lines]\n

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "probity/ledger/ledger.h"
#include "probity/ledger/note.h"

namespace probity::ledger {

struct Checkpoint {
  std::string origin;
  uint64_t size = 0;
  Hash root{};
  std::vector<std::string> extensions;  // optional lines after the root, without newlines
};

std::string FormatCheckpoint(const Checkpoint& checkpoint);  // the note text, ends in '\n'
absl::StatusOr<Checkpoint> ParseCheckpoint(std::string_view note_text);

// Verifies the note with the key, parses the checkpoint and checks its origin is `origin`
// (empty origin: any).
absl::StatusOr<Checkpoint> OpenSignedCheckpoint(std::string_view signed_note,
                                                const NoteVerifier& verifier,
                                                std::string_view origin = {});

}  // namespace probity::ledger
