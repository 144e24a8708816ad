#pragma once

// C2SP tlog-checkpoint notes signed as C2SP signed-notes with Ed25519
// (https://c2sp.org/tlog-checkpoint, https://c2sp.org/signed-note):
//
//   <origin>\n<tree size, decimal>\n<base64 root hash>\n[extension lines]\n
//   \n
//   — <key name> <base64(4-byte key id || 64-byte Ed25519 signature)>\n
//
// key id = SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[0:4], 0x01 naming Ed25519.
// Verifier key = "<name>+<8 hex digits of key id>+<base64(0x01 || public key)>".

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "probity/ledger/ledger.h"

namespace probity::ledger {

struct Checkpoint {
  std::string origin;
  uint64_t size = 0;
  Hash root{};
  std::vector<std::string> extensions;  // optional lines after the root, without newlines
};

std::string FormatCheckpoint(const Checkpoint& checkpoint);  // the note text, ends in '\n'
absl::StatusOr<Checkpoint> ParseCheckpoint(std::string_view note_text);

using Ed25519PublicKey = std::array<uint8_t, 32>;

uint32_t NoteKeyId(std::string_view key_name, const Ed25519PublicKey& public_key);
std::string FormatVerifierKey(std::string_view key_name, const Ed25519PublicKey& public_key);
// A key name is non-empty UTF-8 without whitespace or '+'.
bool IsValidKeyName(std::string_view key_name);

// Writes a fresh Ed25519 private key as PKCS#8 PEM, readable by its owner only.
absl::Status GenerateSigningKey(const std::filesystem::path& pem_path);

// Checks signed notes against one Ed25519 key.
class NoteVerifier {
 public:
  static absl::StatusOr<NoteVerifier> FromVerifierKey(std::string_view verifier_key);
  // A public key PEM (SubjectPublicKeyInfo) or private key PEM, paired with the key's name.
  static absl::StatusOr<NoteVerifier> FromPem(std::string_view pem, std::string key_name);

  const std::string& name() const { return name_; }
  uint32_t key_id() const { return key_id_; }
  std::string VerifierKey() const;

  // Returns the note's text when a signature line by this key verifies; an error when the note
  // is malformed, carries no signature by this key, or this key's signature does not verify.
  absl::StatusOr<std::string> Open(std::string_view signed_note) const;

 private:
  std::string name_;
  Ed25519PublicKey public_key_{};
  uint32_t key_id_ = 0;
};

// Verifies the note with the key, parses the checkpoint and checks its origin is `origin`
// (empty origin: any).
absl::StatusOr<Checkpoint> OpenSignedCheckpoint(std::string_view signed_note,
                                                const NoteVerifier& verifier,
                                                std::string_view origin = {});

}  // namespace probity::ledger
