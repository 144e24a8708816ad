// Verification cost per query: the full check (strict parse, Ed25519, claims) against the
// cached path (token hash, time and revocation only). Reference in the same run: one bare
// Ed25519 signature verification.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "probity/warrant/issue.h"
#include "probity/warrant/jws.h"
#include "probity/warrant/warrant.h"

namespace {

using namespace probity::warrant;

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

// One issuer key, a JWKS and a revocation list of 1000 jtis in a temp dir, and tokens to verify.
class Setup {
 public:
  Setup() {
    char pattern[] = "/tmp/bench-warrant-XXXXXX";
    if (mkdtemp(pattern) == nullptr) abort();
    dir_ = pattern;
    key_ = std::make_unique<Ed25519PrivateKey>(*Ed25519PrivateKey::Generate());
    std::ofstream(dir_ / "jwks.json")
        << *AppendToJwks("", *PublicJwk(*key_, "bench-key", "bench-issuer"));
    std::ofstream revoked(dir_ / "revoked.txt");
    for (int i = 0; i < 1000; ++i) {
      revoked << R"({"iss":"bench-issuer","jti":"revoked-)" << i << "\"}\n";
    }
  }
  ~Setup() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::unique_ptr<Verifier> NewVerifier(size_t cache_entries) const {
    Verifier::Options options;
    options.policy.audience = "bench";
    options.jwks_file = dir_ / "jwks.json";
    options.revocation_file = dir_ / "revoked.txt";
    options.cache_entries = cache_entries;
    return *Verifier::Create(options);
  }

  std::string Token(int serial) const {
    Claims claims;
    claims.iss = "bench-issuer";
    claims.sub = "investigator-1";
    claims.aud = "bench";
    claims.jti = "warrant-" + std::to_string(serial);
    claims.iat = claims.nbf = absl::ToUnixSeconds(kNow) - 60;
    claims.exp = claims.iat + 3600;
    claims.case_number = "CASE-2026-0001";
    claims.purpose = "benchmark";
    claims.collections = {"gallery-a", "gallery-b", "gallery-c"};
    claims.max_queries = 1'000'000'000;
    claims.max_k = 100;
    return *IssueToken(claims, *key_, "bench-key");
  }

  const Ed25519PrivateKey& key() const { return *key_; }

 private:
  std::filesystem::path dir_;
  std::unique_ptr<Ed25519PrivateKey> key_;
};

const Setup& Shared() {
  static const Setup* setup = new Setup();
  return *setup;
}

void RequireAccepted(benchmark::State& state, const std::variant<VerifiedWarrant, Refusal>& r) {
  if (!std::holds_alternative<VerifiedWarrant>(r)) state.SkipWithError("token refused");
}

// Reference: the bare signature check every uncached verification contains.
void BM_Ed25519Verify(benchmark::State& state) {
  std::string token = Shared().Token(0);
  auto jws = std::get<CompactJws>(ParseCompactJws(token, 8192));
  auto key = *Shared().key().PublicKey();
  for (auto _ : state) benchmark::DoNotOptimize(VerifyJwsSignature(jws, key));
}
BENCHMARK(BM_Ed25519Verify);

void BM_VerifyUncached(benchmark::State& state) {
  auto verifier = Shared().NewVerifier(0);
  std::string token = Shared().Token(0);
  RequireAccepted(state, verifier->Verify(token, kNow));
  for (auto _ : state) benchmark::DoNotOptimize(verifier->Verify(token, kNow));
}
BENCHMARK(BM_VerifyUncached);

// Many warrants in use at once: each query's token is a cache hit, but not the same one.
void BM_VerifyCached(benchmark::State& state) {
  const int warrants = static_cast<int>(state.range(0));
  auto verifier = Shared().NewVerifier(4096);
  std::vector<std::string> tokens;
  for (int i = 0; i < warrants; ++i) {
    tokens.push_back(Shared().Token(i));
    RequireAccepted(state, verifier->Verify(tokens.back(), kNow));
  }
  size_t next = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(verifier->Verify(tokens[next], kNow));
    next = next + 1 == tokens.size() ? 0 : next + 1;
  }
}
BENCHMARK(BM_VerifyCached)->Arg(1)->Arg(1000);

// What a search pays in all: cached verification plus scope, k and budget.
void BM_VerifyCachedAndAuthorize(benchmark::State& state) {
  auto verifier = Shared().NewVerifier(4096);
  std::string token = Shared().Token(0);
  BudgetTracker budget;
  Request request{{"gallery-b"}, 50, 1, std::nullopt};
  for (auto _ : state) {
    auto result = verifier->Verify(token, kNow);
    benchmark::DoNotOptimize(Authorize(std::get<VerifiedWarrant>(result), request, budget));
  }
}
BENCHMARK(BM_VerifyCachedAndAuthorize);

}  // namespace

BENCHMARK_MAIN();
