// Interoperability: tokens from Python (PyJWT, and `cryptography` alone) verify here, and tokens
// from `probity warrant issue` verify with PyJWT. Also the CLI's keygen/inspect behaviour.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>

#include "absl/time/clock.h"
#include "test_support.h"

namespace probity::warrant {
namespace {

namespace fs = std::filesystem;

constexpr char kPython[] = "/usr/bin/python3";

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout only; stderr goes to the test log
};

// Arguments are single-quoted for /bin/sh; none of ours contain a quote.
std::string Quote(const std::string& arg) { return "'" + arg + "'"; }

CommandResult RunCommand(const std::vector<std::string>& argv) {
  std::string command;
  for (const auto& arg : argv) command += Quote(arg) + " ";
  CommandResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, n);
  int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string Trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

class InteropTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kPython)) GTEST_SKIP() << kPython << " is absent";
  }

  std::string Script(const char* name) const {
    return (fs::path(PROBITY_WARRANT_TEST_DIR) / name).string();
  }
  std::string Probity() const { return PROBITY_CLI_BINARY; }

  std::unique_ptr<Verifier> VerifierFor(const fs::path& jwks) {
    Verifier::Options options;
    options.policy.audience = testing::kAudience;
    options.jwks_file = jwks;
    auto verifier = Verifier::Create(options);
    EXPECT_TRUE(verifier.ok()) << verifier.status();
    return verifier.ok() ? *std::move(verifier) : nullptr;
  }

  // Keygen into the temp dir and issue one token; returns the token.
  std::string IssueWithProbity(const std::string& audience, const std::string& ttl = "10m") {
    auto keygen = RunCommand({Probity(), "warrant", "keygen", "--out-key", key_file(), "--kid",
                              "cli-key", "--iss", "cli-authority", "--jwks", jwks_file()});
    EXPECT_EQ(keygen.exit_code, 0) << keygen.output;
    auto issue = RunCommand({Probity(),
                             "warrant",
                             "issue",
                             "--key",
                             key_file(),
                             "--kid",
                             "cli-key",
                             "--iss",
                             "cli-authority",
                             "--sub",
                             "investigator-cli",
                             "--aud",
                             audience,
                             "--case",
                             "CASE-CLI-9",
                             "--purpose",
                             "interop test",
                             "--collections",
                             "gallery-a,gallery-b",
                             "--max-queries",
                             "4",
                             "--max-k",
                             "20",
                             "--ttl",
                             ttl});
    EXPECT_EQ(issue.exit_code, 0) << issue.output;
    return Trimmed(issue.output);
  }

  std::string key_file() const { return (dir_.path() / "issuer.pem").string(); }
  std::string jwks_file() const { return (dir_.path() / "jwks.json").string(); }

  testing::TempDir dir_;
};

TEST_F(InteropTest, PythonIssuedTokensVerifyHere) {
  for (const char* mode : {"pyjwt", "cryptography"}) {
    SCOPED_TRACE(mode);
    auto jwks = dir_.path() / (std::string(mode) + "-jwks.json");
    auto now = absl::ToUnixSeconds(absl::Now());
    auto issued = RunCommand({kPython, Script("python_issue.py"), mode, jwks.string(),
                              testing::kAudience, std::to_string(now)});
    ASSERT_EQ(issued.exit_code, 0) << issued.output;
    std::string token = Trimmed(issued.output);
    auto verifier = VerifierFor(jwks);
    ASSERT_NE(verifier, nullptr);
    auto result = verifier->Verify(token, absl::Now());
    ASSERT_TRUE(std::holds_alternative<VerifiedWarrant>(result))
        << std::get<Refusal>(result).message;
    const Claims& claims = std::get<VerifiedWarrant>(result).claims;
    EXPECT_EQ(claims.iss, "python-authority");
    EXPECT_EQ(claims.sub, "investigator-py");
    EXPECT_EQ(claims.aud, testing::kAudience);
    EXPECT_EQ(claims.collections, std::vector<std::string>{"gallery-a"});
    EXPECT_EQ(claims.max_queries, 3);
    EXPECT_EQ(claims.max_k, 7);
    // The same token with one payload byte changed does not verify.
    std::string tampered = token;
    size_t at = token.find('.') + 5;
    tampered[at] = tampered[at] == 'A' ? 'B' : 'A';
    EXPECT_NE(testing::CodeOf(verifier->Verify(tampered, absl::Now())), RefusalCode::kMissingToken);
  }
}

TEST_F(InteropTest, ProbityIssuedTokenVerifiesWithPyJwt) {
  std::string token = IssueWithProbity(testing::kAudience);
  ASSERT_FALSE(token.empty());
  auto verified =
      RunCommand({kPython, Script("pyjwt_verify.py"), jwks_file(), testing::kAudience, token});
  ASSERT_EQ(verified.exit_code, 0) << verified.output;
  auto claims = nlohmann::json::parse(verified.output);
  EXPECT_EQ(claims["sub"], "investigator-cli");
  EXPECT_EQ(claims["case"], "CASE-CLI-9");
  EXPECT_EQ(claims["collections"], nlohmann::json({"gallery-a", "gallery-b"}));
  EXPECT_EQ(claims["max_queries"], 4);
  EXPECT_EQ(claims["exp"].get<int64_t>() - claims["nbf"].get<int64_t>(), 600);
  // PyJWT really checks: another audience is refused.
  EXPECT_EQ(
      RunCommand({kPython, Script("pyjwt_verify.py"), jwks_file(), "elsewhere", token}).exit_code,
      1);
  // And the library agrees with PyJWT on the same token and JWKS.
  auto verifier = VerifierFor(jwks_file());
  ASSERT_NE(verifier, nullptr);
  EXPECT_TRUE(std::holds_alternative<VerifiedWarrant>(verifier->Verify(token, absl::Now())));
}

TEST_F(InteropTest, KeygenWritesAPrivateKeyOnlyOnceAndAppendsToTheJwks) {
  IssueWithProbity(testing::kAudience);
  EXPECT_EQ(fs::status(key_file()).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  // Never overwrites a key; never adds a second key under the same kid.
  EXPECT_EQ(RunCommand({Probity(), "warrant", "keygen", "--out-key", key_file(), "--kid", "other",
                        "--iss", "cli-authority"})
                .exit_code,
            1);
  std::string second_key = (dir_.path() / "second.pem").string();
  EXPECT_EQ(RunCommand({Probity(), "warrant", "keygen", "--out-key", second_key, "--kid", "cli-key",
                        "--iss", "cli-authority", "--jwks", jwks_file()})
                .exit_code,
            1);
  EXPECT_FALSE(fs::exists(second_key));
  auto rotated = RunCommand({Probity(), "warrant", "keygen", "--out-key", second_key, "--kid",
                             "cli-key-2", "--iss", "cli-authority", "--jwks", jwks_file()});
  ASSERT_EQ(rotated.exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(rotated.output)["kid"], "cli-key-2");
  auto set = KeySet::Load(jwks_file());
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ((*set)->size(), 2u);
}

TEST_F(InteropTest, InspectExplainsAcceptanceAndRefusal) {
  std::string token = IssueWithProbity(testing::kAudience);
  auto accepted =
      RunCommand({Probity(), "warrant", "inspect", "--jwks", jwks_file(), "--aud",
                  testing::kAudience, "--token", token, "--collection", "gallery-b", "--k", "20"});
  EXPECT_EQ(accepted.exit_code, 0) << accepted.output;
  EXPECT_NE(accepted.output.find("verdict: ACCEPTED"), std::string::npos) << accepted.output;
  EXPECT_NE(accepted.output.find("CASE-CLI-9"), std::string::npos);

  auto out_of_scope =
      RunCommand({Probity(), "warrant", "inspect", "--jwks", jwks_file(), "--aud",
                  testing::kAudience, "--token", token, "--collection", "gallery-z", "--k", "5"});
  EXPECT_EQ(out_of_scope.exit_code, 1);
  EXPECT_NE(out_of_scope.output.find("REFUSED collection_out_of_scope"), std::string::npos)
      << out_of_scope.output;

  testing::WriteFile(dir_.path() / "token.txt", "Bearer " + token + "\n");
  auto expired = RunCommand({Probity(), "warrant", "inspect", "--jwks", jwks_file(), "--aud",
                             testing::kAudience, "--token-file",
                             (dir_.path() / "token.txt").string(), "--at", "2099-01-01T00:00:00Z"});
  EXPECT_EQ(expired.exit_code, 1);
  EXPECT_NE(expired.output.find("REFUSED expired (UNAUTHENTICATED)"), std::string::npos)
      << expired.output;
}

TEST_F(InteropTest, EverySubcommandHasHelp) {
  for (const char* sub : {"keygen", "issue", "inspect"}) {
    auto help = RunCommand({Probity(), "warrant", sub, "--help"});
    EXPECT_EQ(help.exit_code, 0) << sub;
    EXPECT_NE(help.output.find("--"), std::string::npos) << sub;
  }
}

}  // namespace
}  // namespace probity::warrant
