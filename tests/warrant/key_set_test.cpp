// KeySet: the JWKS trust file and what it refuses.
#include <gtest/gtest.h>

#include "probity/warrant/issue.h"
#include "probity/warrant/jws.h"
#include "test_support.h"

namespace probity::warrant {
namespace {

nlohmann::json Jwk(const testing::TestKey& key) {
  auto jwk = PublicJwk(key.key, key.kid, key.issuer);
  EXPECT_TRUE(jwk.ok()) << jwk.status();
  return nlohmann::json::parse(*jwk);
}

std::string SetOf(const nlohmann::json& jwk) { return nlohmann::json{{"keys", {jwk}}}.dump(); }

TEST(KeySet, ParsesSeveralKeysPerIssuer) {
  auto a1 = testing::MakeKey("a1", "authority-a");
  auto a2 = testing::MakeKey("a2", "authority-a");
  auto b1 = testing::MakeKey("b1", "authority-b");
  auto set = KeySet::Parse(testing::JwksOf({&a1, &a2, &b1}));
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ((*set)->size(), 3u);
  ASSERT_NE((*set)->Find("a2"), nullptr);
  EXPECT_EQ((*set)->Find("a2")->issuer, "authority-a");
  EXPECT_EQ((*set)->Find("a2")->key.Raw(), a2.key.PublicKey()->Raw());
  EXPECT_EQ((*set)->Find("c1"), nullptr);
  EXPECT_TRUE((*set)->TrustsIssuer("authority-b"));
  EXPECT_FALSE((*set)->TrustsIssuer("authority-c"));
}

TEST(KeySet, RefusesWhatItCannotTrust) {
  auto key = testing::MakeKey("k1", "authority-a");
  nlohmann::json good = Jwk(key);
  ASSERT_TRUE(KeySet::Parse(SetOf(good)).ok());
  auto refused = [&](const std::function<void(nlohmann::json&)>& change) {
    nlohmann::json jwk = good;
    change(jwk);
    return !KeySet::Parse(SetOf(jwk)).ok();
  };
  EXPECT_TRUE(refused([](auto& j) { j["kty"] = "RSA"; }));
  EXPECT_TRUE(refused([](auto& j) { j["crv"] = "X25519"; }));
  EXPECT_TRUE(refused([](auto& j) { j.erase("kid"); }));
  EXPECT_TRUE(refused([](auto& j) { j.erase("iss"); }));
  EXPECT_TRUE(refused([](auto& j) { j["x"] = "AAAA"; }));
  EXPECT_TRUE(refused([](auto& j) { j["x"] = j["x"].template get<std::string>() + "="; }));
  EXPECT_TRUE(refused([](auto& j) { j["d"] = j["x"]; }));
  EXPECT_TRUE(refused([](auto& j) { j["use"] = "enc"; }));
  EXPECT_TRUE(refused([](auto& j) { j["alg"] = "HS256"; }));
  EXPECT_FALSE(refused([](auto& j) {
    j.erase("use");
    j.erase("alg");
  }));
  EXPECT_FALSE(KeySet::Parse(nlohmann::json{{"keys", {good, good}}}.dump()).ok());
  EXPECT_FALSE(KeySet::Parse("{}").ok());
  EXPECT_FALSE(KeySet::Parse(R"({"keys":[],"keys":[]})").ok());
  EXPECT_FALSE(KeySet::Parse("not json").ok());
}

TEST(AppendToJwks, RefusesADuplicateKid) {
  auto key = testing::MakeKey("k1", "authority-a");
  auto jwk = PublicJwk(key.key, key.kid, key.issuer);
  ASSERT_TRUE(jwk.ok());
  auto once = AppendToJwks("", *jwk);
  ASSERT_TRUE(once.ok()) << once.status();
  EXPECT_FALSE(AppendToJwks(*once, *jwk).ok());
}

}  // namespace
}  // namespace probity::warrant
