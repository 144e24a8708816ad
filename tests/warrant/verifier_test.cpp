// Verifier: one test per refusal class, each asserting the reason, plus key rotation, reload,
// revocation and the cache.
#include <gtest/gtest.h>
#include <openssl/hmac.h>

#include <atomic>
#include <thread>

#include "probity/common/sha256.h"
#include "probity/warrant/jws.h"
#include "test_support.h"

namespace probity::warrant {
namespace {

using testing::ClaimsAsJson;
using testing::CodeOf;
using testing::kAudience;
using testing::MakeKey;
using testing::Sign;
using testing::SignPayload;
using testing::TestKey;
using testing::ValidClaims;

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

class VerifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::WriteFile(jwks_file(),
                       testing::JwksOf({&authority_a_, &authority_a_next_, &authority_b_}));
    testing::WriteFile(
        revocation_file(),
        "# revoked warrants\n{\"iss\":\"authority-a\",\"jti\":\"warrant-revoked\"}\n");
    verifier_ = NewVerifier();
  }

  std::filesystem::path jwks_file() const { return dir_.path() / "jwks.json"; }
  std::filesystem::path revocation_file() const { return dir_.path() / "revoked.txt"; }

  std::unique_ptr<Verifier> NewVerifier(size_t cache_entries = 16) {
    Verifier::Options options;
    options.policy.audience = kAudience;
    options.policy.clock_skew = absl::Seconds(60);
    options.policy.max_lifetime = absl::Hours(24);
    options.policy.max_token_bytes = 4096;
    options.jwks_file = jwks_file();
    options.revocation_file = revocation_file();
    options.cache_entries = cache_entries;
    auto verifier = Verifier::Create(options);
    EXPECT_TRUE(verifier.ok()) << verifier.status();
    return verifier.ok() ? *std::move(verifier) : nullptr;
  }

  Claims Valid() const { return ValidClaims(kNow, "authority-a"); }

  RefusalCode RefusalFor(const std::string& token, absl::Time now = kNow) {
    return CodeOf(verifier_->Verify(token, now));
  }

  // Signs a valid payload with `name` removed or replaced.
  std::string WithClaim(const std::string& name, const nlohmann::json& value) {
    nlohmann::json payload = ClaimsAsJson(Valid());
    if (value.is_discarded()) {
      payload.erase(name);
    } else {
      payload[name] = value;
    }
    return SignPayload(authority_a_, payload.dump());
  }

  testing::TempDir dir_;
  TestKey authority_a_ = MakeKey("a-2026", "authority-a");
  TestKey authority_a_next_ = MakeKey("a-2027", "authority-a");
  TestKey authority_b_ = MakeKey("b-2026", "authority-b");
  std::unique_ptr<Verifier> verifier_;
};

TEST_F(VerifierTest, ValidWarrantVerifiesWithEveryClaim) {
  auto result = verifier_->Verify(Sign(authority_a_, Valid()), kNow);
  ASSERT_TRUE(std::holds_alternative<VerifiedWarrant>(result)) << std::get<Refusal>(result).message;
  const auto& warrant = std::get<VerifiedWarrant>(result);
  Claims expected = Valid();
  EXPECT_EQ(warrant.kid, "a-2026");
  EXPECT_EQ(warrant.claims.iss, expected.iss);
  EXPECT_EQ(warrant.claims.sub, expected.sub);
  EXPECT_EQ(warrant.claims.aud, kAudience);
  EXPECT_EQ(warrant.claims.jti, expected.jti);
  EXPECT_EQ(warrant.claims.iat, expected.iat);
  EXPECT_EQ(warrant.claims.nbf, expected.nbf);
  EXPECT_EQ(warrant.claims.exp, expected.exp);
  EXPECT_EQ(warrant.claims.case_number, expected.case_number);
  EXPECT_EQ(warrant.claims.purpose, expected.purpose);
  EXPECT_EQ(warrant.claims.collections, expected.collections);
  EXPECT_EQ(warrant.claims.max_queries, expected.max_queries);
  EXPECT_EQ(warrant.claims.max_k, expected.max_k);
  EXPECT_EQ(warrant.token_sha256, common::Sha256Hex(Sign(authority_a_, Valid())));
  EXPECT_EQ(warrant.token_sha256.size(), 64u);
}

TEST_F(VerifierTest, SecondKeyOfTheSameIssuerVerifies) {
  EXPECT_TRUE(std::holds_alternative<VerifiedWarrant>(
      verifier_->Verify(Sign(authority_a_next_, Valid()), kNow)));
}

TEST_F(VerifierTest, AudienceArrayContainingThisDeploymentVerifies) {
  auto token = WithClaim("aud", {"elsewhere", kAudience});
  EXPECT_TRUE(std::holds_alternative<VerifiedWarrant>(verifier_->Verify(token, kNow)));
}

TEST_F(VerifierTest, MissingToken) {
  auto result = verifier_->Verify("", kNow);
  EXPECT_EQ(CodeOf(result), RefusalCode::kMissingToken);
  EXPECT_TRUE(std::get<Refusal>(result).IsAuthentication());
}

TEST_F(VerifierTest, MalformedToken) {
  EXPECT_EQ(RefusalFor("Bearer"), RefusalCode::kMalformedToken);
  EXPECT_EQ(RefusalFor("a.b.c"), RefusalCode::kMalformedToken);
  std::string token = Sign(authority_a_, Valid());
  EXPECT_EQ(RefusalFor(token + "="), RefusalCode::kMalformedToken);
  EXPECT_EQ(RefusalFor(token + ".x"), RefusalCode::kMalformedToken);
  // Signed, but the payload is no JSON object, or says "sub" twice.
  EXPECT_EQ(RefusalFor(SignPayload(authority_a_, "[1,2]")), RefusalCode::kMalformedToken);
  std::string payload = ClaimsAsJson(Valid()).dump();
  payload.insert(1, R"("sub":"someone-else",)");
  EXPECT_EQ(RefusalFor(SignPayload(authority_a_, payload)), RefusalCode::kMalformedToken);
  // No kid in the header.
  EXPECT_EQ(RefusalFor(SignPayload(authority_a_, ClaimsAsJson(Valid()).dump(),
                                   {{"alg", "EdDSA"}, {"typ", "JWT"}})),
            RefusalCode::kMalformedToken);
}

TEST_F(VerifierTest, AlgorithmNone) {
  std::string unsigned_token = Base64UrlEncode(R"({"alg":"none","typ":"JWT","kid":"a-2026"})") +
                               "." + Base64UrlEncode(ClaimsAsJson(Valid()).dump()) + ".";
  EXPECT_EQ(RefusalFor(unsigned_token), RefusalCode::kAlgorithmNotAllowed);
}

TEST_F(VerifierTest, Hs256SignedWithThePublicKeyIsAlgorithmConfusion) {
  // The classic attack: HMAC keyed with the issuer's public key, which anyone can read.
  auto public_key = authority_a_.key.PublicKey();
  ASSERT_TRUE(public_key.ok());
  std::string secret = public_key->Raw();
  std::string signing_input = Base64UrlEncode(R"({"alg":"HS256","typ":"JWT","kid":"a-2026"})") +
                              "." + Base64UrlEncode(ClaimsAsJson(Valid()).dump());
  unsigned char mac[32];
  unsigned int mac_length = 0;
  ASSERT_NE(HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
                 reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(),
                 mac, &mac_length),
            nullptr);
  std::string token =
      signing_input + "." +
      Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(mac), mac_length));
  auto result = verifier_->Verify(token, kNow);
  EXPECT_EQ(CodeOf(result), RefusalCode::kAlgorithmNotAllowed);
  EXPECT_NE(std::get<Refusal>(result).message.find("HS256"), std::string::npos);
}

TEST_F(VerifierTest, Rs256) {
  std::string token = Base64UrlEncode(R"({"alg":"RS256","typ":"JWT","kid":"a-2026"})") + "." +
                      Base64UrlEncode(ClaimsAsJson(Valid()).dump()) + "." +
                      Base64UrlEncode(std::string(256, '\x5a'));
  EXPECT_EQ(RefusalFor(token), RefusalCode::kAlgorithmNotAllowed);
}

TEST_F(VerifierTest, UnknownKid) {
  TestKey stranger = MakeKey("stranger", "authority-a");
  EXPECT_EQ(RefusalFor(Sign(stranger, Valid())), RefusalCode::kUnknownKey);
}

TEST_F(VerifierTest, KeyOfAnotherIssuer) {
  // authority-b's key signs a warrant that claims to come from authority-a.
  auto result = verifier_->Verify(Sign(authority_b_, Valid()), kNow);
  EXPECT_EQ(CodeOf(result), RefusalCode::kKeyIssuerMismatch);
  EXPECT_TRUE(std::get<Refusal>(result).IsAuthentication());
}

TEST_F(VerifierTest, UntrustedIssuer) {
  Claims claims = Valid();
  claims.iss = "self-appointed";
  EXPECT_EQ(RefusalFor(Sign(authority_a_, claims)), RefusalCode::kUntrustedIssuer);
}

TEST_F(VerifierTest, BadSignature) {
  std::string token = Sign(authority_a_, Valid());
  std::string tampered = token;
  tampered[tampered.size() - 10] = tampered[tampered.size() - 10] == 'A' ? 'B' : 'A';
  EXPECT_EQ(RefusalFor(tampered), RefusalCode::kBadSignature);
  // A changed claim under the original signature.
  Claims widened = Valid();
  widened.max_k = 5000;
  std::string forged = Sign(authority_a_, widened);
  std::string spliced = forged.substr(0, forged.rfind('.')) + token.substr(token.rfind('.'));
  EXPECT_EQ(RefusalFor(spliced), RefusalCode::kBadSignature);
  // Someone else's key under a trusted kid.
  TestKey impostor = MakeKey("a-2026", "authority-a");
  EXPECT_EQ(RefusalFor(Sign(impostor, Valid())), RefusalCode::kBadSignature);
}

TEST_F(VerifierTest, KeysEmbeddedInTheHeaderAreNeverUsed) {
  // An attacker signs with their own key and offers it in the header (jwk, jku, x5c).
  TestKey attacker = MakeKey("a-2026", "authority-a");
  auto attacker_jwk = nlohmann::json::parse(testing::JwksOf({&attacker}))["keys"][0];
  nlohmann::json header = {{"alg", "EdDSA"},
                           {"typ", "JWT"},
                           {"kid", "a-2026"},
                           {"jwk", attacker_jwk},
                           {"jku", "https://attacker.example/jwks.json"}};
  EXPECT_EQ(RefusalFor(SignPayload(attacker, ClaimsAsJson(Valid()).dump(), header)),
            RefusalCode::kBadSignature);
}

TEST_F(VerifierTest, Expired) {
  Claims claims = Valid();
  std::string token = Sign(authority_a_, claims);
  absl::Time last_accepted = absl::FromUnixSeconds(claims.exp + 60 - 1);  // skew is 60 s
  EXPECT_TRUE(std::holds_alternative<VerifiedWarrant>(verifier_->Verify(token, last_accepted)));
  EXPECT_EQ(RefusalFor(token, last_accepted + absl::Seconds(1)), RefusalCode::kExpired);
}

TEST_F(VerifierTest, NotYetValid) {
  Claims claims = Valid();
  claims.nbf = absl::ToUnixSeconds(kNow) + 61;
  claims.exp = claims.nbf + 3600;
  EXPECT_EQ(RefusalFor(Sign(authority_a_, claims)), RefusalCode::kNotYetValid);
  claims.nbf = absl::ToUnixSeconds(kNow) + 60;  // within the skew
  EXPECT_TRUE(
      std::holds_alternative<VerifiedWarrant>(verifier_->Verify(Sign(authority_a_, claims), kNow)));
  Claims issued_in_future = Valid();
  issued_in_future.iat = absl::ToUnixSeconds(kNow) + 3600;
  EXPECT_EQ(RefusalFor(Sign(authority_a_, issued_in_future)), RefusalCode::kNotYetValid);
}

TEST_F(VerifierTest, LifetimeOverPolicy) {
  Claims claims = Valid();
  claims.exp = claims.nbf + 24 * 3600;
  EXPECT_TRUE(
      std::holds_alternative<VerifiedWarrant>(verifier_->Verify(Sign(authority_a_, claims), kNow)));
  claims.exp += 1;
  EXPECT_EQ(RefusalFor(Sign(authority_a_, claims)), RefusalCode::kLifetimeOverPolicy);
  // Measured from iat as well: an old iat with a recent nbf does not stretch the policy.
  Claims backdated = Valid();
  backdated.iat = backdated.exp - 24 * 3600 - 1;
  EXPECT_EQ(RefusalFor(Sign(authority_a_, backdated)), RefusalCode::kLifetimeOverPolicy);
}

TEST_F(VerifierTest, WrongAudience) {
  EXPECT_EQ(RefusalFor(WithClaim("aud", "another-deployment")), RefusalCode::kWrongAudience);
  EXPECT_EQ(RefusalFor(WithClaim("aud", {"x", "y"})), RefusalCode::kWrongAudience);
}

class MissingClaimTest : public VerifierTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(MissingClaimTest, EachRequiredClaimIsRequired) {
  auto result = verifier_->Verify(WithClaim(GetParam(), nlohmann::json::value_t::discarded), kNow);
  EXPECT_EQ(CodeOf(result), RefusalCode::kMissingClaim);
  EXPECT_NE(std::get<Refusal>(result).message.find(std::string("\"") + GetParam() + "\""),
            std::string::npos)
      << std::get<Refusal>(result).message;
}

INSTANTIATE_TEST_SUITE_P(AllRequired, MissingClaimTest,
                         ::testing::Values("iss", "sub", "aud", "jti", "iat", "nbf", "exp", "case",
                                           "purpose", "collections", "max_queries", "max_k"));

TEST_F(VerifierTest, InvalidClaims) {
  EXPECT_EQ(RefusalFor(WithClaim("max_k", 0)), RefusalCode::kInvalidClaim);
  EXPECT_EQ(RefusalFor(WithClaim("max_queries", -5)), RefusalCode::kInvalidClaim);
  EXPECT_EQ(RefusalFor(WithClaim("max_queries", "10")), RefusalCode::kInvalidClaim);
  EXPECT_EQ(RefusalFor(WithClaim("exp", 1.8e9)), RefusalCode::kInvalidClaim);
  EXPECT_EQ(RefusalFor(WithClaim("exp", 18446744073709551615ull)), RefusalCode::kInvalidClaim);
  EXPECT_EQ(RefusalFor(WithClaim("collections", "gallery-a")), RefusalCode::kInvalidClaim);
  EXPECT_EQ(RefusalFor(WithClaim("collections", nlohmann::json::array())),
            RefusalCode::kInvalidClaim);
  EXPECT_EQ(RefusalFor(WithClaim("collections", {"gallery-a", 3})), RefusalCode::kInvalidClaim);
  EXPECT_EQ(RefusalFor(WithClaim("sub", "")), RefusalCode::kInvalidClaim);
  EXPECT_EQ(RefusalFor(WithClaim("case", nullptr)), RefusalCode::kInvalidClaim);
  Claims backwards = Valid();
  backwards.exp = backwards.nbf;
  EXPECT_EQ(RefusalFor(Sign(authority_a_, backwards)), RefusalCode::kInvalidClaim);
}

TEST_F(VerifierTest, Revoked) {
  Claims claims = Valid();
  claims.jti = "warrant-revoked";
  auto result = verifier_->Verify(Sign(authority_a_, claims), kNow);
  EXPECT_EQ(CodeOf(result), RefusalCode::kRevoked);
  EXPECT_FALSE(std::get<Refusal>(result).IsAuthentication());
  // Lists written on other systems: CRLF line ends and padding are not part of the entry.
  testing::WriteFile(revocation_file(),
                     "\r\n  {\"iss\":\"authority-a\",\"jti\":\"warrant-0001\"} \r\n"
                     "# {\"iss\":\"authority-a\",\"jti\":\"warrant-0002\"}\r\n");
  ASSERT_TRUE(verifier_->Reload().ok());
  EXPECT_EQ(RefusalFor(Sign(authority_a_, Valid())), RefusalCode::kRevoked);
  Claims commented_out = Valid();
  commented_out.jti = "warrant-0002";
  EXPECT_TRUE(std::holds_alternative<VerifiedWarrant>(
      verifier_->Verify(Sign(authority_a_, commented_out), kNow)));
}

TEST_F(VerifierTest, RevocationNamesTheIssuerAndStopsOnlyThatIssuersWarrant) {
  // Both issuers picked the jti "warrant-0001"; issuer a revokes its own.
  testing::WriteFile(revocation_file(), R"({"iss":"authority-a","jti":"warrant-0001"})");
  ASSERT_TRUE(verifier_->Reload().ok());
  EXPECT_EQ(RefusalFor(Sign(authority_a_, Valid())), RefusalCode::kRevoked);
  Claims of_b = ValidClaims(kNow, "authority-b");
  ASSERT_EQ(of_b.jti, Valid().jti);
  auto result = verifier_->Verify(Sign(authority_b_, of_b), kNow);
  EXPECT_TRUE(std::holds_alternative<VerifiedWarrant>(result)) << std::get<Refusal>(result).message;
}

TEST_F(VerifierTest, RevocationListInTheEarlierOrAnUnclearFormatIsRefusedWhole) {
  const std::string token = Sign(authority_a_, Valid());
  testing::WriteFile(revocation_file(), R"({"iss":"authority-a","jti":"warrant-0001"})");
  ASSERT_TRUE(verifier_->Reload().ok());
  ASSERT_EQ(RefusalFor(token), RefusalCode::kRevoked);
  for (const std::string& broken : {
           std::string("# one bare jti\nwarrant-0001\n"),  // the earlier format
           std::string(R"({"jti":"warrant-0001"})"),
           std::string(R"({"iss":"authority-a","jti":""})"),
           std::string(R"({"iss":"authority-a","jti":7})"),
           std::string(R"({"iss":"authority-a","jti":"w","reason":"x"})"),
           std::string(R"({"iss":"authority-a","jti":"w","jti":"warrant-0001"})"),
           std::string(R"({"iss":"authority-a","jti":"warrant-0001")"),
       }) {
    SCOPED_TRACE(broken);
    testing::WriteFile(revocation_file(), broken);
    const absl::Status status = verifier_->Reload();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(status.message().find("line "), std::string::npos) << status;
    // The list in force stays in force: a broken file never un-revokes a warrant.
    EXPECT_EQ(RefusalFor(token), RefusalCode::kRevoked);
  }
  Verifier::Options options;
  options.policy.audience = kAudience;
  options.jwks_file = jwks_file();
  options.revocation_file = revocation_file();
  testing::WriteFile(revocation_file(), "warrant-0001\n");
  EXPECT_FALSE(Verifier::Create(options).ok());
}

TEST_F(VerifierTest, OversizedToken) {
  Claims claims = Valid();
  claims.purpose = std::string(4096, 'p');
  auto result = verifier_->Verify(Sign(authority_a_, claims), kNow);
  EXPECT_EQ(CodeOf(result), RefusalCode::kOversizedToken);
}

TEST_F(VerifierTest, CachedWarrantIsStillCheckedForTimeAndRevocation) {
  std::string token = Sign(authority_a_, Valid());
  ASSERT_TRUE(std::holds_alternative<VerifiedWarrant>(verifier_->Verify(token, kNow)));
  ASSERT_TRUE(std::holds_alternative<VerifiedWarrant>(verifier_->Verify(token, kNow)));
  EXPECT_EQ(RefusalFor(token, kNow + absl::Hours(2)), RefusalCode::kExpired);
  testing::WriteFile(revocation_file(), R"({"iss":"authority-a","jti":"warrant-0001"})");
  ASSERT_TRUE(verifier_->Reload().ok());
  EXPECT_EQ(RefusalFor(token), RefusalCode::kRevoked);
}

TEST_F(VerifierTest, UncachedVerifierGivesTheSameAnswers) {
  auto uncached = NewVerifier(/*cache_entries=*/0);
  std::string token = Sign(authority_a_, Valid());
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(std::holds_alternative<VerifiedWarrant>(uncached->Verify(token, kNow)));
  }
  EXPECT_EQ(CodeOf(uncached->Verify(token, kNow + absl::Hours(2))), RefusalCode::kExpired);
}

TEST_F(VerifierTest, ReloadIfChangedPicksUpRotationAndRemoval) {
  TestKey rotated = MakeKey("a-2028", "authority-a");
  std::string old_token = Sign(authority_a_, Valid());
  std::string new_token = Sign(rotated, Valid());
  ASSERT_TRUE(std::holds_alternative<VerifiedWarrant>(verifier_->Verify(old_token, kNow)));
  EXPECT_EQ(RefusalFor(new_token), RefusalCode::kUnknownKey);

  // The new key replaces the old one; the old token was cached and must stop verifying.
  testing::WriteFile(jwks_file(), testing::JwksOf({&rotated, &authority_b_}));
  ASSERT_TRUE(verifier_->ReloadIfChanged().ok());
  EXPECT_TRUE(std::holds_alternative<VerifiedWarrant>(verifier_->Verify(new_token, kNow)));
  EXPECT_EQ(RefusalFor(old_token), RefusalCode::kUnknownKey);

  // Revocation list changes are picked up the same way.
  testing::WriteFile(revocation_file(), R"({"iss":"authority-a","jti":"warrant-0001"})");
  ASSERT_TRUE(verifier_->ReloadIfChanged().ok());
  EXPECT_EQ(RefusalFor(new_token), RefusalCode::kRevoked);
}

TEST_F(VerifierTest, BrokenJwksOnReloadKeepsTheKeysInForce) {
  std::string token = Sign(authority_a_, Valid());
  testing::WriteFile(jwks_file(), R"({"keys":[{"kty":"RSA"}]})");
  EXPECT_FALSE(verifier_->ReloadIfChanged().ok());
  EXPECT_FALSE(verifier_->Reload().ok());
  EXPECT_TRUE(std::holds_alternative<VerifiedWarrant>(verifier_->Verify(token, kNow)));
  std::filesystem::remove(jwks_file());
  EXPECT_FALSE(verifier_->ReloadIfChanged().ok());
  EXPECT_TRUE(std::holds_alternative<VerifiedWarrant>(verifier_->Verify(token, kNow)));
}

TEST_F(VerifierTest, ReloadsDoNotDisturbQueriesInFlight) {
  // Two key sets that both trust authority_a_: whichever a query sees, it must verify.
  const std::string with_next = testing::JwksOf({&authority_a_, &authority_a_next_});
  const std::string alone = testing::JwksOf({&authority_a_});
  const std::string token = Sign(authority_a_, Valid());
  std::atomic<bool> stop{false};
  std::atomic<int> refusals{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        if (!std::holds_alternative<VerifiedWarrant>(verifier_->Verify(token, kNow))) ++refusals;
      }
    });
  }
  for (int i = 0; i < 50; ++i) {
    testing::WriteFile(jwks_file(), i % 2 ? with_next : alone);
    EXPECT_TRUE(verifier_->Reload().ok());
  }
  stop = true;
  for (auto& reader : readers) reader.join();
  EXPECT_EQ(refusals.load(), 0);
}

TEST(VerifierCreate, RefusesMissingOrInvalidTrustFiles) {
  testing::TempDir dir;
  Verifier::Options options;
  options.policy.audience = kAudience;
  options.jwks_file = dir.path() / "absent.json";
  EXPECT_FALSE(Verifier::Create(options).ok());
  testing::WriteFile(dir.path() / "jwks.json", R"({"keys":[]})");
  options.jwks_file = dir.path() / "jwks.json";
  EXPECT_TRUE(Verifier::Create(options).ok());
  options.revocation_file = dir.path() / "absent.txt";
  EXPECT_FALSE(Verifier::Create(options).ok());
  options.revocation_file.clear();
  options.policy.audience.clear();
  EXPECT_FALSE(Verifier::Create(options).ok());
}

}  // namespace
}  // namespace probity::warrant
