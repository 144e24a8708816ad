#pragma once

// Shared helpers for the warrant tests: per-test keys and temp files, valid claims, signing of
// arbitrary (also deliberately broken) headers and payloads.

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/scoped_temp_dir.h"
#include "probity/warrant/ed25519.h"
#include "probity/warrant/warrant.h"

namespace probity::warrant::testing {

inline constexpr char kAudience[] = "probity-test";

using TempDir = test_support::ScopedTempDir;

struct TestKey {
  Ed25519PrivateKey key;
  std::string kid;
  std::string issuer;
};

TestKey MakeKey(std::string kid, std::string issuer);
std::string JwksOf(const std::vector<const TestKey*>& keys);
void WriteFile(const std::filesystem::path& path, const std::string& content);
std::string ReadFile(const std::filesystem::path& path);

// Claims that verify at `now` under kAudience, issued by `issuer`.
Claims ValidClaims(absl::Time now, const std::string& issuer);
nlohmann::json ClaimsAsJson(const Claims& claims);

// Signs `payload` with `key` under {"alg":"EdDSA","typ":"JWT","kid":key.kid}, or under
// `header` when given.
std::string SignPayload(const TestKey& key, const std::string& payload,
                        const nlohmann::json& header = nullptr);
std::string Sign(const TestKey& key, const Claims& claims);

// The refusal of a Verify or Authorize result, failing the test when there is none.
RefusalCode CodeOf(const std::variant<VerifiedWarrant, Refusal>& result);

}  // namespace probity::warrant::testing
