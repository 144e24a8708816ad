// The compact-JWS layer: RFC 8037's published example, base64url strictness, header rules.
#include "probity/warrant/jws.h"

#include <gtest/gtest.h>

#include "probity/warrant/ed25519.h"

namespace probity::warrant {
namespace {

// RFC 8037 Appendix A.1 (key) and A.4 (JWS over "Example of Ed25519 signing").
constexpr char kRfc8037PrivateD[] = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
constexpr char kRfc8037PublicX[] = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
constexpr char kRfc8037Jws[] =
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

Ed25519PublicKey Rfc8037PublicKey() {
  auto raw = Base64UrlDecode(kRfc8037PublicX);
  EXPECT_TRUE(raw.has_value());
  auto key = Ed25519PublicKey::FromRaw(*raw);
  EXPECT_TRUE(key.ok()) << key.status();
  return *key;
}

// Parses and verifies a JWS with the RFC key; false on any refusal.
bool VerifiesUnderRfcKey(std::string_view jws_text) {
  auto parsed = ParseCompactJws(jws_text, 8192);
  if (std::holds_alternative<Refusal>(parsed)) return false;
  return VerifyJwsSignature(std::get<CompactJws>(parsed), Rfc8037PublicKey());
}

TEST(Rfc8037Example, VerifiesAsPublished) {
  auto parsed = ParseCompactJws(kRfc8037Jws, 8192);
  ASSERT_TRUE(std::holds_alternative<CompactJws>(parsed)) << std::get<Refusal>(parsed).message;
  const auto& jws = std::get<CompactJws>(parsed);
  EXPECT_EQ(jws.header.alg, "EdDSA");
  EXPECT_FALSE(jws.header.kid.has_value());
  EXPECT_EQ(jws.payload, "Example of Ed25519 signing");
  EXPECT_TRUE(VerifyJwsSignature(jws, Rfc8037PublicKey()));
}

TEST(Rfc8037Example, AnyChangedByteFailsToVerify) {
  const std::string original = kRfc8037Jws;
  // Every position in every segment, changed to another base64url letter; the dots stay.
  for (size_t i = 0; i < original.size(); ++i) {
    if (original[i] == '.') continue;
    std::string changed = original;
    changed[i] = original[i] == 'A' ? 'B' : 'A';
    EXPECT_FALSE(VerifiesUnderRfcKey(changed)) << "changed byte at " << i << " still verifies";
  }
}

TEST(Rfc8037Example, OurSignerReproducesThePublishedSignature) {
  // Ed25519 is deterministic, so signing the same input with A.1's private key must give A.4.
  auto seed = Base64UrlDecode(kRfc8037PrivateD);
  ASSERT_TRUE(seed.has_value());
  auto key = Ed25519PrivateKey::FromRawSeed(*seed);
  ASSERT_TRUE(key.ok()) << key.status();
  auto jws = SignCompactJws(R"({"alg":"EdDSA"})", "Example of Ed25519 signing", *key);
  ASSERT_TRUE(jws.ok()) << jws.status();
  EXPECT_EQ(*jws, kRfc8037Jws);
  auto public_key = key->PublicKey();
  ASSERT_TRUE(public_key.ok());
  EXPECT_EQ(Base64UrlEncode(public_key->Raw()), kRfc8037PublicX);
}

TEST(Ed25519PublicKey, RawIsTheBytesTheKeyWasMadeFrom) {
  auto raw = Base64UrlDecode(kRfc8037PublicX);
  ASSERT_TRUE(raw.has_value());
  EXPECT_EQ(Rfc8037PublicKey().Raw(), *raw);
  const Ed25519PublicKey copy = Rfc8037PublicKey();
  EXPECT_EQ(copy.Raw().size(), Ed25519PublicKey::kRawBytes);
}

TEST(Base64Url, RoundTripsEveryLength) {
  std::string bytes;
  for (int length = 0; length < 70; ++length) {
    auto decoded = Base64UrlDecode(Base64UrlEncode(bytes));
    ASSERT_TRUE(decoded.has_value()) << length;
    EXPECT_EQ(*decoded, bytes);
    bytes += static_cast<char>(length * 37 + 255);
  }
}

TEST(Base64Url, RefusesEverythingButTheCanonicalUnpaddedForm) {
  EXPECT_EQ(Base64UrlDecode("Zm9v"), "foo");
  EXPECT_EQ(Base64UrlDecode("Zm8"), "fo");
  EXPECT_FALSE(Base64UrlDecode("Zm8=").has_value());  // padding
  EXPECT_FALSE(Base64UrlDecode("Zm+v").has_value());  // standard alphabet
  EXPECT_FALSE(Base64UrlDecode("Zm/v").has_value());
  EXPECT_FALSE(Base64UrlDecode("Zm 9v").has_value());  // whitespace
  EXPECT_FALSE(Base64UrlDecode("Zm9vY").has_value());  // impossible length
  EXPECT_FALSE(Base64UrlDecode("Zm9=").has_value());
  EXPECT_FALSE(Base64UrlDecode("Zm9").has_value());  // non-zero unused bits ("Zm8" is "fo")
}

std::string Token(std::string_view header, std::string_view payload = "{}",
                  std::string_view signature = "sig") {
  return Base64UrlEncode(header) + "." + Base64UrlEncode(payload) + "." +
         Base64UrlEncode(signature);
}

RefusalCode ParseRefusal(const std::string& token) {
  auto parsed = ParseCompactJws(token, 8192);
  if (!std::holds_alternative<Refusal>(parsed)) {
    ADD_FAILURE() << "accepted: " << token;
    return RefusalCode::kMissingToken;
  }
  return std::get<Refusal>(parsed).code;
}

TEST(ParseCompactJws, RefusesBrokenStructure) {
  EXPECT_EQ(ParseRefusal(""), RefusalCode::kMissingToken);
  EXPECT_EQ(ParseRefusal("abc"), RefusalCode::kMalformedToken);
  EXPECT_EQ(ParseRefusal("a.b"), RefusalCode::kMalformedToken);
  EXPECT_EQ(ParseRefusal(Token(R"({"alg":"EdDSA"})") + ".x.y"), RefusalCode::kMalformedToken);
  EXPECT_EQ(ParseRefusal(".e30.c2ln"), RefusalCode::kMalformedToken);
  EXPECT_EQ(ParseRefusal(Token("not json")), RefusalCode::kMalformedToken);
  EXPECT_EQ(ParseRefusal(Token(R"(["alg","EdDSA"])")), RefusalCode::kMalformedToken);
  EXPECT_EQ(ParseRefusal(Token("{\"alg\":\"Ed\xff\"}")), RefusalCode::kMalformedToken);
  EXPECT_EQ(ParseRefusal(Token(R"({"alg":"EdDSA","alg":"none"})")), RefusalCode::kMalformedToken);
  EXPECT_EQ(ParseRefusal(Token(R"({"alg":"EdDSA","typ":"JWE"})")), RefusalCode::kMalformedToken);
  EXPECT_EQ(ParseRefusal(Token(R"({"alg":"EdDSA","crit":["exp"]})")), RefusalCode::kMalformedToken);
  EXPECT_EQ(ParseRefusal(Token(R"({"alg":"EdDSA","kid":7})")), RefusalCode::kMalformedToken);
  EXPECT_EQ(ParseRefusal(Token(R"({"kid":"k"})")), RefusalCode::kMalformedToken);
  EXPECT_EQ(ParseRefusal(Token("\xEF\xBB\xBF{\"alg\":\"EdDSA\"}")), RefusalCode::kMalformedToken);
  EXPECT_EQ(ParseRefusal(Token(R"({"alg":"EdDSA"} {})")), RefusalCode::kMalformedToken);
  EXPECT_EQ(ParseRefusal(Token(R"({"alg":"EdDSA"})") + "="), RefusalCode::kMalformedToken);
}

TEST(ParseCompactJws, RefusesEveryAlgorithmButEdDsa) {
  for (const char* alg : {"none", "None", "HS256", "HS512", "RS256", "PS256", "ES256", "ES256K",
                          "eddsa", "EdDSA ", ""}) {
    std::string header = std::string(R"({"alg":")") + alg + R"(","kid":"k"})";
    EXPECT_EQ(ParseRefusal(Token(header)), RefusalCode::kAlgorithmNotAllowed) << alg;
  }
  for (const char* alg : {"EdDSA", "Ed25519"}) {
    std::string header = std::string(R"({"alg":")") + alg + R"(","kid":"k","typ":"JWT"})";
    EXPECT_TRUE(std::holds_alternative<CompactJws>(ParseCompactJws(Token(header), 8192))) << alg;
  }
}

TEST(ParseCompactJws, RefusesOversizedTokenBeforeParsing) {
  std::string token = Token(R"({"alg":"EdDSA"})", std::string(100, 'x'));
  auto parsed = ParseCompactJws(token, token.size() - 1);
  ASSERT_TRUE(std::holds_alternative<Refusal>(parsed));
  EXPECT_EQ(std::get<Refusal>(parsed).code, RefusalCode::kOversizedToken);
  EXPECT_TRUE(std::holds_alternative<CompactJws>(ParseCompactJws(token, token.size())));
}

}  // namespace
}  // namespace probity::warrant
