// A checkpoint verifies with an independent implementation: Python's `cryptography` Ed25519,
// the signed-note rules re-implemented from the spec, and the RFC 6962 root recomputed from the
// segment files.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>

#include "ledger_test_util.h"
#include "probity/ledger/checkpoint.h"
#include "probity/ledger/ledger.h"

namespace probity::ledger {
namespace {

int RunPythonCheck(const std::filesystem::path& note, const std::string& verifier_key,
                   const std::filesystem::path& ledger_dir) {
  const char* source_dir = std::getenv("PROBITY_SOURCE_DIR");
  if (source_dir == nullptr) ADD_FAILURE() << "PROBITY_SOURCE_DIR is not set";
  const std::string command = "/usr/bin/python3 '" + std::string(source_dir) +
                              "/tests/ledger/verify_signed_note.py' '" + note.string() + "' '" +
                              verifier_key + "' '" + ledger_dir.string() + "'";
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(PythonInterop, CheckpointVerifiesWithPythonCryptography) {
  if (std::system("/usr/bin/python3 -c 'import cryptography' 2>/dev/null") != 0) {
    GTEST_SKIP() << "python3-cryptography is not installed";
  }
  testing::ScratchDir scratch;
  auto options = testing::MakeOptions(scratch, 800);
  options.fsync = false;
  auto ledger = Ledger::Open(options);
  ASSERT_TRUE(ledger.ok());
  std::string receipt_checkpoint;
  for (uint64_t i = 0; i < 13; ++i) {
    auto receipt = (*ledger)->Append(testing::SampleEntry(i));
    ASSERT_TRUE(receipt.ok());
    if (i == 6) receipt_checkpoint = receipt->signed_checkpoint;
  }
  const std::string key = (*ledger)->VerifierKey();
  const auto note = scratch.path() / "checkpoint.note";

  testing::WriteFile(note, *(*ledger)->SignedCheckpoint());
  EXPECT_EQ(RunPythonCheck(note, key, options.dir), 0);
  testing::WriteFile(note, receipt_checkpoint);
  EXPECT_EQ(RunPythonCheck(note, key, options.dir), 0);

  // The same check fails on a changed note, and on a note signed by another key.
  std::string changed = *(*ledger)->SignedCheckpoint();
  changed[changed.find("\n13\n") + 2] = '2';
  testing::WriteFile(note, changed);
  EXPECT_NE(RunPythonCheck(note, key, options.dir), 0);
  testing::ScratchDir other;
  auto other_ledger = Ledger::Open(testing::MakeOptions(other));
  ASSERT_TRUE(other_ledger.ok());
  testing::WriteFile(note, *(*other_ledger)->SignedCheckpoint());
  EXPECT_NE(RunPythonCheck(note, key, options.dir), 0);
}

}  // namespace
}  // namespace probity::ledger
