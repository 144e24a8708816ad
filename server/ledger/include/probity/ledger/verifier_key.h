#pragma once

// Where an auditor's tool gets the key that checkpoints and commit markers are checked against
// (`probity ledger verify --key`, `probity ledger report --key`): the key itself, a file
// holding it, or the log's public key as PEM.

#include <string_view>

#include "absl/status/statusor.h"
#include "probity/ledger/note.h"

namespace probity::ledger {

// `key_or_file` is a C2SP verifier key ("<name>+<key id>+<key>"), the path of a regular file
// holding one (surrounding whitespace ignored), or the path of a PEM key file (a public key,
// or a private key whose public half is used). A PEM key carries no name, so `origin` names it
// and must not be empty then (INVALID_ARGUMENT). A file that cannot be read gives
// ReadFileToString's error; a file or text that holds no valid key gives NoteVerifier's error
// (INVALID_ARGUMENT), prefixed with the file's path when it came from a file.
absl::StatusOr<NoteVerifier> LoadNoteVerifier(std::string_view key_or_file,
                                              std::string_view origin);

}  // namespace probity::ledger
