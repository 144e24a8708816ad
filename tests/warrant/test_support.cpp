#include "test_support.h"

#include <gtest/gtest.h>

#include "probity/common/atomic_file.h"
#include "probity/common/file_read.h"
#include "probity/warrant/issue.h"
#include "probity/warrant/jws.h"

namespace probity::warrant::testing {

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
  // Atomically, as an operator's tooling should, so that a reloading verifier never sees half a
  // file.
  const absl::Status written =
      common::WriteFileAtomically(path, content, common::FileMode::kUmaskDefault);
  ASSERT_TRUE(written.ok()) << written;
}

std::string ReadFile(const std::filesystem::path& path) {
  return common::ReadFileToString(path).value_or("");
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
