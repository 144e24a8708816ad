#pragma once

// C2SP signed notes with Ed25519 (https://c2sp.org/signed-note): the signer and the verifier,
// key ids, verifier keys and signing-key generation. A signed note is its text, a blank line,
// and one signature line per key:
//
//   <text, ending in '\n'>\n
//   — <key name> <base64(4-byte key id || 64-byte Ed25519 signature)>\n
//
// key id = SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[0:4], 0x01 naming Ed25519.
// Verifier key = "<name>+<8 hex digits of key id>+<base64(0x01 || public key)>".
// What the ledger signs is a checkpoint (checkpoint.h).

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace probity::ledger {

using Ed25519PublicKey = std::array<uint8_t, 32>;

uint32_t NoteKeyId(std::string_view key_name, const Ed25519PublicKey& public_key);
std::string FormatVerifierKey(std::string_view key_name, const Ed25519PublicKey& public_key);
// A key name is non-empty UTF-8 without whitespace or '+'.
bool IsValidKeyName(std::string_view key_name);

// Writes a fresh Ed25519 private key as PKCS#8 PEM, readable by its owner only.
absl::Status GenerateSigningKey(const std::filesystem::path& pem_path);

// Signs notes with one Ed25519 key.
class NoteSigner {
 public:
  // key_name is the note's key name (e.g. the log origin); private key in PEM (PKCS#8).
  static absl::StatusOr<std::unique_ptr<NoteSigner>> Load(const std::filesystem::path& pem,
                                                          std::string key_name);
  virtual ~NoteSigner() = default;
  // The whole signed note; an error when the signature cannot be made (OpenSSL failure).
  virtual absl::StatusOr<std::string> Sign(const std::string& note_text) const = 0;
  // The verifier key string "<name>+<hex key id>+<base64(0x01||pubkey)>" for auditors.
  virtual std::string VerifierKey() const = 0;
};

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

}  // namespace probity::ledger
