#pragma once

// Verifies compact-JWS warrants against the trusted keys, the policy and the revocation list.

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string_view>
#include <variant>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "probity/warrant/claims.h"
#include "probity/warrant/policy.h"
#include "probity/warrant/refusal.h"

namespace probity::warrant {

// Verifies tokens. Thread-safe. Caches verified tokens by token hash so signatures are not
// checked on every query; time and revocation are still checked on every call. Reloads the
// JWKS and revocation files when they change on disk (ReloadIfChanged), swapping atomically so
// queries in flight keep the set they started with.
class Verifier {
 public:
  struct Options {
    Policy policy;
    std::filesystem::path jwks_file;
    // Optional. One revoked warrant per line as a JSON object {"iss": ..., "jti": ...}; blank
    // lines and lines starting with '#' are ignored. A line that is not such an object (a bare
    // jti of the earlier format included) makes the whole file invalid.
    std::filesystem::path revocation_file;
    size_t cache_entries = 4096;  // 0 turns the cache off
  };
  static absl::StatusOr<std::unique_ptr<Verifier>> Create(Options options);
  virtual ~Verifier() = default;

  // `token` is the bare compact JWS (without "Bearer "); empty means no token was sent.
  virtual std::variant<VerifiedWarrant, Refusal> Verify(std::string_view token,
                                                        absl::Time now) const = 0;
  // Re-reads a file only when its mtime or size changed, and swaps only when its content hash
  // changed. On a parse error the previous set stays in force and the error is returned.
  virtual absl::Status ReloadIfChanged() = 0;
  virtual absl::Status Reload() = 0;  // forced, e.g. from the Admin API
};

}  // namespace probity::warrant
