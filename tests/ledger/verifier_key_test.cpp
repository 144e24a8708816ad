// LoadNoteVerifier: the --key of `probity ledger verify` and `report`, given as a verifier key,
// a file holding one, or a PEM key file named by the origin.
#include "probity/ledger/verifier_key.h"

#include <gtest/gtest.h>

#include <string>

#include "ledger_test_util.h"
#include "probity/ledger/note.h"

namespace probity::ledger {
namespace {

using testing::kOrigin;
using testing::ScratchDir;
using testing::WriteFile;

class VerifierKeyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    private_pem_ = scratch_.path() / "signing.pem";
    ASSERT_TRUE(GenerateSigningKey(private_pem_).ok());
    auto signer = NoteSigner::Load(private_pem_, kOrigin);
    ASSERT_TRUE(signer.ok()) << signer.status();
    verifier_key_ = (*signer)->VerifierKey();
  }

  ScratchDir scratch_;
  std::filesystem::path private_pem_;
  std::string verifier_key_;
};

TEST_F(VerifierKeyTest, TakesTheKeyItself) {
  auto verifier = LoadNoteVerifier(verifier_key_, "");
  ASSERT_TRUE(verifier.ok()) << verifier.status();
  EXPECT_EQ(verifier->VerifierKey(), verifier_key_);
}

TEST_F(VerifierKeyTest, TakesAFileHoldingTheKeyWithSurroundingWhitespace) {
  const auto file = scratch_.path() / "verifier.key";
  WriteFile(file, "  " + verifier_key_ + "\r\n\n");
  auto verifier = LoadNoteVerifier(file.string(), "");
  ASSERT_TRUE(verifier.ok()) << verifier.status();
  EXPECT_EQ(verifier->VerifierKey(), verifier_key_);
}

TEST_F(VerifierKeyTest, TakesAPemKeyNamedByTheOrigin) {
  auto verifier = LoadNoteVerifier(private_pem_.string(), kOrigin);
  ASSERT_TRUE(verifier.ok()) << verifier.status();
  EXPECT_EQ(verifier->VerifierKey(), verifier_key_);
}

TEST_F(VerifierKeyTest, PemKeyWithoutOriginIsRefused) {
  auto verifier = LoadNoteVerifier(private_pem_.string(), "");
  ASSERT_FALSE(verifier.ok());
  EXPECT_EQ(verifier.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(verifier.status().message().find("origin"), absl::string_view::npos)
      << verifier.status();
}

TEST_F(VerifierKeyTest, BadKeyFileGivesAnErrorNamingTheFileAndTheProblem) {
  const auto file = scratch_.path() / "bad.key";
  WriteFile(file, "not a verifier key\n");
  auto verifier = LoadNoteVerifier(file.string(), kOrigin);
  ASSERT_FALSE(verifier.ok());
  EXPECT_EQ(verifier.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(verifier.status().message());
  EXPECT_NE(message.find(file.string()), std::string::npos) << message;
  EXPECT_NE(message.find("verifier key must be"), std::string::npos) << message;
}

TEST_F(VerifierKeyTest, DamagedPemFileGivesAnErrorNamingTheFile) {
  const auto file = scratch_.path() / "damaged.pem";
  WriteFile(file, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n");
  auto verifier = LoadNoteVerifier(file.string(), kOrigin);
  ASSERT_FALSE(verifier.ok());
  EXPECT_EQ(verifier.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(verifier.status().message()).find(file.string()), std::string::npos)
      << verifier.status();
}

TEST_F(VerifierKeyTest, KeyWithAWrongKeyIdIsRefused) {
  std::string tampered = verifier_key_;
  const size_t id_at = tampered.find('+') + 1;
  tampered[id_at] = tampered[id_at] == '0' ? '1' : '0';
  EXPECT_FALSE(LoadNoteVerifier(tampered, "").ok());
}

}  // namespace
}  // namespace probity::ledger
