// C2SP tlog-checkpoint text and signed-note signatures.
#include "probity/ledger/checkpoint.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <regex>

#include "absl/strings/escaping.h"
#include "ledger_test_util.h"
#include "probity/common/file_read.h"
#include "probity/common/openssl_handles.h"
#include "probity/ledger/merkle.h"

namespace probity::ledger {
namespace {

Checkpoint SampleCheckpoint() {
  Checkpoint checkpoint;
  checkpoint.origin = "probity.test/ledger";
  checkpoint.size = 5;
  checkpoint.root =
      *HashFromHex("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4");
  return checkpoint;
}

TEST(CheckpointText, HasOriginSizeAndBase64Root) {
  EXPECT_EQ(FormatCheckpoint(SampleCheckpoint()),
            "probity.test/ledger\n5\nTju7H3tHjc/nH7YxYxUZo7yhLJrvyhYSv85ME6hiZNQ=\n");
  Checkpoint with_extension = SampleCheckpoint();
  with_extension.extensions = {"extra line"};
  auto parsed = ParseCheckpoint(FormatCheckpoint(with_extension));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->origin, with_extension.origin);
  EXPECT_EQ(parsed->size, 5u);
  EXPECT_EQ(parsed->root, with_extension.root);
  EXPECT_EQ(parsed->extensions, with_extension.extensions);
}

TEST(CheckpointText, RejectsMalformedText) {
  const std::string root = "Tju7H3tHjc/nH7YxYxUZo7yhLJrvyhYSv85ME6hiZNQ=";
  for (const std::string& text : std::vector<std::string>{
           "o\n5\n" + root, "o\n05\n" + root + "\n", "o\n-5\n" + root + "\n",
           "o\n5x\n" + root + "\n", std::string("\n5\n") + root + "\n", "o\n5\nnot base64!\n",
           "o\n5\nAAAA\n", "o\n5\n", "o\n5\n" + root + "\n\n"}) {
    EXPECT_FALSE(ParseCheckpoint(text).ok()) << text;
  }
}

class SignedNoteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(GenerateSigningKey(scratch_.path() / "key.pem").ok());
    auto signer = NoteSigner::Load(scratch_.path() / "key.pem", "probity.test/ledger");
    ASSERT_TRUE(signer.ok()) << signer.status();
    signer_ = std::move(*signer);
  }
  testing::ScratchDir scratch_;
  std::unique_ptr<NoteSigner> signer_;
};

// The signer (libsodium) makes the very signature OpenSSL makes with the same key: Ed25519 is
// deterministic, and verifiers and earlier ledgers rely on the bytes, not on who made them.
TEST_F(SignedNoteTest, SignatureIsTheBytesOpenSslMakesWithTheSameKey) {
  const std::string text = FormatCheckpoint(SampleCheckpoint());
  const std::string note = signer_->Sign(text).value();
  const std::string line = note.substr(text.size() + 1);
  const std::string prefix = "\xE2\x80\x94 probity.test/ledger ";
  ASSERT_TRUE(line.starts_with(prefix) && line.ends_with("\n")) << line;
  std::string blob;
  ASSERT_TRUE(
      absl::Base64Unescape(line.substr(prefix.size(), line.size() - prefix.size() - 1), &blob));
  ASSERT_EQ(blob.size(), 4u + 64u);

  const std::string pem = common::ReadFileToString(scratch_.path() / "key.pem").value();
  common::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  common::PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  ASSERT_NE(key, nullptr);
  common::MdContextPtr context(EVP_MD_CTX_new());
  std::string openssl_signature(64, '\0');
  size_t length = openssl_signature.size();
  ASSERT_EQ(EVP_DigestSignInit(context.get(), nullptr, nullptr, nullptr, key.get()), 1);
  ASSERT_EQ(
      EVP_DigestSign(context.get(), reinterpret_cast<unsigned char*>(openssl_signature.data()),
                     &length, reinterpret_cast<const unsigned char*>(text.data()), text.size()),
      1);
  ASSERT_EQ(length, 64u);
  EXPECT_EQ(blob.substr(4), openssl_signature);
}

TEST_F(SignedNoteTest, SignatureLineFollowsTheSignedNoteFormat) {
  const std::string text = FormatCheckpoint(SampleCheckpoint());
  const std::string note = signer_->Sign(text).value();
  ASSERT_TRUE(note.starts_with(text + "\n"));
  const std::string line = note.substr(text.size() + 1);
  // "— <name> <base64 of 4-byte key id and 64-byte signature>\n", em dash as UTF-8.
  EXPECT_TRUE(line.starts_with("\xE2\x80\x94 probity.test/ledger ")) << line;
  EXPECT_TRUE(std::regex_match(line, std::regex("\xE2\x80\x94 probity\\.test/ledger "
                                                "[A-Za-z0-9+/]{91}=\n")))
      << line;
  EXPECT_TRUE(
      std::regex_match(signer_->VerifierKey(),
                       std::regex("probity\\.test/ledger\\+[0-9a-f]{8}\\+[A-Za-z0-9+/]{44}")))
      << signer_->VerifierKey();
}

TEST_F(SignedNoteTest, VerifiesWithTheVerifierKeyOnly) {
  const std::string text = FormatCheckpoint(SampleCheckpoint());
  const std::string note = signer_->Sign(text).value();
  auto verifier = NoteVerifier::FromVerifierKey(signer_->VerifierKey());
  ASSERT_TRUE(verifier.ok()) << verifier.status();
  EXPECT_EQ(verifier->VerifierKey(), signer_->VerifierKey());
  auto opened = verifier->Open(note);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, text);
  auto checkpoint = OpenSignedCheckpoint(note, *verifier, "probity.test/ledger");
  ASSERT_TRUE(checkpoint.ok());
  EXPECT_EQ(checkpoint->size, 5u);
  EXPECT_FALSE(OpenSignedCheckpoint(note, *verifier, "another.origin").ok());

  // Changed text, changed signature, missing signature, another key: all rejected.
  std::string changed_text = note;
  changed_text[text.find('5')] = '6';
  EXPECT_FALSE(verifier->Open(changed_text).ok());
  std::string changed_signature = note;
  changed_signature[note.size() - 10] = changed_signature[note.size() - 10] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(verifier->Open(changed_signature).ok());
  EXPECT_FALSE(verifier->Open(text + "\n").ok());
  EXPECT_FALSE(verifier->Open(signer_->Sign("a\tb\n").value()).ok())
      << "control characters in text";
  EXPECT_FALSE(verifier->Open(text).ok());

  ASSERT_TRUE(GenerateSigningKey(scratch_.path() / "other.pem").ok());
  auto other = NoteSigner::Load(scratch_.path() / "other.pem", "probity.test/ledger");
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(verifier->Open((*other)->Sign(text).value()).ok());
  // Another key's extra signature line is ignored; ours still has to verify.
  const std::string cosigned = note + (*other)->Sign(text).value().substr(text.size() + 1);
  EXPECT_TRUE(verifier->Open(cosigned).ok());
}

TEST_F(SignedNoteTest, KeyIdIsTheSpecifiedHashPrefix) {
  auto verifier = NoteVerifier::FromVerifierKey(signer_->VerifierKey());
  ASSERT_TRUE(verifier.ok());
  const std::string key = signer_->VerifierKey();
  const std::string id_hex = key.substr(key.find('+') + 1, 8);
  EXPECT_EQ(std::stoul(id_hex, nullptr, 16), verifier->key_id());
  // A verifier key whose id does not match its name and key is refused.
  std::string wrong_id = key;
  wrong_id[key.find('+') + 1] = wrong_id[key.find('+') + 1] == '0' ? '1' : '0';
  EXPECT_FALSE(NoteVerifier::FromVerifierKey(wrong_id).ok());
  std::string renamed = key;
  renamed[0] = 'q';
  EXPECT_FALSE(NoteVerifier::FromVerifierKey(renamed).ok());
  // The same key loaded from its PEM gives the same verifier key.
  auto from_pem =
      NoteVerifier::FromPem(testing::ReadFile(scratch_.path() / "key.pem"), "probity.test/ledger");
  ASSERT_TRUE(from_pem.ok()) << from_pem.status();
  EXPECT_EQ(from_pem->VerifierKey(), key);
}

TEST_F(SignedNoteTest, RejectsBadKeyNames) {
  EXPECT_FALSE(NoteSigner::Load(scratch_.path() / "key.pem", "has space").ok());
  EXPECT_FALSE(NoteSigner::Load(scratch_.path() / "key.pem", "has+plus").ok());
  EXPECT_FALSE(NoteSigner::Load(scratch_.path() / "key.pem", "").ok());
  EXPECT_FALSE(NoteSigner::Load(scratch_.path() / "missing.pem", "name").ok());
}

// The signing key is written through common/'s owner-only file: 0600 whatever the umask, also
// when it replaces an older file; and a key that cannot be read is an error naming it.
TEST_F(SignedNoteTest, SigningKeyIsOwnerOnlyWhateverTheUmaskAndAMissingOneIsNamed) {
  const auto path = scratch_.path() / "fresh.pem";
  testing::WriteFile(path, "old contents");
  ::chmod(path.c_str(), 0644);
  const mode_t previous = ::umask(0);
  const absl::Status generated = GenerateSigningKey(path);
  ::umask(previous);
  ASSERT_TRUE(generated.ok()) << generated;
  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  EXPECT_TRUE(NoteSigner::Load(path, "probity.test/ledger").ok());

  const auto missing = scratch_.path() / "missing.pem";
  auto signer = NoteSigner::Load(missing, "name");
  ASSERT_FALSE(signer.ok());
  EXPECT_EQ(signer.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(signer.status().message()).find(missing.string()), std::string::npos)
      << signer.status();
}

}  // namespace
}  // namespace probity::ledger
