#include "test_support.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>

#include "probity/warrant/issue.h"
#include "probity/warrant/jws.h"

namespace probity::warrant::testing {

TempDir::TempDir() {
  std::random_device random;
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto candidate = std::filesystem::temp_directory_path() /
                     ("probity-warrant-test-" + std::to_string(random()));
    if (std::filesystem::create_directory(candidate)) {
      path_ = candidate;
      return;
    }
  }
  ADD_FAILURE() << "cannot create a temporary directory";
}

TempDir::~TempDir() {
  std::error_code ignored;
  if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
}

TestKey MakeKey(std::string kid, std::string issuer) {
  auto key = Ed25519PrivateKey::Generate();
  EXPECT_TRUE(key.ok()) << key.status();
  return TestKey{*std::move(key), std::move(kid), std::move(issuer)};
}

std::string JwksOf(const std::vector<const TestKey*>& keys) {
  std::string jwks;
  for (const TestKey* key : keys) {
    auto jwk = PublicJwk(key->key, key->kid, key->issuer);
    EXPECT_TRUE(jwk.ok()) << jwk.status();
    auto appended = AppendToJwks(jwks, *jwk);
    EXPECT_TRUE(appended.ok()) << appended.status();
    jwks = *appended;
  }
  return jwks.empty() ? R"({"keys":[]})" : jwks;
}

void WriteFile(const std::filesystem::path& path, const std::string& content) {
  // Write and rename, as an operator's tooling should, so a reader never sees half a file.
  auto staging = path;
  staging += ".staging";
  {
    std::ofstream out(staging, std::ios::binary | std::ios::trunc);
    out << content;
    ASSERT_TRUE(out.good()) << "cannot write " << staging;
  }
  std::filesystem::rename(staging, path);
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

Claims ValidClaims(absl::Time now, const std::string& issuer) {
  Claims claims;
  claims.iss = issuer;
  claims.sub = "investigator-7";
  claims.aud = kAudience;
  claims.jti = "warrant-0001";
  claims.iat = absl::ToUnixSeconds(now) - 10;
  claims.nbf = claims.iat;
  claims.exp = claims.iat + 3600;
  claims.case_number = "CASE-2026-042";
  claims.purpose = "identify a suspect from CCTV stills";
  claims.collections = {"gallery-a", "gallery-b"};
  claims.max_queries = 10;
  claims.max_k = 50;
  return claims;
}

nlohmann::json ClaimsAsJson(const Claims& claims) {
  return nlohmann::json::parse(ClaimsToJson(claims));
}

std::string SignPayload(const TestKey& key, const std::string& payload,
                        const nlohmann::json& header) {
  nlohmann::json h = header.is_null()
                         ? nlohmann::json{{"alg", "EdDSA"}, {"typ", "JWT"}, {"kid", key.kid}}
                         : header;
  auto token = SignCompactJws(h.dump(), payload, key.key);
  EXPECT_TRUE(token.ok()) << token.status();
  return token.ok() ? *token : std::string();
}

std::string Sign(const TestKey& key, const Claims& claims) {
  return SignPayload(key, ClaimsToJson(claims));
}

RefusalCode CodeOf(const std::variant<VerifiedWarrant, Refusal>& result) {
  if (const auto* refusal = std::get_if<Refusal>(&result)) {
    EXPECT_FALSE(refusal->message.empty());
    return refusal->code;
  }
  ADD_FAILURE() << "expected a refusal, the warrant verified";
  return RefusalCode::kMissingToken;
}

}  // namespace probity::warrant::testing
