// libFuzzer target for everything that reads untrusted warrant bytes. The first input byte picks
// the entry point, so that one corpus covers the token path (including payloads that carry a
// valid signature, which random bytes would never reach), the JWKS parser and base64url.
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>

#include "probity/warrant/issue.h"
#include "probity/warrant/jws.h"
#include "probity/warrant/warrant.h"

namespace {

using namespace probity::warrant;

struct Fixture {
  std::filesystem::path dir;
  std::unique_ptr<Ed25519PrivateKey> key;
  std::unique_ptr<Verifier> verifier;
};

Fixture* fixture = nullptr;

void RemoveFixtureDir() {
  std::error_code ignored;
  if (fixture != nullptr) std::filesystem::remove_all(fixture->dir, ignored);
}

[[noreturn]] void Fail(const char* why) {
  fprintf(stderr, "fuzz_warrant_token: %s\n", why);
  abort();
}

void CheckVerified(const std::variant<VerifiedWarrant, Refusal>& result) {
  if (const auto* warrant = std::get_if<VerifiedWarrant>(&result)) {
    const Claims& c = warrant->claims;
    // Whatever got through must satisfy the contract the server relies on.
    if (c.aud != "fuzz" || c.max_k < 1 || c.max_queries < 1 || c.collections.empty() ||
        c.exp <= c.nbf || c.jti.empty() || warrant->kid != "fuzz-key") {
      Fail("accepted a warrant that breaks the contract");
    }
  } else if (std::get<Refusal>(result).message.empty()) {
    Fail("refusal without a message");
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fixture = new Fixture;
  char pattern[] = "/tmp/fuzz-warrant-XXXXXX";
  if (mkdtemp(pattern) == nullptr) Fail("mkdtemp");
  fixture->dir = pattern;
  atexit(RemoveFixtureDir);
  auto key = Ed25519PrivateKey::FromRawSeed(std::string(32, '\x42'));
  if (!key.ok()) Fail("key");
  fixture->key = std::make_unique<Ed25519PrivateKey>(*key);
  auto jwk = PublicJwk(*key, "fuzz-key", "fuzz-issuer");
  auto jwks = jwk.ok() ? AppendToJwks("", *jwk) : jwk.status();
  if (!jwks.ok()) Fail("jwks");
  std::ofstream(fixture->dir / "jwks.json") << *jwks;
  std::ofstream(fixture->dir / "revoked.txt") << R"({"iss":"fuzz-issuer","jti":"revoked-jti"})"
                                              << "\n";
  Verifier::Options options;
  options.policy.audience = "fuzz";
  options.jwks_file = fixture->dir / "jwks.json";
  options.revocation_file = fixture->dir / "revoked.txt";
  options.cache_entries = 64;
  auto verifier = Verifier::Create(options);
  if (!verifier.ok()) Fail("verifier");
  fixture->verifier = *std::move(verifier);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  switch (data[0] % 5) {
    case 0:  // a whole token as a client would send it
      CheckVerified(fixture->verifier->Verify(input, now));
      break;
    case 1: {  // a payload under a valid signature: the claims path behind the signature check
      auto token =
          SignCompactJws(R"({"alg":"EdDSA","typ":"JWT","kid":"fuzz-key"})", input, *fixture->key);
      if (token.ok()) CheckVerified(fixture->verifier->Verify(*token, now));
      break;
    }
    case 2: {  // a header under a valid signature
      auto token = SignCompactJws(input, R"({"sub":"x"})", *fixture->key);
      if (token.ok()) CheckVerified(fixture->verifier->Verify(*token, now));
      break;
    }
    case 3:
      (void)KeySet::Parse(input);
      break;
    case 4:
      // Decoding accepts only the canonical spelling, so it must round-trip exactly.
      if (auto bytes = Base64UrlDecode(input); bytes && Base64UrlEncode(*bytes) != input) {
        Fail("base64url decoding accepted a non-canonical text");
      }
      break;
  }
  return 0;
}
