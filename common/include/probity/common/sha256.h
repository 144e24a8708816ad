#pragma once

// SHA-256 (FIPS 180-4) through OpenSSL: of a string, of a stream of parts, of a file.

#include <array>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "probity/common/openssl_handles.h"

namespace probity::common {

inline constexpr size_t kSha256Bytes = 32;
using Sha256Digest = std::array<uint8_t, kSha256Bytes>;

// The digest of `bytes`. OpenSSL's one-shot SHA-256 cannot fail for lack of an algorithm, so
// this needs no status.
Sha256Digest Sha256(std::string_view bytes);

// The digest as 32 raw bytes in a string (how protobuf `bytes` fields carry it).
std::string Sha256Bytes(std::string_view bytes);

// The digest as 64 lowercase hex digits.
std::string Sha256Hex(std::string_view bytes);

// A digest computed over parts given one after another, for inputs that are never one string
// (a file, a stream of vectors, a FAISS writer). An OpenSSL failure is kept and reported by
// Finish, so callers check once.
class Sha256Hasher {
 public:
  Sha256Hasher();
  void Update(const void* data, size_t size);
  void Update(std::string_view bytes) { Update(bytes.data(), bytes.size()); }
  void Update(std::span<const uint8_t> bytes) { Update(bytes.data(), bytes.size()); }
  // The digest of everything given; INTERNAL when OpenSSL failed. Call once.
  absl::StatusOr<Sha256Digest> Finish();

 private:
  MdContextPtr context_;
  bool ok_ = false;
};

// Lowercase hex SHA-256 of a file's bytes, read in blocks (shard files are gigabytes). NOT_FOUND
// naming `path` when it cannot be opened, DATA_LOSS on a read error.
absl::StatusOr<std::string> Sha256HexOfFile(const std::filesystem::path& path);

}  // namespace probity::common
